// `npm run bench -- cluster-leader-failure`: the leader-failure experiment. A 3-member cluster; --reps times
// (10): find the leader, kill -9 it, and from that instant (a) poll the two survivors' Status every --poll-ms
// until one names a leader other than the dead one, (b) send a put through a survivor every --probe-ms (each with
// a --probe-timeout-ms deadline, alternating survivors, without waiting for the previous one) until one succeeds.
// Per repetition: ms to the new leader and ms to the first successful write (completion of the first put sent
// after the kill that succeeded); then the dead member is restarted and the cluster settles before the next round.
// --targets etcd,etcd-ts (default both), --heartbeat-ms/--election-ms (etcd's 100/1000 by default).
import { performance } from "node:perf_hooks";
import { EtcdClient } from "../../core/client/index.js";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { num, parseArgs } from "./common.js";
import {
  clusterKinds,
  clusterResultsDir,
  termOf,
  timingArgs,
  withCluster,
  writeRun,
  type TargetOutcome,
} from "./cluster_common.js";
import { medianMax } from "../stats.js";
import { setTimeout as pause } from "node:timers/promises";

interface Settings {
  readonly reps: number;
  readonly pollMs: number;
  readonly probeMs: number;
  readonly probeTimeoutMs: number;
  readonly settleMs: number;
  /** Give up on a repetition after this long without a new leader and a write. */
  readonly giveUpMs: number;
}

export interface LeaderFailureRow {
  target: string;
  rep: number;
  old_leader: string;
  new_leader: string;
  /** -1: no new leader within giveUpMs. */
  new_leader_ms: number;
  /** -1: no successful write within giveUpMs. */
  first_write_ms: number;
  /** Through which surviving member the first write went. */
  first_write_via: string;
  term_before: number;
  term_after: number;
  failed_probes: number;
}

/** watchLeader polls the survivors until one names a leader other than `oldId`; resolves ms since t0 and who. */
async function watchLeader(
  clients: readonly EtcdClient[],
  oldId: bigint,
  t0: number,
  s: Settings,
  ids: Map<string, string>,
): Promise<{ ms: number; who: string }> {
  while (performance.now() - t0 < s.giveUpMs) {
    const seen = await Promise.all(
      clients.map((c) =>
        c.status().then(
          (st) => st.leader,
          () => 0n,
        ),
      ),
    );
    const found = seen.find((l) => l !== 0n && l !== oldId);
    if (found !== undefined)
      return { ms: performance.now() - t0, who: ids.get(found.toString(16)) ?? found.toString(16) };
    await pause(s.pollMs);
  }
  return { ms: -1, who: "none" };
}

/** probeWrites fires a put every probeMs until one succeeds; resolves its completion time (ms since t0). */
async function probeWrites(
  clients: readonly EtcdClient[],
  names: readonly string[],
  t0: number,
  s: Settings,
): Promise<{ ms: number; via: string; failed: number }> {
  let done: { ms: number; via: string } | undefined;
  let failed = 0;
  const inflight: Promise<void>[] = [];
  for (let n = 0; done === undefined && performance.now() - t0 < s.giveUpMs; n++) {
    const k = n % clients.length;
    inflight.push(
      clients[k]!.put(`/cluster-leader-failure/probe/${n % 100}`, "x", {}).then(
        () => {
          done ??= { ms: performance.now() - t0, via: names[k]! };
        },
        () => {
          failed++;
        },
      ),
    );
    await pause(s.probeMs);
  }
  await Promise.all(inflight);
  return done === undefined ? { ms: -1, via: "none", failed } : { ...done, failed };
}

async function oneRep(target: string, cluster: EtcdCluster, s: Settings, rep: number): Promise<LeaderFailureRow> {
  const leader = await cluster.leaderIndex();
  if (leader < 0) throw new Error(`${target}: no leader before repetition ${rep}`);
  const oldId = (await cluster.status(leader)).header.memberId;
  const survivors = [0, 1, 2].filter((i) => i !== leader);
  const ids = new Map<string, string>();
  for (const i of survivors) ids.set((await cluster.status(i)).header.memberId.toString(16), `m${i}`);
  const termBefore = await termOf(cluster, survivors[0]!);
  const mk = (i: number): EtcdClient =>
    new EtcdClient({
      endpoints: [cluster.endpoint(i)],
      callTimeoutMs: s.probeTimeoutMs,
      dialTimeoutMs: s.probeTimeoutMs,
    });
  const statusClients = survivors.map(mk),
    writeClients = survivors.map(mk);
  try {
    await Promise.all([...statusClients, ...writeClients].map((c) => c.status())); // connected before the kill
    const t0 = performance.now();
    await cluster.kill(leader, "SIGKILL");
    const [nl, fw] = await Promise.all([
      watchLeader(statusClients, oldId, t0, s, ids),
      probeWrites(
        writeClients,
        survivors.map((i) => `m${i}`),
        t0,
        s,
      ),
    ]);
    const termAfter = await termOf(cluster, survivors[0]!);
    await cluster.restart(leader);
    await pause(s.settleMs);
    return {
      target,
      rep,
      old_leader: `m${leader}`,
      new_leader: nl.who,
      new_leader_ms: Math.round(nl.ms),
      first_write_ms: Math.round(fw.ms),
      first_write_via: fw.via,
      term_before: termBefore,
      term_after: termAfter,
      failed_probes: fw.failed,
    };
  } finally {
    for (const c of [...statusClients, ...writeClients]) c.close();
  }
}

async function runTarget(target: string, cluster: EtcdCluster, s: Settings): Promise<LeaderFailureRow[]> {
  const rows: LeaderFailureRow[] = [];
  await pause(s.settleMs);
  for (let rep = 1; rep <= s.reps; rep++) {
    const row = await oneRep(target, cluster, s, rep);
    console.error(
      `${target} rep ${rep}: killed leader ${row.old_leader}; new leader ${row.new_leader} after ${row.new_leader_ms} ms; first write after ${row.first_write_ms} ms via ${row.first_write_via}`,
    );
    rows.push(row);
  }
  return rows;
}

function summary(rows: readonly LeaderFailureRow[], outcomes: readonly TargetOutcome[]): string[] {
  return outcomes.map((o) => {
    if (!o.available) return `${o.name}: not measured — ${o.reason ?? ""}`;
    const mine = rows.filter((r) => r.target === o.name);
    const nl = medianMax(mine.filter((r) => r.new_leader_ms >= 0).map((r) => r.new_leader_ms));
    const fw = medianMax(mine.filter((r) => r.first_write_ms >= 0).map((r) => r.first_write_ms));
    const lost = mine.filter((r) => r.new_leader_ms < 0 || r.first_write_ms < 0).length;
    return `${o.name}: ${mine.length} leader kills; new leader P50 ${nl.median} ms, max ${nl.max} ms; first write P50 ${fw.median} ms, max ${fw.max} ms${lost > 0 ? `; ${lost} repetitions gave up` : ""}`;
  });
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s: Settings = {
    reps: num(args, "reps", 10),
    pollMs: num(args, "poll-ms", 10),
    probeMs: num(args, "probe-ms", 20),
    probeTimeoutMs: num(args, "probe-timeout-ms", 2_000),
    settleMs: num(args, "settle-ms", 3_000),
    giveUpMs: num(args, "give-up-ms", 30_000),
  };
  const dir = clusterResultsDir("cluster-leader-failure", args);
  const startedAt = new Date().toISOString();
  const rows: LeaderFailureRow[] = [];
  const outcomes: TargetOutcome[] = [];
  for (const kind of clusterKinds(args)) {
    const r = await withCluster(kind, 3, { extraArgs: timingArgs(args) }, (c) => runTarget(c.name, c, s));
    outcomes.push(r.outcome);
    rows.push(...(r.value ?? []));
  }
  const lines = summary(rows, outcomes);
  writeRun(dir, "leader_failure.csv", rows as unknown as Record<string, unknown>[], {
    experiment: "cluster-leader-failure",
    argv,
    targets: outcomes,
    settings: s,
    startedAt,
    notes: [
      `new_leader_ms: kill -9 → a survivor's Status names another leader (polled every ${s.pollMs} ms); first_write_ms: kill → completion of the first successful put sent after the kill (one every ${s.probeMs} ms through the survivors, ${s.probeTimeoutMs} ms deadline each).`,
      ...lines,
    ],
  });
  for (const l of lines) console.log(l);
  return dir;
}
