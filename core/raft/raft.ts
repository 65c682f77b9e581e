// The Raft state machine (etcd-io/raft's raft struct, etcd 3.4 semantics): terms, roles, elections with pre-vote
// and check-quorum, log replication with per-peer progress, snapshots, ReadIndex, leader transfer, learners and
// single-step conf changes. Pure: messages go out through `msgs`, randomness comes from config.rng.

import { decodeConfChange } from "./conf_change.js";
import { RaftError, RaftErrorCode, assert } from "./errors.js";
import { Progress, VoteResult, committedIndex, quorumOf, voteResult } from "./progress.js";
import { RaftLog } from "./raft_log.js";
import { ReadOnly } from "./read_only.js";
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

const EMPTY: Uint8Array = new Uint8Array(0);
const NO_ENTRIES: readonly Entry[] = [];
/** Vote context marking a campaign started by MsgTimeoutNow: voters grant it despite their leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode("CampaignTransfer");

export const DEFAULT_MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 512;
/** Reads queued on a new leader before its first commit; more are dropped (the server retries them). */
export const MAX_PENDING_READ_INDEX = 4096;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type MessageInit = Partial<Mutable<Message>> & { type: Message["type"]; to: NodeId };

/** A message with etcd's zero values for every field not given. */
export function newMessage(init: MessageInit): Mutable<Message> {
  // Explicit fields (not a spread): this is on the hot path, and every message gets the same shape.
  const m: Mutable<Message> = {
    type: init.type,
    to: init.to,
    from: init.from ?? NONE,
    term: init.term ?? 0,
    logTerm: init.logTerm ?? 0,
    index: init.index ?? 0,
    entries: init.entries ?? NO_ENTRIES,
    commit: init.commit ?? 0,
    reject: init.reject ?? false,
    rejectHint: init.rejectHint ?? 0,
  };
  if (init.snapshot !== undefined) m.snapshot = init.snapshot;
  if (init.context !== undefined) m.context = init.context;
  return m;
}

const CampaignType = { PreElection: "pre", Election: "election", Transfer: "transfer" } as const;
type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

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
    this.applyConfState(confState);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    const applied = c.applied ?? 0;
    if (applied > 0) this.raftLog.appliedTo(applied);
    if (c.replayAppliedConfChanges !== false) this.replayAppliedConfChanges(c.storage);
    this.becomeFollower(this.term, NONE);
  }

  /**
   * The configuration at restart is the snapshot's plus the conf changes the application already applied
   * after it (entries in (snapshot index, applied]): those are not handed out again, so apply them here.
   */
  private replayAppliedConfChanges(storage: Config["storage"]): void {
    let snapIndex: number;
    try {
      snapIndex = storage.snapshot().metadata.index;
    } catch {
      return; // a snapshot being made: the application re-applies from the snapshot's index itself
    }
    const lo = Math.max(snapIndex + 1, this.raftLog.firstIndex());
    const hi = this.raftLog.applied;
    if (hi < lo) return;
    for (const e of this.raftLog.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER)) {
      if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data));
    }
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

  private votersCount(): number {
    let n = 0;
    for (const pr of this.prs.values()) if (!pr.isLearner) n++;
    return n;
  }

  // ---- sending ---------------------------------------------------------------------------------------------

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

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends entries (or a snapshot) to `to` if its progress allows; returns whether a message was sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    let logTerm: number | undefined;
    let ents: Entry[] | undefined;
    try {
      logTerm = this.raftLog.termOrUndefined(pr.next - 1);
      if (logTerm !== undefined) ents = this.raftLog.entries(pr.next, this.maxMsgSizeBytes);
    } catch (e) {
      if (!(e instanceof RaftError && e.code === RaftErrorCode.Compacted)) throw e;
      ents = undefined;
    }
    if (logTerm === undefined || ents === undefined) {
      // Only a compacted prefix calls for a snapshot; next-1 beyond our log would be a bug.
      assert(
        pr.next - 1 <= this.raftLog.lastIndex(),
        `progress ${to}: next(${pr.next}) > lastIndex+1(${this.raftLog.lastIndex() + 1})`,
      );
      return this.maybeSendSnapshot(to, pr);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const prevIndex = pr.next - 1;
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index;
      if (pr.state === "StateReplicate") {
        pr.optimisticUpdate(last);
        pr.inflights.add(last);
      } else if (pr.state === "StateProbe") {
        pr.probeSent = true;
      }
    }
    this.send({ type: MT.App, to, index: prevIndex, logTerm, entries: ents, commit: this.raftLog.committed });
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === RaftErrorCode.SnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    assert(snapshot.metadata.index > 0, "need non-empty snapshot");
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: MT.Snap, to, snapshot });
    return true;
  }

  sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.prs.get(to);
    const commit = Math.min(pr === undefined ? 0 : pr.match, this.raftLog.committed);
    this.send(
      ctx === undefined ? { type: MT.Heartbeat, to, commit } : { type: MT.Heartbeat, to, commit, context: ctx },
    );
  }

  bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  sendTimeoutNow(to: NodeId): void {
    this.send({ type: MT.TimeoutNow, to });
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

  // ---- elections ---------------------------------------------------------------------------------------------

  campaign(t: CampaignType): void {
    if (!this.promotable()) return;
    let term: number;
    let voteType: "MsgPreVote" | "MsgVote";
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteType = MT.PreVote;
      term = this.term + 1; // ask as if campaigning, without raising our own term
    } else {
      this.becomeCandidate();
      voteType = MT.Vote;
      term = this.term;
    }
    const res = this.poll(this.id, true);
    if (res === VoteResult.Won) {
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const index = this.raftLog.lastIndex();
    const logTerm = this.raftLog.lastTerm();
    for (const [id, pr] of this.prs) {
      if (id === this.id || pr.isLearner) continue;
      if (t === CampaignType.Transfer)
        this.send({ type: voteType, to: id, term, index, logTerm, context: CAMPAIGN_TRANSFER });
      else this.send({ type: voteType, to: id, term, index, logTerm });
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.prs, this.votes);
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
        this.hup();
        return;
      case MT.Vote:
      case MT.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        if (this.state === ST.Leader) this.stepLeader(m);
        else if (this.state === ST.Follower) this.stepFollower(m);
        else this.stepCandidate(m);
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

  private hup(): void {
    if (this.state === ST.Leader) return;
    if (!this.promotable()) return;
    if (this.raftLog.committed > this.raftLog.applied && this.hasUnappliedConfChange()) return;
    this.campaign(this.preVote ? CampaignType.PreElection : CampaignType.Election);
  }

  private hasUnappliedConfChange(): boolean {
    const ents = this.raftLog.slice(
      Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex()),
      this.raftLog.committed + 1,
      Number.MAX_SAFE_INTEGER,
    );
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private handleVoteRequest(m: Message): void {
    const respType = m.type === MT.Vote ? MT.VoteResp : MT.PreVoteResp;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MT.PreVote && m.term > this.term);
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      // A pre-vote is answered at the term it asks for, so the pre-candidate counts it.
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === MT.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else if (this.term > 0) {
      this.send({ type: respType, to: m.from, term: this.term, reject: true });
    }
    // else: a member still at term 0 with a log (one seeded from a snapshot) rejects a pre-vote silently, like a
    // lost message; a rejection must carry a term, and the pre-candidate's would raise its term for nothing.
  }

  // ---- leader ------------------------------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MT.Beat:
        this.bcastHeartbeat();
        return;
      case MT.CheckQuorum:
        if (!this.checkQuorumActive()) this.becomeFollower(this.term, NONE);
        return;
      case MT.Prop:
        this.leaderPropose(m);
        return;
      case MT.ReadIndex:
        this.leaderReadIndex(m);
        return;
    }
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MT.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MT.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MT.SnapStatus:
        if (pr.state !== "StateSnapshot") return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for the next heartbeat response (or MsgAppResp) before probing again.
        pr.probeSent = true;
        return;
      case MT.Unreachable:
        if (pr.state === "StateReplicate") pr.becomeProbe();
        return;
      case MT.TransferLeader:
        this.handleTransferLeader(m, pr);
        return;
    }
  }

  private leaderPropose(m: Message): void {
    if (m.entries.length === 0) {
      assert(m.from !== this.id, "stepped empty MsgProp"); // our own API never does this
      return; // a peer's malformed proposal: ignore
    }
    if (!this.prs.has(this.id))
      throw new RaftError(RaftErrorCode.ProposalDropped, "leader was removed from the configuration");
    if (this.leadTransferee !== NONE)
      throw new RaftError(RaftErrorCode.ProposalDropped, `leader transfer to ${this.leadTransferee} in progress`);
    let ents = m.entries;
    for (let i = 0; i < ents.length; i++) {
      if (ents[i]!.type !== EntryType.ConfChange) continue;
      if (this.pendingConfIndex > this.raftLog.applied) {
        // One conf change at a time: as etcd, the second becomes an empty normal entry (it is dropped, not queued).
        const copy = ents.slice();
        copy[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY };
        ents = copy;
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(ents)) throw new RaftError(RaftErrorCode.ProposalDropped, "too many uncommitted entry bytes");
    this.bcastAppend();
  }

  private leaderReadIndex(m: Message): void {
    const ctx = m.context ?? EMPTY;
    if (this.votersCount() <= 1 && this.promotable()) {
      this.answerRead(m, this.raftLog.committed, ctx);
      return;
    }
    // Thesis §6.4: the commit index is only known to be current once this term has committed an entry;
    // until then the read waits (as newer etcd raft; 3.4 dropped it and let the server retry).
    if (!this.committedEntryInCurrentTerm()) {
      if (this.pendingReadIndexMessages.length < MAX_PENDING_READ_INDEX) this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexResponse(m);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrUndefined(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    const ctx = m.context ?? EMPTY;
    if (this.readOnlyOption === RO.Safe) {
      this.readOnly.addRequest(this.raftLog.committed, m, ctx);
      this.readOnly.recvAck(this.id, ctx);
      this.bcastHeartbeatWithCtx(ctx);
    } else {
      this.answerRead(m, this.raftLog.committed, ctx);
    }
  }

  private answerRead(req: Message, index: number, ctx: Uint8Array): void {
    if (req.from === NONE || req.from === this.id) this.readStates.push({ index, requestCtx: ctx });
    else this.send({ type: MT.ReadIndexResp, to: req.from, index, context: ctx });
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "StateReplicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    // Bad input: nobody can have acknowledged entries we never had (never let match pass our log).
    if (m.index > this.raftLog.lastIndex()) return;
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "StateProbe") pr.becomeReplicate();
    else if (pr.state === "StateSnapshot" && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "StateReplicate") pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) this.sendAppend(m.from);
    // Fill the in-flight window with whatever else is ready.
    while (this.maybeSendAppend(m.from, false)) {
      // keep sending
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === "StateReplicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
    if (this.readOnlyOption !== RO.Safe || m.context === undefined || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    let voterAcks = 0;
    for (const id of acks) {
      const p = this.prs.get(id);
      if (p !== undefined && !p.isLearner) voterAcks++;
    }
    if (voterAcks < quorumOf(this.votersCount())) return;
    for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs.req, rs.index, rs.ctx);
  }

  private handleTransferLeader(m: Message, pr: Progress): void {
    if (pr.isLearner) return; // a learner cannot lead
    const transferee = m.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within an election timeout (tickHeartbeat aborts it after that).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Leader: did a quorum of voters talk to us since the last check? Clears the marks for the next round. */
  private checkQuorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.prs) {
      if (id === this.id) {
        if (!pr.isLearner) active++;
        continue;
      }
      if (pr.recentActive && !pr.isLearner) active++;
      pr.recentActive = false;
    }
    return this.promotable() && active >= quorumOf(this.votersCount());
  }

  // ---- candidate and follower --------------------------------------------------------------------------------

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === ST.PreCandidate ? MT.PreVoteResp : MT.VoteResp;
    switch (m.type) {
      case MT.Prop:
        throw new RaftError(RaftErrorCode.ProposalDropped, "no leader");
      case MT.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MT.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MT.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === ST.PreCandidate) this.campaign(CampaignType.Election);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return; // MsgTimeoutNow and the rest: ignored while campaigning
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MT.Prop:
        if (this.lead === NONE) throw new RaftError(RaftErrorCode.ProposalDropped, "no leader");
        if (this.disableProposalForwarding)
          throw new RaftError(RaftErrorCode.ProposalDropped, "proposal forwarding disabled");
        this.send({ ...m, term: 0, to: this.lead });
        return;
      case MT.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MT.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MT.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MT.TransferLeader:
        if (this.lead === NONE) return;
        this.send({ type: MT.TransferLeader, to: this.lead, from: m.from });
        return;
      case MT.TimeoutNow:
        // Leader transfer: campaign at once, skipping pre-vote, and force voters past their lease.
        if (this.promotable()) this.campaign(CampaignType.Transfer);
        return;
      case MT.ReadIndex:
        if (this.lead === NONE) return;
        this.send({ ...m, term: 0, to: this.lead });
        return;
      case MT.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY });
        return;
      default:
        return;
    }
  }

  handleAppendEntries(m: Message): void {
    if (!validAppend(m)) return; // malformed: ignore rather than risk the log
    if (m.index < this.raftLog.committed) {
      this.send({ type: MT.AppResp, to: m.from, index: this.raftLog.committed });
      return;
    }
    const mlast = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (mlast >= 0) {
      this.send({ type: MT.AppResp, to: m.from, index: mlast });
      return;
    }
    // Fast backtracking: hint the largest index whose term is ≤ the leader's logTerm.
    const hintIndex = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    const hintTerm = this.raftLog.termOrUndefined(hintIndex) ?? 0;
    this.send({ type: MT.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  handleHeartbeat(m: Message): void {
    // The leader sends min(match, committed), so the commit is within our log; a larger one is bad input.
    if (m.commit <= this.raftLog.lastIndex()) this.raftLog.commitTo(m.commit);
    this.send(
      m.context === undefined
        ? { type: MT.HeartbeatResp, to: m.from }
        : { type: MT.HeartbeatResp, to: m.from, context: m.context },
    );
  }

  handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    if (snap === undefined) return;
    if (this.restore(snap)) this.send({ type: MT.AppResp, to: m.from, index: this.raftLog.lastIndex() });
    else this.send({ type: MT.AppResp, to: m.from, index: this.raftLog.committed });
  }

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
    this.applyConfState(s.metadata.confState);
    return true;
  }

  // ---- membership ----------------------------------------------------------------------------------------

  private applyConfState(cs: ConfState): void {
    const next = this.raftLog.lastIndex() + 1;
    for (const id of cs.voters) this.prs.set(id, new Progress(next, this.maxInflight, false));
    for (const id of cs.learners) {
      assert(!cs.voters.includes(id), `node ${id} is both voter and learner in the configuration`);
      this.prs.set(id, new Progress(next, this.maxInflight, true));
    }
    const self = this.prs.get(this.id);
    if (self !== undefined) self.match = next - 1;
    this.isLearner = self?.isLearner ?? false;
  }

  /** Applies a committed conf change on this node; returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    if (cc.nodeId === NONE) {
      this.pendingConfIndex = 0; // an empty change only releases the pending slot
      return this.confState();
    }
    switch (cc.type) {
      case ConfChangeType.AddNode:
        this.addNode(cc.nodeId, false);
        break;
      case ConfChangeType.AddLearnerNode:
        this.addNode(cc.nodeId, true);
        break;
      case ConfChangeType.RemoveNode:
        this.removeNode(cc.nodeId);
        break;
      case ConfChangeType.UpdateNode:
        break;
    }
    return this.confState();
  }

  private addNode(id: NodeId, learner: boolean): void {
    let pr = this.prs.get(id);
    if (pr === undefined) {
      pr = new Progress(this.raftLog.lastIndex() + 1, this.maxInflight, learner);
      if (id === this.id) pr.match = this.raftLog.lastIndex();
      this.prs.set(id, pr);
    } else if (pr.isLearner === learner) {
      return; // already so
    } else {
      pr.isLearner = learner; // promotion (or demotion, which etcd's membership layer never proposes)
    }
    if (id === this.id) {
      this.isLearner = learner;
      if (learner && this.state === ST.Leader) {
        this.becomeFollower(this.term, NONE); // a demoted leader stops leading, as a removed one does
        return;
      }
    }
    // A new member counts as active, so check-quorum does not depose the leader before it has answered.
    pr.recentActive = true;
    if (this.state === ST.Leader) {
      if (this.maybeCommit()) {
        this.releasePendingReadIndexMessages();
        this.bcastAppend();
      } else if (id !== this.id) this.sendAppend(id);
    }
  }

  private removeNode(id: NodeId): void {
    this.prs.delete(id);
    if (id === this.id) this.isLearner = false;
    if (this.state !== ST.Leader) return;
    if (id === this.id) {
      // A removed leader stops leading; the others elect a new one after their election timeout.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee === id) this.abortLeaderTransfer();
    if (this.votersCount() > 0 && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

/** A MsgApp's entries must be contiguous after m.index and no newer than the message's term. */
function validAppend(m: Message): boolean {
  if (m.index < 0 || m.commit < 0) return false;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.index !== m.index + 1 + i || e.term > m.term || e.term < m.logTerm) return false;
  }
  return true;
}
