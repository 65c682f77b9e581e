// What the simulator asks of a Raft implementation (RaftImpl, and the SimStorage its node loop persists into),
// and the options a simulated cluster is built with. Only core/raft/types.ts's contract appears here.
import type {
  ConfChange,
  ConfState,
  Config,
  Entry,
  HardState,
  NodeId,
  RawNodeApi,
  ReadOnlyOption,
  Snapshot,
  Storage,
} from "../../core/raft/types.js";
import type { NetworkFaults } from "./network.js";

/** The write side of the log store the node loop persists into (MemoryStorage's). */
export interface SimStorage extends Storage {
  append(entries: readonly Entry[]): void;
  setHardState(hs: HardState): void;
  applySnapshot(snap: Snapshot): void;
  createSnapshot(index: number, cs: ConfState, data: Uint8Array): Snapshot;
  compact(index: number): void;
}

export type TickMode = "etcd34" | "etcd33";

export interface RaftImpl {
  newRawNode(config: Config): RawNodeApi;
  /** Storage of a founding member: every founder starts from the same voters. */
  bootstrapStorage(cs: ConfState): SimStorage;
  /** Empty storage (no log, no members), for a member joining later. */
  emptyStorage(): SimStorage;
  decodeConfChange(data: Uint8Array): ConfChange;
  initialTickAdvance(o: {
    clusterSize: number;
    electionTicks: number;
    activePeers: number;
    mode: TickMode;
  }): number | "wait";
}

export interface ClusterOptions {
  readonly seed: number;
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  readonly faults?: NetworkFaults;
  readonly unitsPerTick?: number;
  /** Make a snapshot and compact the log every this many applied entries (0: never). */
  readonly snapshotEvery?: number;
  /** Entries kept below a snapshot when compacting. */
  readonly keepAfterCompact?: number;
  readonly maxSizePerMsgBytes?: number;
  readonly maxInflightMsgs?: number;
  readonly maxUncommittedEntriesBytes?: number;
  /** The state machine survives crashes with its applied index (as etcd's backend with its consistent index),
   *  so a restart passes Config.applied > the snapshot index. Default: rebuilt from the snapshot. */
  readonly durableStateMachine?: boolean;
}

export interface RecordedRead {
  readonly node: NodeId;
  readonly index: number;
  readonly ctx: string;
  readonly atUnits: number;
}

export type CrashPoint = "beforePersist" | "afterPersist";
