// One randomized simulation run from a seed: a cluster under random faults (drops, delays, duplicates,
// reorders, partitions, crashes — some in the middle of a Ready — restarts, proposals, conf changes, leader
// transfers, reads), every safety checker after every event; then the network heals, crashed members restart,
// and liveness is required within a bound: one leader, a fresh proposal applied on every live member, and every
// member's state machine identical. Deterministic: the same seed replays the same run.
import type { ConfChange, NodeId } from "../../core/raft/types.js";
import { Cluster, type RaftImpl } from "./cluster.js";
import { RELIABLE } from "./network.js";
import { SeededRng } from "./rng.js";

export interface RandomRunOptions {
  /** Ticks of the fault phase. */
  readonly faultTicks?: number;
  /** Liveness bound after healing, in ticks (default 40 election timeouts). */
  readonly livenessTicks?: number;
  /** Receives the cluster's trace lines (crashes, restarts, every Ready). */
  readonly trace?: (line: string) => void;
}

export interface RandomRunResult {
  readonly seed: number;
  readonly voters: number;
  readonly ticks: number;
  readonly maxTerm: number;
  readonly applied: number;
  readonly crashes: number;
  readonly confChangesApplied: number;
  readonly messages: number;
  /** Read indexes handed out (each checked against the commit index at request time). */
  readonly reads: number;
}

const ADD_VOTER = 0;
const REMOVE = 1;
const ADD_LEARNER = 3;

interface Driver {
  readonly c: Cluster;
  readonly rng: SeededRng;
  /** Per-tick probability of a conf change attempt (one run in five is membership-heavy). */
  readonly confChangeRate: number;
  readonly spares: NodeId[];
  proposals: number;
  crashes: number;
}

export function randomRun(impl: RaftImpl, seed: number, o: RandomRunOptions = {}): RandomRunResult {
  const rng = new SeededRng(seed ^ 0x5eed);
  const voterCount = rng.chance(0.5) ? 3 : 5;
  const voters = Array.from({ length: voterCount }, (_, i) => BigInt(i + 1));
  // Mostly sub-tick to 3-tick delays; one run in ten keeps messages up to 20 ticks (very stale deliveries).
  const delayMax = rng.chance(0.1) ? rng.between(30, 200) : rng.between(1, 30);
  const electionTicks = rng.between(5, 15);
  const c = new Cluster(impl, {
    seed,
    voters,
    electionTicks,
    heartbeatTicks: rng.between(1, Math.min(3, electionTicks - 2)),
    preVote: rng.chance(0.7),
    checkQuorum: rng.chance(0.7),
    snapshotEvery: rng.chance(0.5) ? rng.between(3, 15) : 0,
    keepAfterCompact: rng.between(0, 3),
    maxInflightMsgs: rng.between(1, 64),
    maxSizePerMsgBytes: rng.chance(0.3) ? 40 : 1024 * 1024,
    ...(rng.chance(0.2) ? { maxUncommittedEntriesBytes: rng.between(10, 100) } : {}),
    durableStateMachine: rng.chance(0.5),
    faults: {
      dropRate: rng.pick([0, 0.02, 0.1, 0.25]),
      dupRate: rng.pick([0, 0.05, 0.2]),
      minDelayUnits: 1,
      maxDelayUnits: delayMax,
    },
  });
  c.trace = o.trace;
  const d: Driver = {
    c,
    rng,
    confChangeRate: rng.chance(0.2) ? 0.1 : 0.015,
    spares: [BigInt(voterCount + 1), BigInt(voterCount + 2), BigInt(voterCount + 3)],
    proposals: 0,
    crashes: 0,
  };
  const faultTicks = o.faultTicks ?? 300;
  for (let t = 0; t < faultTicks; t++) {
    randomEvents(d);
    c.runTicks(1);
  }
  heal(d);
  // Elections are randomized: a round where only members with stale logs time out first elects nobody, so the
  // bound is in election timeouts, generous enough that a seed failing it means a stuck cluster, not bad luck.
  checkLiveness(d, o.livenessTicks ?? 40 * electionTicks);
  let confChangesApplied = 0;
  for (const list of c.appliedConfChanges.values()) confChangesApplied = Math.max(confChangesApplied, list.length);
  return {
    seed,
    voters: voterCount,
    ticks: c.nowTicks(),
    maxTerm: c.maxTerm(),
    applied: c.checker.committedCount(),
    crashes: d.crashes,
    confChangesApplied,
    messages: c.net.stats.sent,
    reads: c.reads.length,
  };
}

function randomEvents(d: Driver): void {
  const { c, rng } = d;
  const live = c.liveIds();
  if (live.length > 0 && rng.chance(0.4)) {
    const at = rng.pick(live);
    for (let k = rng.chance(0.1) ? rng.between(2, 10) : 1; k > 0; k--) c.propose(at, `p${d.proposals++}`);
  }
  if (rng.chance(0.04)) randomPartition(d);
  if (rng.chance(0.01)) c.node(rng.pick(c.ids())).tickPeriodUnits = rng.chance(0.5) ? undefined : rng.between(5, 20); // clock skew
  if (live.length > 0 && rng.chance(0.02)) {
    const victim = rng.pick(live);
    d.crashes++;
    const how = rng.nextInt(3);
    if (how === 0) c.crash(victim);
    else c.node(victim).crashAt = how === 1 ? "beforePersist" : "afterPersist";
  }
  const down = c.ids().filter((id) => !c.node(id).alive && !c.removed.has(id));
  if (down.length > 0 && rng.chance(0.06)) c.restart(rng.pick(down), rng.chance(0.5) ? { tickMode: "etcd34" } : {});
  const leader = c.leaders()[0];
  if (leader === undefined) return;
  if (rng.chance(d.confChangeRate)) randomConfChange(d, leader.id);
  if (rng.chance(0.01))
    c.transferLeader(leader.id, rng.pick([...leader.confState.voters, ...leader.confState.learners]));
  if (rng.chance(0.1)) c.readIndex(rng.pick(live), `r${c.nowUnits}`);
}

function randomPartition(d: Driver): void {
  const { c, rng } = d;
  const ids = c.ids();
  c.net.heal();
  const kind = rng.nextInt(4);
  if (kind === 0) return; // healed
  if (kind === 1) {
    c.net.isolate(rng.pick(ids), ids);
  } else if (kind === 2) {
    const a = ids.filter(() => rng.chance(0.5));
    c.net.partition(
      a,
      ids.filter((x) => !a.includes(x)),
    );
  } else {
    for (let i = rng.between(1, 3); i > 0; i--) c.net.cutOneWay(rng.pick(ids), rng.pick(ids));
  }
}

function randomConfChange(d: Driver, leaderId: NodeId): void {
  const { c, rng } = d;
  const cs = c.node(leaderId).confState;
  const kind = rng.nextInt(3);
  let cc: ConfChange | undefined;
  if (kind === 0 && d.spares.length > 0) {
    cc = { type: ADD_LEARNER, nodeId: d.spares[0] as NodeId, context: new Uint8Array() };
  } else if (kind === 1 && cs.learners.length > 0) {
    cc = { type: ADD_VOTER, nodeId: rng.pick(cs.learners), context: new Uint8Array() };
  } else if (kind === 2 && cs.voters.length > 3) {
    cc = { type: REMOVE, nodeId: rng.pick(cs.voters), context: new Uint8Array() };
  }
  if (cc === undefined || !c.proposeConfChange(leaderId, cc)) return;
  if (cc.type === ADD_LEARNER && !c.nodes.has(cc.nodeId)) {
    d.spares.shift();
    c.startJoiner(cc.nodeId, leaderId);
  }
}

function heal(d: Driver): void {
  const { c } = d;
  c.net.heal();
  c.net.faults = RELIABLE;
  for (const id of c.ids()) {
    const n = c.node(id);
    n.crashAt = undefined;
    n.tickPeriodUnits = undefined;
    if (!n.alive && !c.removed.has(id)) c.restart(id, { tickMode: "etcd34" });
  }
}

/** After healing: one leader, a fresh proposal applied by every live member of its configuration, and all of
 *  them applied to the same index with identical state machines. */
function checkLiveness(d: Driver, boundTicks: number): void {
  const { c } = d;
  const start = c.nowTicks();
  const marker = `final-${c.seed}`;
  let proposedAt: NodeId | undefined;
  c.onFailDetail = () => describeMembers(c);
  c.runUntil(
    () => {
      const l = c.stableLeader();
      if (l === undefined) return false;
      if (proposedAt !== l && !c.appliedEverywhere(marker, [l])) {
        if (c.propose(l, marker)) proposedAt = l; // re-propose if leadership moved before it committed
      }
      return converged(c, l, marker);
    },
    boundTicks,
    "liveness after healing (one leader, final proposal applied everywhere, same state)",
  );
  if (c.nowTicks() - start > boundTicks) c.fail(`liveness took ${c.nowTicks() - start} ticks`);
}

function converged(c: Cluster, leaderId: NodeId, marker: string): boolean {
  const l = c.node(leaderId);
  const members = [...l.confState.voters, ...l.confState.learners].filter((id) => !c.removed.has(id));
  if (!c.appliedEverywhere(marker, members)) return false;
  for (const id of members) {
    const n = c.nodes.get(id);
    if (n === undefined || !n.alive || n.sm.applied !== l.sm.applied) return false;
  }
  for (const id of members) {
    const items = c.node(id).sm.items;
    if (items.length !== l.sm.items.length || items.some((v, i) => v !== l.sm.items[i])) {
      c.fail(`member ${id} state differs from leader ${leaderId} at the same applied index ${l.sm.applied}`);
    }
  }
  return true;
}

/** One line per member, appended to a liveness failure so it can be diagnosed from the message alone. */
export function describeMembers(c: Cluster): string {
  const lines: string[] = [];
  for (const n of c.nodes.values()) {
    const last = n.storage.lastIndex();
    const st = n.raw?.status();
    const core =
      st === undefined
        ? ""
        : ` core: state=${st.softState.raftState} voters=[${st.confState.voters.join(",")}] learners=[${st.confState.learners.join(",")}]`;
    const cs = `voters=[${n.confState.voters.join(",")}] learners=[${n.confState.learners.join(",")}]${core}`;
    lines.push(
      `  node ${n.id}: ${n.alive ? n.state : c.removed.has(n.id) ? "removed" : "down"} term=${n.term} lead=${n.lead} ` +
        `commit=${n.commit} applied=${n.sm.applied} last=${last}@${n.termAt(last) ?? "?"} ${cs}`,
    );
  }
  return lines.join("\n");
}
