// Named bounds of the peer transport, with etcd 3.4's rafthttp values where etcd has one. They live beside the
// transport (core/limits.ts belongs to the whole tree); every queue, batch, frame and retry here refers to a name.

const KiB = 1024;
const MiB = 1024 * KiB;

/** Per-peer send queue, in messages (rafthttp streamBufSize: 4096). A full queue drops and reports unreachable. */
export const PEER_QUEUE_MSGS = 4096;
/** Per-peer send queue, in encoded bytes: MsgApps of up to 1 MiB each must not pile up 4 GiB. */
export const PEER_QUEUE_BYTES = 64 * MiB;
/** At most this many messages / bytes are encoded into one stream write (batching many messages per write). */
export const BATCH_MAX_MSGS = 512;
export const BATCH_MAX_BYTES = 4 * MiB;
/** A single encoded message larger than this is refused by the receiver (a MsgApp is ~1 MiB by default). */
export const MAX_FRAME_BYTES = 64 * MiB;

/** Reconnect backoff after a failed or lost stream (rafthttp retries a stream every 100 ms; etcd-ts backs off to 1 s). */
export const RECONNECT_BACKOFF_MIN_MS = 50;
export const RECONNECT_BACKOFF_MAX_MS = 1000;
/**
 * Liveness of an active stream: an HTTP/2 PING every interval; no answer within the timeout fails the stream, as
 * etcd's peer connections time out after 5 s without reads (its stream writers send a heartbeat every 5 s / 3).
 */
export const PEER_PING_INTERVAL_MS = 1666;
export const PEER_PING_TIMEOUT_MS = 5000;
/** A stream not accepted (response headers) within this long counts as failed: a hung peer is not waited on. */
export const STREAM_DIAL_TIMEOUT_MS = 5000;

/** HTTP/2 flow-control windows: large enough that a 1 MiB MsgApp or a snapshot chunk is not stop-and-go. */
export const HTTP2_STREAM_WINDOW_BYTES = 4 * MiB;
export const HTTP2_SESSION_WINDOW_BYTES = 32 * MiB;
/** Largest HTTP/2 DATA frame we accept (the protocol's default is 16 KiB; bigger frames mean less framing work). */
export const HTTP2_MAX_FRAME_BYTES = 1 * MiB;

/** Snapshot bodies travel in chunks of at most this size, each framed; the whole body is sha256-checked. */
export const SNAPSHOT_CHUNK_BYTES = 1 * MiB;
/** Attempts per snapshot before reporting failure to raft (ReportSnapshot(SnapshotFailure)). */
export const SNAPSHOT_ATTEMPTS = 3;
export const SNAPSHOT_RETRY_BACKOFF_MS = 100;
/** A snapshot transfer with no progress for this long is abandoned (and retried). */
export const SNAPSHOT_IDLE_TIMEOUT_MS = 30_000;
