// Errors of the peer transport: one class with a stable `code` (callers branch on it, never on text). These never
// reach a client; they are logged and turned into raft's ReportUnreachable / ReportSnapshot by the transport.

export const TransportErrorCode = {
  /** A peer URL that is not http://, https://, unix:// or unixs:// with a usable address. */
  BadUrl: "BAD_URL",
  /** A message that cannot be encoded (negative or fractional numbers, ids beyond 64 bits). */
  Encode: "ENCODE",
  /** Bytes on the wire that do not decode to a whole message (truncated, over-long, unknown type). */
  Decode: "DECODE",
  /** The receiver belongs to another cluster (rafthttp: "request cluster ID mismatch"). */
  ClusterIdMismatch: "CLUSTER_ID_MISMATCH",
  /** The receiver knows the sender as removed from the cluster (rafthttp: "removed member"). */
  MemberRemoved: "MEMBER_REMOVED",
  /** The receiver is not the member the sender meant (rafthttp's X-Raft-To check). */
  ToMismatch: "TO_MISMATCH",
  /** A snapshot body that arrived truncated or with a checksum mismatch. */
  SnapshotCorrupt: "SNAPSHOT_CORRUPT",
  /** A snapshot transfer that failed after every attempt. */
  SnapshotFailed: "SNAPSHOT_FAILED",
  /** API misuse: e.g. MsgSnap passed to send() instead of sendSnapshot(), a removed id added back. */
  InvalidArgument: "INVALID_ARGUMENT",
} as const;
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

const MESSAGES: Record<TransportErrorCode, string> = {
  BAD_URL: "transport: invalid peer URL",
  ENCODE: "transport: cannot encode raft message",
  DECODE: "transport: cannot decode raft message",
  CLUSTER_ID_MISMATCH: "request cluster ID mismatch",
  MEMBER_REMOVED: "the member has been permanently removed from the cluster",
  TO_MISMATCH: "to field mismatch",
  SNAPSHOT_CORRUPT: "transport: snapshot body corrupt",
  SNAPSHOT_FAILED: "transport: snapshot transfer failed",
  INVALID_ARGUMENT: "transport: invalid argument",
};

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, detail?: string) {
    super(detail === undefined ? MESSAGES[code] : `${MESSAGES[code]}: ${detail}`);
    this.name = "TransportError";
    this.code = code;
  }
}

export function isTransportError(err: unknown, code?: TransportErrorCode): err is TransportError {
  return err instanceof TransportError && (code === undefined || err.code === code);
}
