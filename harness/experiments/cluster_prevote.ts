// `npm run bench -- cluster-prevote`: the pre-vote experiment (the seed's "a rejoining member must not
// depose a healthy leader"). A 3-member cluster with --pre-vote=true, then one with --pre-vote=false; --reps times
// each: cut one follower off from all raft traffic for --isolate-elections election timeouts (10), heal it, and
// watch --heal-elections more (5) under a light write load through the two other members. Per repetition:
// leader changes the two others saw (etcd_server_leader_changes_seen_total deltas, max), term before / of the
// isolated member just before the heal / after, whether the isolated member had lost its leader (proof the cut
// worked), and the longest write gap after the heal.
// How the follower is cut off: etcd-ts through --experimental-peer-fault-injection (PUT /debug/peer-faults),
// real etcd through the peer proxy of harness/targets/etcd_cluster.ts (connections refused/reset, see there).
// --targets etcd,etcd-ts (default both), --election-ms/--heartbeat-ms (etcd's 1000/100 by default).
import { num, parseArgs } from "./common.js";
import {
  clusterKinds,
  clusterResultsDir,
  leaderChanges,
  termOf,
  timingArgs,
  withCluster,
  writeRun,
  WriteLoad,
  type TargetOutcome,
} from "./cluster_common.js";
import { setTimeout as pause } from "node:timers/promises";
import type { EtcdCluster } from "../targets/etcd_cluster.js";

/** etcd's default --election-timeout. */
const DEFAULT_ELECTION_MS = 1_000;
/** How long after the heal window the experiment waits for the writes to come back. */
const RECOVERY_WAIT_MS = 60_000;

interface Settings {
  readonly reps: number;
  readonly electionMs: number;
  readonly isolateElections: number;
  readonly healElections: number;
  readonly preVotes: readonly boolean[];
}

export interface PreVoteRow {
  target: string;
  pre_vote: boolean;
  rep: number;
  isolated: string;
  /** Whether the isolated member reported no leader (or another term) while cut off. */
  isolated_lost_leader: boolean;
  leader_before: string;
  leader_after: string;
  leader_changes: number;
  term_before: number;
  isolated_term_at_heal: number;
  term_after: number;
  write_gap_after_heal_ms: number;
  write_errors_after_heal: number;
  /** A write succeeded after the heal window (false: still unavailable RECOVERY_WAIT_MS later). */
  writes_recovered: boolean;
}

async function oneRep(
  target: string,
  cluster: EtcdCluster,
  load: WriteLoad,
  s: Settings,
  preVote: boolean,
  rep: number,
): Promise<PreVoteRow> {
  const leader = await cluster.leaderIndex();
  if (leader < 0) throw new Error(`${target}: no leader before repetition ${rep}`);
  const victim = (leader + 1 + (rep % 2)) % 3;
  const others = [0, 1, 2].filter((i) => i !== victim);
  const before = await Promise.all(others.map((i) => leaderChanges(cluster, i)));
  const termBefore = await termOf(cluster, leader);
  await load.drain(victim); // no writer call left on the member about to be cut off
  await cluster.isolate(victim);
  await pause(s.isolateElections * s.electionMs);
  const cut = await cluster.status(victim).catch(() => undefined);
  const lost = cut !== undefined && cut.leader === 0n;
  const isolatedTerm = await termOf(cluster, victim);
  const healAt = load.now();
  await cluster.heal(victim);
  await pause(s.healElections * s.electionMs);
  // A disrupted cluster may still be electing: the window ends once a write sent after it succeeds (≤ 60 s).
  const recovered = await load.waitWriteAfter(load.now(), RECOVERY_WAIT_MS);
  const endAt = load.now();
  load.include(victim);
  const after = await Promise.all(others.map((i) => leaderChanges(cluster, i)));
  const leaderAfter = await cluster.leaderIndex();
  return {
    target,
    pre_vote: preVote,
    rep,
    isolated: `m${victim}`,
    isolated_lost_leader: lost,
    leader_before: `m${leader}`,
    leader_after: leaderAfter < 0 ? "none" : `m${leaderAfter}`,
    leader_changes: Math.max(...after.map((a, k) => a - before[k]!)),
    term_before: termBefore,
    isolated_term_at_heal: isolatedTerm,
    term_after: Math.max(...(await Promise.all([0, 1, 2].map((i) => termOf(cluster, i))))),
    write_gap_after_heal_ms: Math.round(load.longestGapMs(healAt, endAt)),
    write_errors_after_heal: load.errors(healAt, endAt).count,
    writes_recovered: recovered,
  };
}

async function runTarget(target: string, cluster: EtcdCluster, s: Settings, preVote: boolean): Promise<PreVoteRow[]> {
  const load = new WriteLoad(cluster, { writers: 4, callTimeoutMs: 2_000, prefix: "/cluster-prevote/" });
  const rows: PreVoteRow[] = [];
  load.start();
  try {
    await pause(2 * s.electionMs);
    for (let rep = 1; rep <= s.reps; rep++) {
      const row = await oneRep(target, cluster, load, s, preVote, rep);
      console.error(
        `${target} pre-vote=${preVote} rep ${rep}: isolated ${row.isolated} (lost leader: ${row.isolated_lost_leader}, term at heal ${row.isolated_term_at_heal}); leader changes ${row.leader_changes}, term ${row.term_before}→${row.term_after}, write gap after heal ${row.write_gap_after_heal_ms} ms`,
      );
      rows.push(row);
    }
  } finally {
    await load.stop();
  }
  return rows;
}

function summary(rows: readonly PreVoteRow[], outcomes: readonly (TargetOutcome & { preVote: boolean })[]): string[] {
  return outcomes.map((o) => {
    const label = `${o.name} --pre-vote=${o.preVote}`;
    if (!o.available) return `${label}: not measured — ${o.reason ?? ""}`;
    const mine = rows.filter((r) => r.target === o.name && r.pre_vote === o.preVote);
    const changes = mine.reduce((a, r) => a + Math.max(0, r.leader_changes), 0);
    const bumps = mine.reduce((a, r) => a + Math.max(0, r.term_after - r.term_before), 0);
    return (
      `${label}: ${mine.length} isolations of ${s(mine.length)}; ${changes} leader changes, ${bumps} term bumps in total; ` +
      `isolated member lost its leader in ${mine.filter((r) => r.isolated_lost_leader).length}/${mine.length}`
    );
  });
  function s(n: number): string {
    return n === 1 ? "one follower" : "a follower each";
  }
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const preVotes = (args.get("pre-vote") ?? "true,false").split(",").map((v) => {
    if (v !== "true" && v !== "false") throw new Error(`--pre-vote takes true and/or false, got ${JSON.stringify(v)}`);
    return v === "true";
  });
  const s: Settings = {
    reps: num(args, "reps", 3),
    electionMs: num(args, "election-ms", DEFAULT_ELECTION_MS),
    isolateElections: num(args, "isolate-elections", 10),
    healElections: num(args, "heal-elections", 5),
    preVotes,
  };
  const dir = clusterResultsDir("cluster-prevote", args);
  const startedAt = new Date().toISOString();
  const rows: PreVoteRow[] = [];
  const outcomes: (TargetOutcome & { preVote: boolean })[] = [];
  for (const kind of clusterKinds(args)) {
    for (const preVote of s.preVotes) {
      const extraArgs = [`--pre-vote=${preVote}`, ...timingArgs(args)];
      const r = await withCluster(kind, 3, { faults: true, extraArgs }, (c) => runTarget(c.name, c, s, preVote));
      outcomes.push({ ...r.outcome, preVote });
      rows.push(...(r.value ?? []));
    }
  }
  const lines = summary(rows, outcomes);
  writeRun(dir, "prevote.csv", rows as unknown as Record<string, unknown>[], {
    experiment: "cluster-prevote",
    argv,
    targets: outcomes,
    settings: s,
    startedAt,
    notes: [
      "real etcd: the follower is cut off by peer proxies (connections to it and from it, attributed by X-Server-From, are closed and refused); its clock and client port keep running. etcd-ts: --experimental-peer-fault-injection drops every raft message to and from it.",
      "leader_changes: max over the two connected members of the increase of etcd_server_leader_changes_seen_total from before the cut to the end of the heal window.",
      ...lines,
    ],
  });
  for (const l of lines) console.log(l);
  return dir;
}
