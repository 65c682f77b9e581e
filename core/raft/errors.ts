// Errors of the Raft core: one class with a stable `code` (callers branch on it, never on text), and the
// assertion helper that guards invariants. core/raft is self-contained, so these live here, not in core/errors.

export const RaftErrorCode = {
  /** Requested index is at or below the storage's compaction point (etcd raft ErrCompacted). */
  Compacted: "COMPACTED",
  /** Requested index is beyond the storage's last index (ErrUnavailable). */
  Unavailable: "UNAVAILABLE",
  /** A snapshot is being made; retry later (ErrSnapshotTemporarilyUnavailable). */
  SnapshotTemporarilyUnavailable: "SNAPSHOT_TEMPORARILY_UNAVAILABLE",
  /** applySnapshot/createSnapshot with an index older than the storage's (ErrSnapOutOfDate). */
  SnapOutOfDate: "SNAP_OUT_OF_DATE",
  /** No leader to take the proposal, a leader transfer is in progress, or forwarding is disabled. */
  ProposalDropped: "PROPOSAL_DROPPED",
  /** step() of a local-only message type (ErrStepLocalMsg). */
  StepLocalMsg: "STEP_LOCAL_MSG",
  /** step() of a response from a peer not in the configuration (ErrStepPeerNotFound). */
  StepPeerNotFound: "STEP_PEER_NOT_FOUND",
  /** An invariant was violated: a bug, or storage handed back inconsistent data. */
  Invariant: "INVARIANT",
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

const MESSAGES: Record<RaftErrorCode, string> = {
  COMPACTED: "requested index is unavailable due to compaction",
  UNAVAILABLE: "requested entry at index is unavailable",
  SNAPSHOT_TEMPORARILY_UNAVAILABLE: "snapshot is temporarily unavailable",
  SNAP_OUT_OF_DATE: "requested index is older than the existing snapshot",
  PROPOSAL_DROPPED: "raft proposal dropped",
  STEP_LOCAL_MSG: "raft: cannot step raft local message",
  STEP_PEER_NOT_FOUND: "raft: cannot step as peer not found",
  INVARIANT: "raft: invariant violated",
};

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, detail?: string) {
    super(detail === undefined ? MESSAGES[code] : `${MESSAGES[code]}: ${detail}`);
    this.name = "RaftError";
    this.code = code;
  }
}

/** Throws RaftError INVARIANT with `message` (which should carry the numbers involved) when `cond` is false. */
export function assert(cond: boolean, message: string): asserts cond {
  if (!cond) throw new RaftError(RaftErrorCode.Invariant, message);
}
