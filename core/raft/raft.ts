// The Raft state machine (etcd-io/raft's raft struct, etcd 3.4 semantics): terms, roles, elections with pre-vote
// and check-quorum, log replication with per-peer progress, snapshots, ReadIndex, leader transfer, learners and
// single-step conf changes. Pure: messages go out through `msgs`, randomness comes from config.rng.
//
// This file holds the state, the role changes, the ticks and step(), which settles a message's term and hands it
// to its role: step_leader.ts, step_follower.ts (followers and candidates), election.ts (campaigns and votes),
// replication.ts (the leader's appends and heartbeats), read_index.ts and membership.ts.

import { CAMPAIGN_TRANSFER, handleVoteRequest, hup } from "./election.js";
import { assert } from "./errors.js";
import { EMPTY, bytesEqual, newMessage, type MessageInit, type Mutable } from "./message.js";
import { addNode, applyConfState, removeNode, replayAppliedConfChanges } from "./membership.js";
import { Progress, committedIndex } from "./progress.js";
import { RaftLog } from "./raft_log.js";
import { ReadOnly } from "./read_only.js";
import { stepCandidate, stepFollower } from "./step_follower.js";
import { stepLeader } from "./step_leader.js";
import type {
  ConfChange,
  ConfState,
  Config,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadOnlyOption,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
} from "./types.js";
import { ConfChangeType, EntryType, MessageType as MT, NONE, ReadOnlyOption as RO, StateType as ST } from "./types.js";
import { payloadsSizeBytes } from "./util.js";

// Re-exported: the Raft core's callers and tests reach these through this module.
export { CAMPAIGN_TRANSFER } from "./election.js";
export { newMessage, type MessageInit } from "./message.js";
export { MAX_PENDING_READ_INDEX } from "./read_index.js";

export const DEFAULT_MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 512;

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSizeBytes: number;
  readonly maxUncommittedSizeBytes: number;
  readonly maxInflight: number;
  /** Progress of every member (voters and learners), self included. */
  prs = new Map<NodeId, Progress>();
  state: StateType = ST.Follower;
  /** This node is a learner in its current configuration. */
  isLearner = false;
  votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  lead: NodeId = NONE;
  /** Target of a leader transfer in progress, NONE otherwise. */
  leadTransferee: NodeId = NONE;
  /** Only one conf change may be pending: the index of the latest one proposed; a new one needs applied ≥ it. */
  pendingConfIndex = 0;
  /** Bytes of entry payloads appended by this leader and not yet handed out as committed. */
  uncommittedSizeBytes = 0;
  readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term; served once it has (bounded). */
  pendingReadIndexMessages: Message[] = [];
  readonly readOnlyOption: ReadOnlyOption;
  /** Leader/candidate: ticks since the last election timeout; follower: since last hearing from the leader. */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** Drawn from [electionTimeout, 2*electionTimeout) on every reset. */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  private readonly cfg: Config;

  constructor(c: Config) {
    assert(c.id !== NONE, "cannot use none as id");
    assert(c.heartbeatTick > 0, `heartbeat tick(${c.heartbeatTick}) must be greater than 0`);
    assert(
      c.electionTick > c.heartbeatTick,
      `election tick(${c.electionTick}) must be greater than heartbeat tick(${c.heartbeatTick})`,
    );
    this.cfg = c;
    this.id = c.id;
    this.maxMsgSizeBytes = c.maxSizePerMsgBytes ?? DEFAULT_MAX_SIZE_PER_MSG_BYTES;
    this.maxInflight = c.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS;
    assert(this.maxInflight > 0, `max inflight messages(${this.maxInflight}) must be greater than 0`);
    this.maxUncommittedSizeBytes = c.maxUncommittedEntriesBytes ?? Number.MAX_SAFE_INTEGER;
    this.raftLog = new RaftLog(c.storage, this.maxMsgSizeBytes);
    this.checkQuorum = c.checkQuorum ?? true;
    this.preVote = c.preVote ?? true;
    this.readOnlyOption = c.readOnlyOption ?? RO.Safe;
    assert(
      !(this.readOnlyOption === RO.LeaseBased && !this.checkQuorum),
      "checkQuorum must be enabled when readOnlyOption is leaseBased",
    );
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;

    const { hardState, confState } = c.storage.initialState();
    applyConfState(this, confState);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    const applied = c.applied ?? 0;
    if (applied > 0) this.raftLog.appliedTo(applied);
    if (c.replayAppliedConfChanges !== false) replayAppliedConfChanges(this, c.storage);
    this.becomeFollower(this.term, NONE);
  }

  // ---- state -----------------------------------------------------------------------------------------------

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  confState(): ConfState {
    const voters: NodeId[] = [];
    const learners: NodeId[] = [];
    for (const [id, pr] of this.prs) (pr.isLearner ? learners : voters).push(id);
    const byId = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
    return { voters: voters.sort(byId), learners: learners.sort(byId) };
  }

  private loadState(hs: HardState): void {
    const last = this.raftLog.lastIndex();
    assert(
      hs.commit >= this.raftLog.committed && hs.commit <= last,
      `hardState commit(${hs.commit}) out of range [${this.raftLog.committed}, ${last}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** Can this node campaign: it is a voter in its own configuration. */
  promotable(): boolean {
    const pr = this.prs.get(this.id);
    return pr !== undefined && !pr.isLearner;
  }

  votersCount(): number {
    let n = 0;
    for (const pr of this.prs.values()) if (!pr.isLearner) n++;
    return n;
  }

  // ---- sending -----------------------------------------------------------------------------------------------

  /** Buffers `m` for the next Ready, stamping from and (except for proposals and read requests) the term. */
  send(init: MessageInit): void {
    const t = init.type;
    const m: Mutable<Message> = newMessage(init);
    m.from = this.id;
    if (t === MT.Vote || t === MT.VoteResp || t === MT.PreVote || t === MT.PreVoteResp) {
      assert(m.term !== 0, `term should be set when sending ${t}`);
    } else {
      assert(m.term === 0, `term should not be set when sending ${t} (was ${m.term})`);
      if (t !== MT.Prop && t !== MT.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  // ---- committing and appending ----------------------------------------------------------------------------

  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(committedIndex(this.prs), this.term);
  }

  /** Leader: appends proposals at the end of its log; false when the uncommitted-size bound refuses them. */
  appendEntry(es: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    const ents: Entry[] = new Array<Entry>(es.length);
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      ents[i] = { term: this.term, index: li + 1 + i, type: e.type, data: e.data };
    }
    if (!this.increaseUncommittedSize(ents)) return false;
    const last = this.raftLog.append(ents);
    this.prs.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
    return true;
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadsSizeBytes(ents);
    if (this.uncommittedSizeBytes > 0 && s > 0 && this.uncommittedSizeBytes + s > this.maxUncommittedSizeBytes)
      return false;
    this.uncommittedSizeBytes += s;
    return true;
  }

  /** Committed entries were handed out: they no longer count against the uncommitted bound. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.uncommittedSizeBytes === 0) return;
    this.uncommittedSizeBytes = Math.max(0, this.uncommittedSizeBytes - payloadsSizeBytes(ents));
  }

  // ---- role changes ----------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    const last = this.raftLog.lastIndex();
    for (const [id, old] of this.prs) {
      const pr = new Progress(last + 1, this.maxInflight, old.isLearner);
      if (id === this.id) pr.match = last;
      this.prs.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSizeBytes = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.cfg.rng.nextInt(this.electionTimeout);
    assert(
      this.randomizedElectionTimeout >= this.electionTimeout &&
        this.randomizedElectionTimeout < 2 * this.electionTimeout,
      `randomized election timeout(${this.randomizedElectionTimeout}) outside [${this.electionTimeout}, ${2 * this.electionTimeout})`,
    );
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = ST.Follower;
  }

  becomePreCandidate(): void {
    assert(this.state !== ST.Leader, "invalid transition [leader -> pre-candidate]");
    // Pre-vote does not touch term or vote (thesis §9.6); only the tally and the leader are cleared.
    this.votes = new Map();
    this.lead = NONE;
    this.resetRandomizedElectionTimeout();
    this.state = ST.PreCandidate;
  }

  becomeCandidate(): void {
    assert(this.state !== ST.Leader, "invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = ST.Candidate;
  }

  becomeLeader(): void {
    assert(this.state !== ST.Follower, "invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = ST.Leader;
    this.prs.get(this.id)?.becomeReplicate();
    // Conservatively treat every entry in the log as a possible pending conf change (etcd does the same).
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The empty entry lets this leader commit (and learn the commit index of) everything before its term.
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]);
    assert(ok, "empty entry was dropped");
  }

  // ---- ticks -------------------------------------------------------------------------------------------------

  tick(): void {
    if (this.state === ST.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: MT.Hup, to: NONE, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage({ type: MT.CheckQuorum, to: NONE, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === ST.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== ST.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: MT.Beat, to: NONE, from: this.id }));
    }
  }

  // ---- step --------------------------------------------------------------------------------------------------

  /** Settles the message's term (local / higher / lower), then hands it to the role's handler. */
  step(m: Message): void {
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term && m.term !== 0) {
      this.stepLowerTerm(m);
      return;
    }
    switch (m.type) {
      case MT.Hup:
        hup(this);
        return;
      case MT.Vote:
      case MT.PreVote:
        handleVoteRequest(this, m);
        return;
      default:
        if (this.state === ST.Leader) stepLeader(this, m);
        else if (this.state === ST.Follower) stepFollower(this, m);
        else stepCandidate(this, m);
    }
  }

  /** Returns whether to go on processing m. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === MT.Vote || m.type === MT.PreVote) {
      const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
      const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
      // Thesis §4.2.3: while we hear from a leader, ignore disruptive (pre-)votes; no term change, no answer.
      if (!force && inLease) return false;
    }
    if (m.type === MT.PreVote) return true; // never change our term for a pre-vote
    if (m.type === MT.PreVoteResp && !m.reject) return true; // term is raised when the pre-vote wins
    if (m.type === MT.App || m.type === MT.Heartbeat || m.type === MT.Snap) this.becomeFollower(m.term, m.from);
    else this.becomeFollower(m.term, NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === MT.Heartbeat || m.type === MT.App)) {
      // A stale leader (e.g. one that was partitioned) learns our term and steps down; without this, with
      // check-quorum or pre-vote a node with a higher term could never win against it.
      this.send({ type: MT.AppResp, to: m.from });
    } else if (m.type === MT.PreVote) {
      // Tell the pre-candidate our term so it can catch up instead of retrying forever.
      this.send({ type: MT.PreVoteResp, to: m.from, term: this.term, reject: true });
    }
  }

  // ---- snapshots and membership ------------------------------------------------------------------------

  /** Installs a snapshot newer than our commit; false when we already have it (fast-forwarding commit). */
  restore(s: Snapshot): boolean {
    const { index, term } = s.metadata;
    if (index <= this.raftLog.committed) return false;
    if (this.raftLog.matchTerm(index, term)) {
      this.raftLog.commitTo(index);
      return false;
    }
    this.raftLog.restore(s);
    this.prs = new Map();
    applyConfState(this, s.metadata.confState);
    return true;
  }

  /** Applies a committed conf change on this node; returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    if (cc.nodeId === NONE) {
      this.pendingConfIndex = 0; // an empty change only releases the pending slot
      return this.confState();
    }
    switch (cc.type) {
      case ConfChangeType.AddNode:
        addNode(this, cc.nodeId, false);
        break;
      case ConfChangeType.AddLearnerNode:
        addNode(this, cc.nodeId, true);
        break;
      case ConfChangeType.RemoveNode:
        removeNode(this, cc.nodeId);
        break;
      case ConfChangeType.UpdateNode:
        break;
    }
    return this.confState();
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}
