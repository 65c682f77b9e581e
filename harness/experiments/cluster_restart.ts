// `npm run bench -- cluster-restart`: the restart experiment (the seed's "no election on restart" claim).
// A 3-member cluster under a steady write load (8 closed-loop writers over the members that stay up); --restarts
// times (20): pick a follower (alternating between the two), keep the writers off it, kill -9 it, leave it down
// --down-ms, start it again on its data dir, wait until it serves with a leader, then watch --settle-ms more.
// Per restart: leader changes the surviving members saw (etcd_server_leader_changes_seen_total deltas, max of the
// two), term before/after (Status), whether the leader is still the same member, and write unavailability: the
// longest stretch with no successful write from the kill to the end of the settle window, beside the longest
// such stretch in the --settle-ms before the kill (all members up and ready: what the loaded machine gives with
// no fault).
// --targets etcd,etcd-ts (default both), --heartbeat-ms/--election-ms (etcd's 100/1000 by default).
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
import { medianMax } from "../stats.js";
import { setTimeout as pause } from "node:timers/promises";
import type { EtcdCluster } from "../targets/etcd_cluster.js";

interface Settings {
  readonly restarts: number;
  readonly downMs: number;
  readonly settleMs: number;
  readonly writers: number;
}

export interface RestartRow {
  target: string;
  restart: number;
  victim: string;
  leader_before: string;
  leader_after: string;
  leader_changes: number;
  term_before: number;
  term_after: number;
  restart_to_ready_ms: number;
  write_unavailable_ms: number;
  write_gap_before_ms: number;
  write_errors: number;
  errors_by_code: string;
  write_p99_ms: number;
  write_p99_before_ms: number;
}

/** survivorsChanges reads the leader-change counters of the given members. */
async function counters(cluster: EtcdCluster, members: readonly number[]): Promise<number[]> {
  return Promise.all(members.map((i) => leaderChanges(cluster, i)));
}

async function oneRestart(
  target: string,
  cluster: EtcdCluster,
  load: WriteLoad,
  s: Settings,
  r: number,
): Promise<RestartRow> {
  const leader = await cluster.leaderIndex();
  if (leader < 0) throw new Error(`${target}: no leader before restart ${r}`);
  const followers = [0, 1, 2].filter((i) => i !== leader);
  const victim = followers[r % followers.length]!;
  const survivors = [0, 1, 2].filter((i) => i !== victim);
  const before = await counters(cluster, survivors);
  const termBefore = await termOf(cluster, leader);
  await load.drain(victim); // the writers' calls on the victim finish first: a kill should not fail them
  const killAt = load.now();
  await cluster.kill(victim, "SIGKILL");
  await pause(s.downMs);
  const startAt = load.now();
  await cluster.restart(victim);
  const readyAt = load.now();
  await pause(s.settleMs);
  const endAt = load.now();
  load.include(victim);
  const after = await counters(cluster, survivors);
  const leaderAfter = await cluster.leaderIndex();
  const errs = load.errors(killAt, endAt);
  return {
    target,
    restart: r,
    victim: `m${victim}`,
    leader_before: `m${leader}`,
    leader_after: leaderAfter < 0 ? "none" : `m${leaderAfter}`,
    leader_changes: Math.max(...after.map((a, k) => a - before[k]!)),
    term_before: termBefore,
    term_after: Math.max(...(await Promise.all([0, 1, 2].map((i) => termOf(cluster, i))))),
    restart_to_ready_ms: Math.round(readyAt - startAt),
    write_unavailable_ms: Math.round(load.longestGapMs(killAt, endAt)),
    write_gap_before_ms: Math.round(load.longestGapMs(killAt - s.settleMs, killAt)),
    write_errors: errs.count,
    errors_by_code: errs.byCode,
    write_p99_ms: load.latency(killAt, endAt).p99Ms,
    write_p99_before_ms: load.latency(killAt - s.settleMs, killAt).p99Ms,
  };
}

async function runTarget(target: string, cluster: EtcdCluster, s: Settings): Promise<RestartRow[]> {
  const load = new WriteLoad(cluster, { writers: s.writers, callTimeoutMs: 2_000, prefix: "/cluster-restart/" });
  const rows: RestartRow[] = [];
  load.start();
  try {
    await pause(s.downMs + 2 * s.settleMs); // a no-fault window before the first kill, as long as a restart's
    for (let r = 1; r <= s.restarts; r++) {
      const row = await oneRestart(target, cluster, load, s, r);
      console.error(
        `${target} restart ${r}: ${row.victim} ready in ${row.restart_to_ready_ms} ms; leader changes ${row.leader_changes}, term ${row.term_before}→${row.term_after}; writes unavailable ${row.write_unavailable_ms} ms (before: ${row.write_gap_before_ms} ms), ${row.write_errors} errors`,
      );
      rows.push(row);
    }
  } finally {
    await load.stop();
  }
  return rows;
}

function summary(rows: readonly RestartRow[], outcomes: readonly TargetOutcome[]): string[] {
  const lines: string[] = [];
  for (const o of outcomes) {
    if (!o.available) {
      lines.push(`${o.name}: not measured — ${o.reason ?? ""}`);
      continue;
    }
    const mine = rows.filter((r) => r.target === o.name);
    const un = medianMax(mine.map((r) => r.write_unavailable_ms)),
      base = medianMax(mine.map((r) => r.write_gap_before_ms));
    lines.push(
      `${o.name}: ${mine.length} restarts, ${mine.filter((r) => r.leader_changes > 0).length} caused a leader change ` +
        `(${mine.reduce((a, r) => a + Math.max(0, r.leader_changes), 0)} changes, ${mine.filter((r) => r.term_after > r.term_before).length} term bumps); ` +
        `write unavailability median ${un.median} ms, max ${un.max} ms (no-fault windows: median ${base.median}, max ${base.max} ms)`,
    );
  }
  return lines;
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s: Settings = {
    restarts: num(args, "restarts", 20),
    downMs: num(args, "down-ms", 1_000),
    settleMs: num(args, "settle-ms", 3_000),
    writers: num(args, "writers", 8),
  };
  const dir = clusterResultsDir("cluster-restart", args);
  const startedAt = new Date().toISOString();
  const rows: RestartRow[] = [];
  const outcomes: TargetOutcome[] = [];
  for (const kind of clusterKinds(args)) {
    const r = await withCluster(kind, 3, { extraArgs: timingArgs(args) }, (c) => runTarget(c.name, c, s));
    outcomes.push(r.outcome);
    rows.push(...(r.value ?? []));
  }
  const lines = summary(rows, outcomes);
  writeRun(dir, "restart.csv", rows as unknown as Record<string, unknown>[], {
    experiment: "cluster-restart",
    argv,
    targets: outcomes,
    settings: s,
    startedAt,
    notes: [
      "leader_changes: max over the two surviving members of the increase of etcd_server_leader_changes_seen_total across one restart (kill → settle end).",
      "write_unavailable_ms: longest stretch from the kill to the settle end with no successful put (writers avoid the victim); write_gap_before_ms / write_p99_before_ms: the same measures over the settle-ms just before the kill (every member up and serving).",
      ...lines,
    ],
  });
  for (const l of lines) console.log(l);
  return dir;
}
