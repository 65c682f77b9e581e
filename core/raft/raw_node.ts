// RawNode: the application's handle on the Raft state machine (etcd-io/raft's RawNode). The application ticks
// it, steps peer messages into it, proposes, and drains Ready → persist → send → apply → advance().

import { RaftError, RaftErrorCode, assert } from "./errors.js";
import { encodeConfChange } from "./conf_change.js";
import { Raft, isEmptyHardState, newMessage } from "./raft.js";
import type {
  ConfChange,
  ConfState,
  Config,
  Entry,
  HardState,
  Message,
  NodeId,
  RawNodeApi,
  Ready,
  SnapshotStatus,
  SoftState,
  Status,
  ProgressStatus,
} from "./types.js";
import { EntryType, MessageType as MT, NONE, SnapshotStatus as SS, StateType as ST } from "./types.js";

const LOCAL_TYPES: ReadonlySet<string> = new Set([MT.Hup, MT.Beat, MT.Unreachable, MT.SnapStatus, MT.CheckQuorum]);
const RESPONSE_TYPES: ReadonlySet<string> = new Set([
  MT.AppResp,
  MT.VoteResp,
  MT.HeartbeatResp,
  MT.Unreachable,
  MT.PreVoteResp,
]);
const NO_ENTRIES: readonly Entry[] = [];

export class RawNode implements RawNodeApi {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Ticks n times (etcd's advanceTicks): the election clock moves as by natural ticks, firing no more than they would. */
  advanceTicks(n: number): void {
    assert(Number.isInteger(n) && n >= 0, `advanceTicks(${n}) needs a non-negative integer`);
    for (let i = 0; i < n; i++) this.raft.tick();
  }

  campaign(): void {
    this.raft.step(newMessage({ type: MT.Hup, to: NONE, from: this.raft.id }));
  }

  propose(data: Uint8Array): void {
    this.raft.step(
      newMessage({
        type: MT.Prop,
        to: NONE,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /** Proposes many normal entries in one MsgProp (one log append, one broadcast). */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    const entries: Entry[] = datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data }));
    this.raft.step(newMessage({ type: MT.Prop, to: NONE, from: this.raft.id, entries }));
  }

  /**
   * Proposes a membership change; apply it with applyConfChange() on every node once committed. One at a time:
   * as etcd, a conf change proposed while another is not yet applied on the leader is replaced by an empty
   * normal entry (no error is thrown; the caller sees its change never applied and may retry).
   */
  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    this.raft.step(
      newMessage({
        type: MT.Prop,
        to: NONE,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }],
      }),
    );
  }

  /**
   * Steps a message from a peer. Throws STEP_LOCAL_MSG for local-only types and STEP_PEER_NOT_FOUND for a
   * response from a member not in the configuration (etcd's transport ignores both). A forwarded proposal that
   * cannot be taken is dropped silently, as etcd's server does (the proposer times out and retries).
   */
  step(m: Message): void {
    if (LOCAL_TYPES.has(m.type)) throw new RaftError(RaftErrorCode.StepLocalMsg, `${m.type} from ${m.from}`);
    if (!wellFormed(m)) return; // garbage numbers from the wire: ignore, as a message lost in transit
    // Term 0 marks a local message inside the core; from a peer only proposals and read requests carry it.
    if (m.term === 0 && m.type !== MT.Prop && m.type !== MT.ReadIndex) return;
    if (RESPONSE_TYPES.has(m.type) && !this.raft.prs.has(m.from)) {
      throw new RaftError(RaftErrorCode.StepPeerNotFound, `${m.type} from ${m.from}`);
    }
    try {
      this.raft.step(m);
    } catch (e) {
      if (e instanceof RaftError && e.code === RaftErrorCode.ProposalDropped && m.from !== this.raft.id) return;
      throw e;
    }
  }

  hasReady(): boolean {
    const r = this.raft;
    if (!softStateEqual(r.softState(), this.prevSoftState)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    if (r.raftLog.unstable.snapshot !== undefined) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) return true;
    return r.readStates.length > 0;
  }

  /** The work to do now; messages and read states are handed over (not repeated by the next Ready). */
  ready(): Ready {
    const r = this.raft;
    const entries = r.raftLog.unstableEntries().slice();
    const committedEntries = r.raftLog.hasNextEnts() ? r.raftLog.nextEnts() : NO_ENTRIES;
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = !softStateEqual(ss, this.prevSoftState);
    const hardChanged = !isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState);
    const snapshot = r.raftLog.unstable.snapshot;
    const rd: { -readonly [K in keyof Ready]: Ready[K] } = {
      readStates: r.readStates,
      entries,
      committedEntries,
      messages: r.msgs,
      mustSync: entries.length > 0 || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote,
    };
    if (softChanged) rd.softState = ss;
    if (hardChanged) rd.hardState = hs;
    if (snapshot !== undefined) rd.snapshot = snapshot;
    // Handed out: as etcd's acceptReady.
    if (softChanged) this.prevSoftState = ss;
    r.msgs = [];
    r.readStates = [];
    if (r.state === ST.Leader) r.reduceUncommittedSize(committedEntries);
    return rd;
  }

  /**
   * Hands over, ahead of the next Ready, the proposals and read requests this follower forwards to its leader.
   * They promise nothing about this node's log or vote, so unlike the rest of a follower's messages they need not
   * wait until a Ready is persisted; sent at once, they reach the leader's next batch instead of a later one.
   */
  takeForwards(): Message[] {
    const r = this.raft;
    if (r.msgs.length === 0 || r.state !== ST.Follower) return [];
    const forwards: Message[] = [];
    const rest: Message[] = [];
    for (const m of r.msgs) (m.type === MT.Prop || m.type === MT.ReadIndex ? forwards : rest).push(m);
    if (forwards.length > 0) r.msgs = rest;
    return forwards;
  }

  /** The application has persisted and applied `rd`. */
  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) r.raftLog.appliedTo(lastCommitted.index);
    else if (rd.snapshot !== undefined && rd.snapshot.metadata.index > r.raftLog.applied)
      r.raftLog.appliedTo(rd.snapshot.metadata.index);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) r.raftLog.stableTo(lastEntry.index, lastEntry.term);
    if (rd.snapshot !== undefined) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  transferLeader(transferee: NodeId): void {
    this.raft.step(newMessage({ type: MT.TransferLeader, to: NONE, from: transferee }));
  }

  readIndex(requestCtx: Uint8Array): void {
    this.raft.step(newMessage({ type: MT.ReadIndex, to: NONE, from: this.raft.id, context: requestCtx }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: MT.Unreachable, to: NONE, from: id }));
  }

  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(newMessage({ type: MT.SnapStatus, to: NONE, from: id, reject: status === SS.Failure }));
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (r.state === ST.Leader) {
      progress = new Map();
      for (const [id, pr] of r.prs) progress.set(id, pr.toStatus());
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      confState: r.confState(),
      ...(progress !== undefined ? { progress } : {}),
    };
  }
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.raftState === b.raftState;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Every index and term is a non-negative safe integer, and so is every entry's. */
function wellFormed(m: Message): boolean {
  if (!isIndex(m.term) || !isIndex(m.index) || !isIndex(m.logTerm) || !isIndex(m.commit) || !isIndex(m.rejectHint))
    return false;
  for (const e of m.entries) if (!isIndex(e.index) || !isIndex(e.term)) return false;
  return true;
}
