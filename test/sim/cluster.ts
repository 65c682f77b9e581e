// A deterministic simulated Raft cluster: members on a virtual clock (each ticks every `unitsPerTick` time
// units at its own phase), talking over the VirtualNetwork, each driven by a node loop that follows the Ready
// contract exactly (persist → send → apply committed entries and conf changes → advance), with crash/restart from
// what was persisted. The Raft implementation is injected (RaftImpl), so the simulator knows only the contract
// in core/raft/types.ts. Every checker runs after every event; every failure message carries `seed=N`.
import type {
  ConfChange,
  ConfState,
  Config,
  Message,
  NodeId,
  RawNodeApi,
  ReadState,
  Ready,
  Rng,
  SoftState,
  StateType,
} from "../../core/raft/types.js";
import { SafetyChecker } from "./checkers.js";
import type { ClusterOptions, CrashPoint, RaftImpl, RecordedRead, SimStorage, TickMode } from "./contract.js";
import { VirtualNetwork, RELIABLE } from "./network.js";
import { SeededRng } from "./rng.js";
import { ListStateMachine, decodeText, encodeText } from "./state_machine.js";

export type { ClusterOptions, CrashPoint, RaftImpl, RecordedRead, SimStorage, TickMode } from "./contract.js";

export class SimNode {
  raw: RawNodeApi | undefined;
  sm = new ListStateMachine();
  confState: ConfState;
  state: StateType = "StateFollower";
  lead: NodeId = 0n;
  term = 0;
  commit = 0;
  lastSnapshotIndex = 0;
  /** Set by the test to crash the node in the middle of its next Ready. */
  crashAt: CrashPoint | undefined;
  /** A restart waiting for a reachable peer before advancing its ticks (etcd 3.4's rule). */
  pendingTickMode: TickMode | undefined;
  /** Ticks advanced by the restart tick rule at the last restart, or undefined. */
  advancedTicks: number | undefined;
  /** Did this incarnation ever become (pre-)candidate. */
  everCampaigned = false;
  /** Clock skew: this member ticks every `tickPeriodUnits` units (default: the cluster's unitsPerTick). */
  tickPeriodUnits: number | undefined;

  constructor(
    readonly id: NodeId,
    readonly storage: SimStorage,
    readonly phaseUnits: number,
  ) {
    this.confState = storage.initialState().confState;
  }

  get alive(): boolean {
    return this.raw !== undefined;
  }

  isLeader(): boolean {
    return this.alive && this.state === "StateLeader";
  }

  termAt(i: number): number | undefined {
    if (i === 0) return 0;
    if (i < this.storage.firstIndex() - 1 || i > this.storage.lastIndex()) return undefined;
    try {
      return this.storage.term(i);
    } catch {
      return undefined;
    }
  }
}

interface Resolved {
  electionTicks: number;
  heartbeatTicks: number;
  unitsPerTick: number;
}

export class Cluster {
  readonly seed: number;
  readonly rng: SeededRng;
  readonly net: VirtualNetwork;
  readonly checker: SafetyChecker;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly reads: RecordedRead[] = [];
  /** Conf changes applied, per node, in order. */
  readonly appliedConfChanges = new Map<NodeId, ConfChange[]>();
  readonly cfg: Resolved;
  nowUnits = 0;
  /** Messages the core refused in step() with an error etcd's transport ignores (e.g. an unknown peer). */
  refusedSteps = 0;
  /** Members whose removal was applied: stopped for good, and their messages are refused (etcd's transport
   *  rejects messages from removed members). */
  readonly removed = new Set<NodeId>();
  /** Transport reports (unreachable, snapshot status) wait here: they are stepped into the sender only after
   *  the Ready being handled is advanced, never re-entrantly in the middle of it. */
  private readonly draining = new Set<NodeId>();
  /** Highest commit index any member has reached so far. */
  maxCommitSeen = 0;
  /** ReadIndex request ctx → the highest commit index anywhere when it was requested (linearizable reads). */
  private readonly readRequests = new Map<string, number>();
  private readonly pendingReports: { id: NodeId; f: (raw: RawNodeApi) => void }[] = [];
  /** Extra state appended to failure messages (e.g. every member's term, log and configuration). */
  onFailDetail: (() => string) | undefined;
  /** Set to receive one line per crash, restart and Ready (e.g. TRACE=1 when replaying one seed). */
  trace: ((line: string) => void) | undefined;

  constructor(
    readonly impl: RaftImpl,
    readonly opts: ClusterOptions,
  ) {
    this.seed = opts.seed;
    this.rng = new SeededRng(opts.seed);
    this.net = new VirtualNetwork(this.rng.fork(), opts.faults ?? RELIABLE);
    this.net.onLost = (m, cut) => this.onLost(m, cut);
    this.checker = new SafetyChecker(opts.seed);
    this.cfg = {
      electionTicks: opts.electionTicks ?? 10,
      heartbeatTicks: opts.heartbeatTicks ?? 1,
      unitsPerTick: opts.unitsPerTick ?? 10,
    };
    const cs: ConfState = { voters: [...opts.voters], learners: [...(opts.learners ?? [])] };
    for (const id of [...cs.voters, ...cs.learners]) this.addNode(id, impl.bootstrapStorage(cs));
  }

  /** Fails with the seed in the message, so any failure can be replayed. */
  fail(what: string): never {
    const detail = this.onFailDetail?.();
    throw new Error(
      `seed=${this.seed} t=${this.nowUnits} (tick ${this.nowTicks()}): ${what}${detail !== undefined ? `\n${detail}` : ""}`,
    );
  }

  nowTicks(): number {
    return Math.floor(this.nowUnits / this.cfg.unitsPerTick);
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) this.fail(`no node ${id}`);
    return n;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  liveIds(): NodeId[] {
    return this.ids().filter((id) => this.node(id).alive);
  }

  /** Starts a member with the given storage (founder or joiner). */
  addNode(id: NodeId, storage: SimStorage, rng?: Rng): SimNode {
    if (this.nodes.has(id)) this.fail(`node ${id} exists`);
    const n = new SimNode(id, storage, this.rng.nextInt(this.cfg.unitsPerTick));
    this.nodes.set(id, n);
    this.appliedConfChanges.set(id, []);
    this.boot(n, rng);
    return n;
  }

  private boot(n: SimNode, rng?: Rng): void {
    const init = n.storage.initialState();
    let snapIndex = 0;
    let snapData: Uint8Array = new Uint8Array();
    try {
      const snap = n.storage.snapshot();
      snapIndex = snap.metadata.index;
      snapData = snap.data;
    } catch {
      // a snapshot being made: start from index 0 (cannot happen with in-memory storage)
    }
    const keep = this.opts.durableStateMachine === true && n.sm.applied > snapIndex;
    if (!keep) {
      n.sm = new ListStateMachine();
      n.sm.restore(snapData, snapIndex);
      n.confState = init.confState;
    }
    const applied = n.sm.applied;
    n.lastSnapshotIndex = snapIndex;
    n.term = init.hardState.term;
    n.commit = init.hardState.commit;
    n.state = "StateFollower";
    n.lead = 0n;
    n.everCampaigned = false;
    this.checker.onRestart(n.id, init.hardState, applied);
    const config: Config = {
      id: n.id,
      electionTick: this.cfg.electionTicks,
      heartbeatTick: this.cfg.heartbeatTicks,
      storage: n.storage,
      applied,
      checkQuorum: this.opts.checkQuorum ?? true,
      preVote: this.opts.preVote ?? true,
      rng: rng ?? this.rng.fork(),
      ...(this.opts.readOnlyOption !== undefined ? { readOnlyOption: this.opts.readOnlyOption } : {}),
      ...(this.opts.maxSizePerMsgBytes !== undefined ? { maxSizePerMsgBytes: this.opts.maxSizePerMsgBytes } : {}),
      ...(this.opts.maxInflightMsgs !== undefined ? { maxInflightMsgs: this.opts.maxInflightMsgs } : {}),
      ...(this.opts.maxUncommittedEntriesBytes !== undefined
        ? { maxUncommittedEntriesBytes: this.opts.maxUncommittedEntriesBytes }
        : {}),
    };
    n.raw = this.guard(n.id, "new RawNode", () => this.impl.newRawNode(config));
    this.drain(n);
    this.flushReports();
  }

  /** Runs `f` against the core; an exception there is a core failure and is reported with the seed. */
  private guard<T>(id: NodeId, what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      const err = e as Error;
      if (err.message?.startsWith("seed=")) throw err;
      const wrapped = new Error(`seed=${this.seed} t=${this.nowUnits}: node ${id} ${what} threw: ${err.message}`);
      wrapped.stack = `${wrapped.message}\n${err.stack ?? ""}`;
      throw wrapped;
    }
  }

  /** Starts a member that joins later (after its conf change was proposed). Like a member that is seeded with
   *  a recent snapshot of `donor`'s state machine and configuration at its applied index, it replays the conf
   *  changes after that index from the leader's log, so it always knows the whole configuration. */
  startJoiner(id: NodeId, donor: NodeId, rng?: Rng): SimNode {
    const d = this.node(donor);
    const storage = this.impl.emptyStorage();
    const index = d.sm.applied;
    const term = d.termAt(index);
    if (index > 0) {
      if (term === undefined) this.fail(`donor ${donor} has no term at its applied index ${index}`);
      storage.applySnapshot({ metadata: { index, term, confState: d.confState }, data: d.sm.snapshotData() });
      storage.setHardState({ term: 0, vote: 0n, commit: index });
    } else {
      storage.applySnapshot({ metadata: { index: 0, term: 0, confState: d.confState }, data: new Uint8Array() });
    }
    return this.addNode(id, storage, rng);
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    this.trace?.(`t=${this.nowUnits} crash ${id}`);
    n.raw = undefined;
    n.state = "StateFollower";
    n.pendingTickMode = undefined;
    this.checker.onStepDown(id);
  }

  /** Restarts a crashed member from its persisted state; `tickMode` applies the restart tick rule. */
  restart(id: NodeId, o: { tickMode?: TickMode; rng?: Rng } = {}): void {
    const n = this.node(id);
    if (n.alive) this.fail(`restart of live node ${id}`);
    if (this.removed.has(id)) this.fail(`restart of removed node ${id}`);
    this.trace?.(`t=${this.nowUnits} restart ${id}`);
    this.boot(n, o.rng);
    n.advancedTicks = undefined;
    n.pendingTickMode = o.tickMode;
    this.maybeAdvanceTicks(n);
  }

  private maybeAdvanceTicks(n: SimNode): void {
    const mode = n.pendingTickMode;
    if (mode === undefined || n.raw === undefined) return;
    const peers = [...n.confState.voters, ...n.confState.learners].filter((p) => p !== n.id);
    const activePeers = peers.filter(
      (p) => this.nodes.get(p)?.alive === true && this.net.canReach(n.id, p) && this.net.canReach(p, n.id),
    ).length;
    const clusterSize = n.confState.voters.length;
    const adv = this.impl.initialTickAdvance({ clusterSize, electionTicks: this.cfg.electionTicks, activePeers, mode });
    if (adv === "wait") return;
    n.pendingTickMode = undefined;
    n.advancedTicks = adv;
    const raw = n.raw;
    this.guard(n.id, "advanceTicks", () => raw.advanceTicks(adv));
    this.drain(n);
    this.flushReports();
  }

  // ---- driving the clock ------------------------------------------------------------------------------

  /** Advances the virtual clock by one unit: delivers due messages, ticks the members whose tick falls now. */
  stepUnit(): void {
    this.flushReports();
    this.nowUnits++;
    this.checker.now = this.nowUnits;
    for (let env = this.net.takeDue(this.nowUnits); env !== undefined; env = this.net.takeDue(this.nowUnits)) {
      this.deliver(env.msg);
      this.flushReports();
    }
    for (const n of this.nodes.values()) {
      const period = n.tickPeriodUnits ?? this.cfg.unitsPerTick;
      if (n.raw === undefined || (this.nowUnits - n.phaseUnits) % period !== 0) continue;
      if (n.pendingTickMode !== undefined) this.maybeAdvanceTicks(n);
      const raw = n.raw;
      if (raw === undefined) continue;
      this.guard(n.id, "tick", () => raw.tick());
      this.drain(n);
      this.flushReports();
    }
  }

  runTicks(ticks: number): void {
    const end = this.nowUnits + ticks * this.cfg.unitsPerTick;
    while (this.nowUnits < end) this.stepUnit();
  }

  /** Runs until `pred` holds (checked after every unit); returns the ticks it took, fails after `maxTicks`. */
  runUntil(pred: () => boolean, maxTicks: number, what: string): number {
    const start = this.nowUnits;
    const end = start + maxTicks * this.cfg.unitsPerTick;
    while (!pred()) {
      if (this.nowUnits >= end) this.fail(`${what}: not reached within ${maxTicks} ticks`);
      this.stepUnit();
    }
    return (this.nowUnits - start) / this.cfg.unitsPerTick;
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n?.raw === undefined || this.removed.has(m.from)) {
      this.onLost(m, false);
      return;
    }
    const raw = n.raw;
    try {
      raw.step(m);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code !== "STEP_PEER_NOT_FOUND" && code !== "STEP_LOCAL_MSG")
        this.guard(n.id, `step(${m.type} from ${m.from})`, () => {
          throw e;
        });
      this.refusedSteps++;
    }
    this.drain(n);
    if (m.type === "MsgSnap") this.report(m.from, (raw2) => raw2.reportSnapshot(m.to, "finish"));
  }

  private onLost(m: Message, cut: boolean): void {
    if (m.type === "MsgSnap") this.report(m.from, (raw) => raw.reportSnapshot(m.to, "failure"));
    else if (cut) this.report(m.from, (raw) => raw.reportUnreachable(m.to));
  }

  private report(id: NodeId, f: (raw: RawNodeApi) => void): void {
    this.pendingReports.push({ id, f });
  }

  private flushReports(): void {
    for (let r = this.pendingReports.shift(); r !== undefined; r = this.pendingReports.shift()) {
      const n = this.nodes.get(r.id);
      const raw = n?.raw;
      if (n === undefined || raw === undefined) continue;
      const f = r.f;
      this.guard(r.id, "report", () => f(raw));
      this.drain(n);
    }
  }

  // ---- the Ready loop -----------------------------------------------------------------------------------

  /** The node loop: while the core has a Ready, persist → send → apply → advance, then check invariants. */
  drain(n: SimNode): void {
    if (this.draining.has(n.id)) this.fail(`node ${n.id}: re-entrant Ready handling (ready() before advance())`);
    this.draining.add(n.id);
    try {
      this.drainLoop(n);
    } finally {
      this.draining.delete(n.id);
    }
  }

  private drainLoop(n: SimNode): void {
    for (let rounds = 0; n.raw !== undefined; rounds++) {
      if (this.removed.has(n.id)) return this.crash(n.id);
      const raw = n.raw;
      if (rounds > 10_000) this.fail(`node ${n.id}: Ready loop did not settle after ${rounds} rounds`);
      if (!this.guard(n.id, "hasReady", () => raw.hasReady())) break;
      const rd = this.guard(n.id, "ready", () => raw.ready());
      if (this.trace !== undefined) this.trace(describeReady(this.nowUnits, n.id, rd, n.crashAt));
      if (n.crashAt === "beforePersist") return this.crashMidReady(n);
      this.persist(n, rd);
      if (n.crashAt === "afterPersist") return this.crashMidReady(n);
      for (const m of rd.messages) this.send(n, m);
      if (rd.softState !== undefined) this.onSoftState(n, rd.softState);
      this.apply(n, raw, rd);
      for (const rs of rd.readStates) this.onReadState(n, rs);
      this.guard(n.id, "advance", () => raw.advance(rd));
      this.maybeCompact(n);
    }
    if (n.isLeader()) this.checker.checkLeader(n.id, (i) => n.termAt(i), n.storage.firstIndex());
  }

  private crashMidReady(n: SimNode): void {
    n.crashAt = undefined;
    this.crash(n.id);
  }

  private send(n: SimNode, m: Message): void {
    if (m.from !== n.id) this.fail(`node ${n.id} sent a message from ${m.from}`);
    if (m.to === n.id) this.fail(`node ${n.id} sent ${m.type} to itself through Ready`);
    this.net.send(m, this.nowUnits);
  }

  private persist(n: SimNode, rd: Ready): void {
    const s = n.storage;
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) s.applySnapshot(rd.snapshot);
    const first = rd.entries[0];
    if (first !== undefined) {
      const prevTerm = n.termAt(first.index - 1);
      s.append(rd.entries);
      this.checker.onAppend(n.id, rd.entries, prevTerm);
    }
    if (rd.hardState !== undefined) {
      s.setHardState(rd.hardState);
      this.checker.onPersistHardState(n.id, rd.hardState);
      n.term = rd.hardState.term;
    }
    const commit = rd.hardState?.commit ?? n.commit;
    if (commit !== n.commit || rd.hardState !== undefined) {
      this.checker.onCommit(n.id, commit, n.term, (i) => n.termAt(i));
      n.commit = commit;
      if (commit > this.maxCommitSeen) this.maxCommitSeen = commit;
    }
  }

  private onSoftState(n: SimNode, ss: SoftState): void {
    const wasLeader = n.state === "StateLeader";
    n.state = ss.raftState;
    n.lead = ss.lead;
    if (ss.raftState === "StateCandidate" || ss.raftState === "StatePreCandidate") n.everCampaigned = true;
    if (ss.raftState === "StateLeader") {
      const term = n.raw?.status().hardState.term ?? n.term;
      this.checker.onLeader(n.id, term);
    } else if (wasLeader) {
      this.checker.onStepDown(n.id);
    }
  }

  private apply(n: SimNode, raw: RawNodeApi, rd: Ready): void {
    const snap = rd.snapshot;
    if (snap !== undefined && snap.metadata.index > 0) {
      this.checker.onApplySnapshot(n.id, snap.metadata.index, snap.metadata.term);
      n.sm.restore(snap.data, snap.metadata.index);
      n.confState = snap.metadata.confState;
      n.lastSnapshotIndex = snap.metadata.index;
      if (n.commit < snap.metadata.index) n.commit = snap.metadata.index;
    }
    for (const e of rd.committedEntries) {
      this.checker.onApply(n.id, e);
      if (e.type === 1) {
        const cc = this.impl.decodeConfChange(e.data);
        n.confState = this.guard(n.id, "applyConfChange", () => raw.applyConfChange(cc));
        this.appliedConfChanges.get(n.id)?.push(cc);
        n.sm.apply(e.index, undefined);
        if (cc.type === 1) this.removed.add(cc.nodeId);
      } else {
        n.sm.apply(e.index, e.data.length > 0 ? decodeText(e.data) : undefined);
      }
    }
  }

  /** A read index must cover every write committed before the read was requested, or the read is stale. */
  private onReadState(n: SimNode, rs: ReadState): void {
    const ctx = decodeText(rs.requestCtx);
    const floor = this.readRequests.get(ctx);
    if (floor !== undefined && rs.index < floor) {
      this.fail(
        `stale read: node ${n.id} got read index ${rs.index} for "${ctx}", but index ${floor} was committed before the request`,
      );
    }
    this.reads.push({ node: n.id, index: rs.index, ctx, atUnits: this.nowUnits });
  }

  private maybeCompact(n: SimNode): void {
    const every = this.opts.snapshotEvery ?? 0;
    if (every <= 0 || n.sm.applied - n.lastSnapshotIndex < every) return;
    const index = n.sm.applied;
    n.storage.createSnapshot(index, n.confState, n.sm.snapshotData());
    n.lastSnapshotIndex = index;
    const compactTo = index - (this.opts.keepAfterCompact ?? 0);
    if (compactTo > n.storage.firstIndex()) n.storage.compact(compactTo);
  }

  // ---- what tests call ----------------------------------------------------------------------------------

  /** Proposes `payload` at node `id`; false when the core dropped it (no leader, transfer in progress). */
  propose(id: NodeId, payload: string): boolean {
    return this.callCore(id, (raw) => raw.propose(encodeText(payload)));
  }

  proposeConfChange(id: NodeId, cc: ConfChange): boolean {
    return this.callCore(id, (raw) => raw.proposeConfChange(cc));
  }

  transferLeader(id: NodeId, to: NodeId): void {
    this.callCore(id, (raw) => raw.transferLeader(to));
  }

  readIndex(id: NodeId, ctx: string): void {
    if (!this.readRequests.has(ctx)) this.readRequests.set(ctx, this.maxCommitSeen);
    this.callCore(id, (raw) => raw.readIndex(encodeText(ctx)));
  }

  campaign(id: NodeId): void {
    this.callCore(id, (raw) => raw.campaign());
  }

  private callCore(id: NodeId, f: (raw: RawNodeApi) => void): boolean {
    const n = this.node(id);
    const raw = n.raw;
    if (raw === undefined) return false;
    let ok = true;
    try {
      f(raw);
    } catch (e) {
      if ((e as { code?: unknown }).code !== "PROPOSAL_DROPPED")
        this.guard(id, "call", () => {
          throw e;
        });
      ok = false;
    }
    this.drain(n);
    this.flushReports();
    return ok;
  }

  /** Live leaders, as the members themselves believe. */
  leaders(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.isLeader());
  }

  /** The one live leader with the highest term, if every live member that has a leader agrees on it. */
  stableLeader(): NodeId | undefined {
    const ls = this.leaders();
    if (ls.length !== 1) return undefined;
    const l = ls[0] as SimNode;
    for (const n of this.nodes.values()) {
      if (n.alive && n.confState.voters.includes(n.id) && (n.term !== l.term || n.lead !== l.id)) return undefined;
    }
    return l.id;
  }

  maxTerm(): number {
    let m = 0;
    for (const n of this.nodes.values()) m = Math.max(m, n.term);
    return m;
  }

  /** Heals the network and runs until one leader everyone follows; returns it. */
  waitForLeader(maxTicks: number): NodeId {
    this.runUntil(() => this.stableLeader() !== undefined, maxTicks, "a single leader");
    return this.stableLeader() as NodeId;
  }

  /** True when every listed member applied `payload`. */
  appliedEverywhere(payload: string, ids: readonly NodeId[] = this.liveIds()): boolean {
    return ids.every((id) => this.node(id).sm.items.includes(payload));
  }
}

function describeReady(now: number, id: NodeId, rd: Ready, crashAt: CrashPoint | undefined): string {
  const parts = [`t=${now} ready ${id}`];
  if (rd.softState !== undefined) parts.push(`soft=${rd.softState.raftState}/lead ${rd.softState.lead}`);
  if (rd.hardState !== undefined)
    parts.push(`hs=term ${rd.hardState.term} vote ${rd.hardState.vote} commit ${rd.hardState.commit}`);
  if (rd.snapshot !== undefined) parts.push(`snap=${rd.snapshot.metadata.index}@${rd.snapshot.metadata.term}`);
  const e = rd.entries;
  if (e.length > 0) parts.push(`ents=${e[0]?.index}..${e[e.length - 1]?.index}@${e[e.length - 1]?.term}`);
  const ce = rd.committedEntries;
  if (ce.length > 0) parts.push(`apply=${ce[0]?.index}..${ce[ce.length - 1]?.index}`);
  if (rd.messages.length > 0) parts.push(`msgs=${rd.messages.map((m) => `${m.type.slice(3)}>${m.to}`).join(",")}`);
  if (crashAt !== undefined) parts.push(`CRASH ${crashAt}`);
  return parts.join(" ");
}
