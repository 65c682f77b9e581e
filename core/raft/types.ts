// The vocabulary of the Raft core: messages, entries, states and the Ready hand-off, modelled on
// etcd-io/raft's raftpb. Pure data: no I/O, no clocks, no randomness. Node ids are bigint (64-bit, as etcd's
// member ids); 0n means "none". Indexes and terms are plain numbers (safe up to 2^53, far beyond any log).

export type NodeId = bigint;
export const NONE: NodeId = 0n;

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Application bytes; for ConfChange entries, encodeConfChange's output. Empty for the leader's no-op. */
  readonly data: Uint8Array;
}

export const MessageType = {
  Hup: "MsgHup", // local: start an election (campaign)
  Beat: "MsgBeat", // local: leader sends heartbeats
  Prop: "MsgProp", // proposal (local, or forwarded from a follower)
  App: "MsgApp",
  AppResp: "MsgAppResp",
  Vote: "MsgVote",
  VoteResp: "MsgVoteResp",
  Snap: "MsgSnap",
  Heartbeat: "MsgHeartbeat",
  HeartbeatResp: "MsgHeartbeatResp",
  Unreachable: "MsgUnreachable", // local: transport could not reach a peer
  SnapStatus: "MsgSnapStatus", // local: snapshot delivery finished or failed
  CheckQuorum: "MsgCheckQuorum", // local: leader checks it still hears from a quorum
  TransferLeader: "MsgTransferLeader",
  TimeoutNow: "MsgTimeoutNow",
  ReadIndex: "MsgReadIndex",
  ReadIndexResp: "MsgReadIndexResp",
  PreVote: "MsgPreVote",
  PreVoteResp: "MsgPreVoteResp",
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque application state (the backend's data); raft never looks inside. */
  readonly data: Uint8Array;
}

export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  /** MsgApp: term of the entry at `index`; votes: term of the candidate's last entry. */
  readonly logTerm: number;
  /** MsgApp: index of the entry before `entries`; votes: candidate's last index; responses: as etcd's raft. */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  readonly rejectHint: number;
  /** ReadIndex request context, heartbeat read context, campaign-transfer marker. */
  readonly context?: Uint8Array;
}

export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const StateType = {
  Follower: "StateFollower",
  PreCandidate: "StatePreCandidate",
  Candidate: "StateCandidate",
  Leader: "StateLeader",
} as const;
export type StateType = (typeof StateType)[keyof typeof StateType];

export interface SoftState {
  readonly lead: NodeId;
  readonly raftState: StateType;
}

/** A linearizable read that became safe: serve reads once applied index ≥ `index`. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

export const ConfChangeType = {
  AddNode: 0,
  RemoveNode: 1,
  UpdateNode: 2,
  AddLearnerNode: 3,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** A single-step membership change (etcd 3.4's ConfChange, not the v2 joint form). */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Application context (etcd puts the member's JSON here); raft never looks inside. */
  readonly context: Uint8Array;
}

/**
 * What the application must do before calling advance():
 * 1. persist `hardState`, `entries` and `snapshot` (one fsync when `mustSync`),
 * 2. send `messages` (after the persist, as etcd does for a follower; a leader may send in parallel),
 * 3. apply `snapshot` then `committedEntries` to the state machine (conf changes via applyConfChange).
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly readStates: readonly ReadState[];
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly mustSync: boolean;
}

export const ReadOnlyOption = {
  /** Confirm leadership with a heartbeat round before answering (linearizable under any clock). */
  Safe: "safe",
  /** Rely on the leader lease (needs check-quorum; assumes bounded clock drift). */
  LeaseBased: "leaseBased",
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

/** Randomness is injected: one seed replays a whole cluster. */
export interface Rng {
  /** A uniformly random integer in [0, n). */
  nextInt(n: number): number;
}

/** Read side of the log store (etcd raft's Storage). MemoryStorage and the WAL-backed store implement it. */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most maxSizeBytes (always at least one). Throws RaftError COMPACTED / UNAVAILABLE. */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[];
  /** Term of entry i; i may be firstIndex()-1 (the snapshot's). Throws RaftError COMPACTED / UNAVAILABLE. */
  term(i: number): number;
  lastIndex(): number;
  firstIndex(): number;
  /** Latest snapshot. Throws RaftError SNAPSHOT_TEMPORARILY_UNAVAILABLE when one is being made. */
  snapshot(): Snapshot;
}

export interface Config {
  readonly id: NodeId;
  /** Ticks a follower waits without hearing a leader before campaigning (randomised in [e, 2e)). */
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly storage: Storage;
  /** Last applied index on restart; committed entries at or below it are not handed out again. */
  readonly applied?: number;
  readonly maxSizePerMsgBytes?: number;
  readonly maxInflightMsgs?: number;
  readonly maxUncommittedEntriesBytes?: number;
  readonly checkQuorum?: boolean;
  readonly preVote?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  readonly disableProposalForwarding?: boolean;
  /**
   * false: on restart, the application gives Raft the conf changes in (snapshot index, applied] itself (with the
   * outcome each had: one the application refused must stay refused). Default true: Raft replays them all.
   */
  readonly replayAppliedConfChanges?: boolean;
  readonly rng: Rng;
}

export const ProgressState = {
  Probe: "StateProbe",
  Replicate: "StateReplicate",
  Snapshot: "StateSnapshot",
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly leadTransferee: NodeId;
  /** Only on the leader. */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
  readonly confState: ConfState;
}

export const SnapshotStatus = { Finish: "finish", Failure: "failure" } as const;
export type SnapshotStatus = (typeof SnapshotStatus)[keyof typeof SnapshotStatus];

/** The RawNode contract (etcd-io/raft's RawNode), implemented by core/raft/raw_node.ts. */
export interface RawNodeApi {
  tick(): void;
  /** Advances the election clock by n ticks without firing (the server's restart tick rule). */
  advanceTicks(n: number): void;
  campaign(): void;
  /** Throws RaftError PROPOSAL_DROPPED when there is no leader to take it, or during a leader transfer. */
  propose(data: Uint8Array): void;
  proposeConfChange(cc: ConfChange): void;
  step(m: Message): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  applyConfChange(cc: ConfChange): ConfState;
  transferLeader(transferee: NodeId): void;
  readIndex(requestCtx: Uint8Array): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, status: SnapshotStatus): void;
  status(): Status;
}
