// Named bounds of etcd-ts, with etcd 3.4's defaults. Every queue, batch and request size in the code
// refers to a name here, so a bound is changed in one place and hitting it is a clear error.

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// Requests (embed.DefaultMaxRequestBytes, embed.DefaultMaxTxnOps).
export const MAX_REQUEST_BYTES = 1.5 * MiB;
/** gRPC receive limit = max request + etcd's 512 KiB of framing overhead (v3rpc grpcOverheadBytes). */
export const GRPC_OVERHEAD_BYTES = 512 * KiB;
export const MAX_TXN_OPS = 128;

// Raft timing (--heartbeat-interval, --election-timeout, in milliseconds).
export const HEARTBEAT_INTERVAL_MS = 100;
export const ELECTION_TIMEOUT_MS = 1000;
/** etcd's raft: max bytes of entries in one MsgApp, and max in-flight MsgApps per follower. */
export const RAFT_MAX_SIZE_PER_MSG_BYTES = 1 * MiB;
export const RAFT_MAX_INFLIGHT_MSGS = 4096 / 8;
/** Upper bound on the bytes of uncommitted entries a leader accepts before dropping proposals. */
export const RAFT_MAX_UNCOMMITTED_ENTRIES_BYTES = 1 * GiB;

// Snapshots and the log (--snapshot-count, etcdserver.DefaultSnapshotCatchUpEntries).
export const SNAPSHOT_COUNT = 100_000;
export const SNAPSHOT_CATCH_UP_ENTRIES = 5_000;
export const WAL_SEGMENT_BYTES = 64 * MiB;

// Backend (--quota-backend-bytes).
export const QUOTA_BACKEND_BYTES_DEFAULT = 2 * GiB;

// Membership (etcd 3.4 allows one learner at a time).
export const MAX_LEARNERS = 1;

// Leases (lease.MaxLeaseTTL, leaseRevokeRate, checkpoint interval and batch).
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;
export const LEASE_REVOKE_RATE_PER_SECOND = 1000;
export const LEASE_CHECKPOINT_INTERVAL_MS = 5 * 60 * 1000;
export const LEASE_CHECKPOINT_BATCH = 1000;

// Watch (watch stream channel buffer; default progress notify interval).
export const WATCH_STREAM_BUFFER = 128;
export const WATCH_PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;

// Auth (--auth-token-ttl; the bcrypt cost lives in core/auth/password.ts).
export const AUTH_TOKEN_TTL_SECONDS = 300;

/** The lease minimum TTL etcd derives from the election timeout: ceil(1.5 × election timeout), in seconds. */
export function minLeaseTtlSeconds(electionTimeoutMs: number, heartbeatIntervalMs: number): number {
  const electionTicks = Math.floor(electionTimeoutMs / heartbeatIntervalMs);
  const minTtlMs = Math.floor((3 * electionTicks) / 2) * heartbeatIntervalMs;
  return Math.ceil(minTtlMs / 1000);
}
