// What configures one member (ServerConfig, the CLI's flags in object form) and the shapes its answers share.
import type { Member } from "../membership/cluster.js";
import type { ReadMode } from "../mvcc/kv_store.js";
import type { Rng } from "../raft/index.js";
import type { PeerTimeouts, TransportTls } from "../transport/index.js";
import type { TokenProvider } from "../auth/tokens.js";
import type { CompactionPolicy } from "./compactor.js";

export interface ServerConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly heartbeatIntervalMs?: number;
  readonly electionTimeoutMs?: number;
  readonly readMode?: ReadMode;
  readonly preVote?: boolean;
  readonly rng?: Rng;
  /** Applied entries between two Raft snapshots (--snapshot-count). */
  readonly snapshotCount?: number;
  /** Entries kept in the log behind a snapshot for slow followers (etcd 3.5's --experimental-snapshot-catchup-entries). */
  readonly snapshotCatchUpEntries?: number;
  /** Size of a WAL segment before the next is cut (default 64 MiB). */
  readonly walSegmentBytes?: number;
  /** --experimental-enable-lease-checkpoint (etcd-ts default: on, and persisted across restarts). */
  readonly leaseCheckpoint?: boolean;
  readonly leaseCheckpointIntervalMs?: number;
  /** --max-txn-ops (etcd's default 128). */
  readonly maxTxnOps?: number;
  /** --experimental-corrupt-check-time: how often the leader compares the members' hashes (0 or absent: never). */
  readonly corruptCheckIntervalMs?: number;
  /** --max-request-bytes (etcd's default 1.5 MiB): no proposal's encoded entry may be larger. */
  readonly maxRequestBytes?: number;
  /** --initial-election-tick-advance (etcd's default true): a fresh member skips most of its first election timeout. */
  readonly initialElectionTickAdvance?: boolean;
  /** --backend-batch-interval / --backend-batch-limit: when applied writes are committed (absent: 100 ms, 10,000). */
  readonly backendBatchIntervalMs?: number;
  readonly backendBatchLimit?: number;
  /** --quota-backend-bytes: 0 = etcd's default (2 GiB), negative = no quota. */
  readonly quotaBackendBytes?: number;
  /** Monotonic milliseconds for lease expiry and auto-compaction (default performance.now); tests inject one. */
  readonly clock?: () => number;
  /** --auto-compaction-mode/--auto-compaction-retention (undefined: off, etcd's default). */
  readonly autoCompaction?: CompactionPolicy;
  /** Where the server logs what an operator should see (etcd's capnslog-style lines in the CLI). */
  readonly log?: (level: "I" | "W" | "E" | "N", pkg: string, msg: string) => void;
  /** --auth-token (default: simple tokens with etcd's 300 s TTL). */
  readonly authTokenProvider?: TokenProvider;
  /** bcrypt cost of new password hashes (--bcrypt-cost). */
  readonly bcryptCost?: number;
  /**
   * The members a new cluster starts with (this one included; --initial-cluster), or, when joining, the members
   * of the running cluster. Default: this member alone, with no peer URLs.
   */
  readonly initialMembers?: readonly Member[];
  /** --initial-cluster-state=existing: this member was added to a running cluster and starts with no log. */
  readonly joinExisting?: boolean;
  /** The peer listener and what talking to peers needs; without it the member has no peer port. */
  readonly peer?: PeerConfig;
  /** This member's client URLs, published to the cluster once it runs (etcd's publish). */
  readonly clientUrls?: readonly string[];
  /** --strict-reconfig-check (etcd's default true). */
  readonly strictReconfigCheck?: boolean;
  /** The cluster removed this member: it has stopped itself (the CLI exits). */
  readonly onRemoved?: () => void;
  /**
   * A storage write or fsync failed and the member has stopped using its data dir (fail-stop). Default: exit
   * the process with status 1 at once (nothing is flushed or synced again).
   */
  readonly onFatal?: (err: unknown) => void;
}

export interface PeerConfig {
  /** --listen-peer-urls (port 0 picks one: see EtcdServer.peerUrls). */
  readonly listenUrls: readonly string[];
  readonly tls?: TransportTls;
  readonly timeouts?: Partial<PeerTimeouts>;
}

/** What TimeToLive answers: etcd's TTL -1 (and no error) for a lease that does not exist (any more). */
export interface LeaseTimeToLive {
  readonly id: bigint;
  readonly ttl: number;
  readonly grantedTtl: number;
  readonly keys: readonly Uint8Array[];
}

export interface ResponseHeader {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly revision: number;
  readonly raftTerm: number;
}

export type WithHeader<T> = { readonly header: ResponseHeader; readonly response: T };
