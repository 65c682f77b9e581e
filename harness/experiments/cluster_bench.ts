// `npm run bench -- cluster`: the cluster benchmark. A real etcd 3-member cluster and an etcd-ts 3-member
// cluster on loopback, measured in the same run, setting by setting back to back (so drift in the machine's
// other load falls on both alike):
//   put_spread   — 64 closed-loop puts (256 B) spread round-robin over the 3 members, as etcd's benchmark tool
//                  spreads its clients over --endpoints (followers forward to the leader);
//   put_leader   — the same 64, all on the leader's endpoint;
//   get_linearizable_follower / get_serializable_follower — 64 single-key gets, all on one follower (ReadIndex
//                  through the leader for the linearizable ones, local for the serializable ones).
// Per setting: throughput, P50, P99, errors, and the CPU of the three members together per op. ratios.csv has
// etcd-ts-3 / etcd-3 per metric; report.md the table. A cluster that is not built or does not start is "not
// measured" with the reason. Each setting is measured with two load generators: perfkit (etcd's clientv3, rows
// `go_…`, cluster_go.ts; built from ../shared/tools/perfkit when Go is installed, or $PERFKIT) and this
// harness's Node worker threads. `--quick` shrinks the windows for the test; --clients --seconds --warmup
// --workers --targets --put-modes --results --generators go,node --go-total.
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "csv-stringify/sync";
import { EtcdClient } from "../../core/client/index.js";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { makeCluster, type ClusterKind } from "../targets/make.js";
import { num, parseArgs, type Args } from "./common.js";
import { clusterKinds, clusterResultsDir, round, writeRun, type TargetOutcome } from "./cluster_common.js";
import { ClusterLoadPool, GET_KEY, type LoadKind, type LoadStats } from "./cluster_load.js";
import { goMeasure, seedGoGetKey } from "./cluster_go.js";
import { findPerfkit, type Perfkit } from "./perfkit.js";

const MEMBERS = 3;
/** The target every ratio divides by. */
export const CLUSTER_BASELINE = "etcd-3";
/** A setting whose busiest load thread was busier than this is flagged generator-bound in the report. */
const GENERATOR_BOUND_BUSY = 0.85;

interface Settings {
  readonly clients: number;
  readonly seconds: number;
  readonly warmupS: number;
  readonly workers: number;
  readonly putModes: readonly ("spread" | "leader")[];
  readonly generators: readonly string[];
  /** Requests per Go-client setting. */
  readonly goTotal: number;
}

function settings(args: Args): Settings {
  const quick = args.get("quick") === "true";
  const putModes = (args.get("put-modes") ?? "spread,leader").split(",");
  for (const m of putModes)
    if (m !== "spread" && m !== "leader")
      throw new Error(`--put-modes takes spread and/or leader, got ${JSON.stringify(m)}`);
  return {
    clients: num(args, "clients", 64),
    seconds: num(args, "seconds", quick ? 1 : 10),
    warmupS: num(args, "warmup", quick ? 0.3 : 2),
    workers: num(args, "workers", 2),
    putModes: putModes as ("spread" | "leader")[],
    generators: (args.get("generators") ?? "go,node").split(","),
    goTotal: num(args, "go-total", quick ? 2_000 : 60_000),
  };
}

/** One measured value (cluster.csv). */
export interface ClusterMetricRow {
  target: string;
  metric: string;
  clients: number;
  value: number;
  unit: string;
  better: "higher" | "lower";
  /** Which member(s) the load went to: all, leader or follower. */
  endpoints: string;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  errors_by_code: string;
  /** CPU of the three member processes together over the setting, in cores, and per op in µs. */
  server_cores: number | "";
  server_us_per_op: number | "";
  generator_max_thread_busy: number;
}

interface Setting {
  readonly metric: string;
  readonly kind: Exclude<LoadKind, "connect">;
  readonly endpoints: "all" | "leader" | "follower";
  readonly valueBytes: number;
}

function benchSettings(s: Settings): Setting[] {
  return [
    ...s.putModes.map((m) => ({
      metric: `put_${m}`,
      kind: "put" as const,
      endpoints: m === "spread" ? ("all" as const) : ("leader" as const),
      valueBytes: 256,
    })),
    { metric: "get_linearizable_follower", kind: "get-linearizable", endpoints: "follower", valueBytes: 0 },
    { metric: "get_serializable_follower", kind: "get-serializable", endpoints: "follower", valueBytes: 0 },
  ];
}

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux x86-64

/** cpuSecondsOf sums utime + stime of the given processes (/proc/<pid>/stat fields 14, 15). */
function cpuSecondsOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S;
  }
  return total;
}

/** A started cluster under test. */
interface Subject {
  readonly name: string;
  readonly cluster: EtcdCluster;
  failed: string | undefined;
}

async function endpointsFor(sub: Subject, which: Setting["endpoints"]): Promise<string[]> {
  const c = sub.cluster;
  if (which === "all") return c.endpoints();
  const leader = await c.leaderIndex();
  if (leader < 0) throw new Error(`${sub.name}: no member reports a leader`);
  if (which === "leader") return [c.endpoint(leader)];
  return [c.endpoint((leader + 1) % MEMBERS)];
}

async function measure(sub: Subject, set: Setting, pool: ClusterLoadPool, s: Settings): Promise<ClusterMetricRow[]> {
  const eps = await endpointsFor(sub, set.endpoints);
  const pids = Array.from({ length: MEMBERS }, (_, i) => sub.cluster.pid(i)).filter(
    (p): p is number => p !== undefined,
  );
  console.error(
    `${sub.name}: ${set.metric}, ${s.clients} in flight on ${set.endpoints} (${eps.join(",")}), ${s.seconds} s`,
  );
  const cpu0 = cpuSecondsOf(pids),
    t0 = performance.now();
  const st: LoadStats = await pool.timed(set.kind, eps, s.clients, {
    warmupS: s.warmupS,
    seconds: s.seconds,
    valueBytes: set.valueBytes,
  });
  const wallS = (performance.now() - t0) / 1000,
    cpuS = cpuSecondsOf(pids) - cpu0;
  const base = {
    endpoints: set.endpoints,
    p50_ms: round(st.p50Ms, 3),
    p99_ms: round(st.p99Ms, 3),
    errors: st.errors,
    errors_by_code: Object.entries(st.errorsByCode)
      .map(([c, n]) => `${c}:${n}`)
      .join(" "),
    server_cores: round(cpuS / wallS, 2),
    server_us_per_op: st.throughputPerS > 0 ? round((cpuS * 1e6) / (st.throughputPerS * wallS), 1) : ("" as const),
    generator_max_thread_busy: round(st.generatorMaxThreadBusy, 2),
  };
  const m = `${set.metric}`,
    c = `c${s.clients}`;
  const row = (metric: string, value: number, unit: string, better: "higher" | "lower"): ClusterMetricRow => ({
    target: sub.name,
    metric,
    clients: s.clients,
    value,
    unit,
    better,
    ...base,
  }); // CSV columns in this order
  return [
    row(`${m}_throughput_${c}`, round(st.throughputPerS, 0), "ops/s", "higher"),
    row(`${m}_p50_${c}`, round(st.p50Ms, 3), "ms", "lower"),
    row(`${m}_p99_${c}`, round(st.p99Ms, 3), "ms", "lower"),
  ];
}

/** startSubjects starts one cluster per kind (those that cannot start are outcomes with the reason). */
async function startSubjects(
  kinds: readonly ClusterKind[],
  pool: ClusterLoadPool,
  outcomes: TargetOutcome[],
): Promise<Subject[]> {
  const subjects: Subject[] = [];
  for (const kind of kinds) {
    const slot = makeCluster(kind, MEMBERS);
    if (slot.target === undefined) {
      outcomes.push({ name: slot.name, describe: "", version: "", available: false, reason: slot.reason ?? "" });
      continue;
    }
    const cluster = slot.target;
    try {
      console.error(`${slot.name}: starting ${MEMBERS} members`);
      await cluster.start();
      const client = new EtcdClient({ endpoints: cluster.endpoints(), callTimeoutMs: 10_000 });
      await client.put(GET_KEY, Buffer.alloc(256, "g")).finally(() => client.close());
      await pool.connect(cluster.endpoints());
      subjects.push({ name: slot.name, cluster, failed: undefined });
    } catch (err) {
      await cluster.stop();
      const reason = `did not start: ${String(err).replace(/\s+/g, " ").slice(0, 400)}`;
      console.error(`${slot.name}: not measured — ${reason}`);
      outcomes.push({ name: slot.name, describe: cluster.describe, version: "", available: false, reason });
    }
  }
  return subjects;
}

/** runSettings runs every setting against every subject back to back; a failure stops measuring that subject. */
async function runSettings(
  subjects: Subject[],
  pool: ClusterLoadPool,
  s: Settings,
  rows: ClusterMetricRow[],
  pk: Perfkit | undefined,
): Promise<void> {
  for (const sub of subjects) if (pk !== undefined) await seedGoGetKey(pk, sub.cluster);
  for (const set of benchSettings(s)) {
    for (const sub of subjects) {
      if (sub.failed !== undefined) continue;
      try {
        if (pk !== undefined)
          rows.push(
            ...(await goMeasure(pk, sub.name, sub.cluster, set.metric, set.kind, set.endpoints, s.clients, s.goTotal)),
          );
        if (s.generators.includes("node")) rows.push(...(await measure(sub, set, pool, s)));
      } catch (err) {
        sub.failed = `failed during ${set.metric}: ${String(err).replace(/\s+/g, " ").slice(0, 400)}`;
        console.error(`${sub.name}: not measured further — ${sub.failed}`);
      }
    }
  }
}

export interface ClusterRatioRow {
  metric: string;
  unit: string;
  better: string;
  target: string;
  value: number;
  etcd_value: number | "";
  ratio: number | "";
}

export function clusterRatios(rows: readonly ClusterMetricRow[]): ClusterRatioRow[] {
  const base = new Map(rows.filter((r) => r.target === CLUSTER_BASELINE).map((r) => [r.metric, r.value]));
  return rows
    .filter((r) => r.target !== CLUSTER_BASELINE)
    .map((r) => {
      const e = base.get(r.metric);
      return {
        metric: r.metric,
        unit: r.unit,
        better: r.better,
        target: r.target,
        value: r.value,
        etcd_value: e ?? "",
        ratio: e !== undefined && e > 0 ? round(r.value / e, 3) : "",
      };
    });
}

function reportText(
  rows: readonly ClusterMetricRow[],
  outcomes: readonly TargetOutcome[],
  command: string,
  goOrigin: string,
): string {
  const targets = [...new Set(rows.map((r) => r.target))];
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const ratios = clusterRatios(rows);
  const val = (t: string, m: string): string =>
    String(rows.find((r) => r.target === t && r.metric === m)?.value ?? "–");
  const others = targets.filter((t) => t !== CLUSTER_BASELINE);
  const head = ["metric", "unit", ...targets, ...others.map((t) => `${t} / ${CLUSTER_BASELINE}`)];
  const lines = [
    "# cluster benchmark (3 members each, loopback)",
    "",
    `\`${command}\``,
    "",
    `go_* rows: perfkit (etcd's clientv3), ${goOrigin}; the other rows: Node load threads.`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...metrics.map(
      (m) =>
        `| ${[
          m,
          rows.find((r) => r.metric === m)!.unit,
          ...targets.map((t) => val(t, m)),
          ...others.map((t) => String(ratios.find((r) => r.target === t && r.metric === m)?.ratio ?? "–")),
        ].join(" | ")} |`,
    ),
    "",
    ...outcomes.filter((o) => !o.available).map((o) => `- ${o.name}: not measured — ${o.reason ?? ""}`),
    ...rows
      .filter((r) => r.errors > 0 && r.unit === "ops/s")
      .map((r) => `- ${r.target} ${r.metric}: ${r.errors} errors (${r.errors_by_code})`),
    ...rows
      .filter((r) => r.unit === "ops/s" && r.generator_max_thread_busy >= GENERATOR_BOUND_BUSY)
      .map(
        (r) =>
          `- ${r.target} ${r.metric}: generator-bound (busiest load thread ${r.generator_max_thread_busy} busy; the members used ${r.server_cores} cores): the client's or the machine's limit, not the cluster's`,
      ),
    "",
    `Load average at the end: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")} (2 cores shared with other work: read ratios, not absolute values).`,
  ];
  return lines.join("\n") + "\n";
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s = settings(args);
  const kinds = clusterKinds(args);
  const dir = clusterResultsDir("cluster", args);
  const startedAt = new Date().toISOString();
  const rows: ClusterMetricRow[] = [];
  const outcomes: TargetOutcome[] = [];
  const pool = await ClusterLoadPool.open(s.workers);
  let subjects: Subject[] = [];
  let pk: Perfkit | undefined;
  let goOrigin = "not run (--generators)";
  if (s.generators.includes("go")) {
    try {
      pk = findPerfkit();
      goOrigin = pk.origin;
    } catch (err) {
      goOrigin = `not measured: ${String(err)}`;
      console.error(`go rows ${goOrigin}`);
    }
  }
  try {
    subjects = await startSubjects(kinds, pool, outcomes);
    await runSettings(subjects, pool, s, rows, pk);
  } finally {
    for (const sub of subjects) {
      outcomes.push(
        sub.failed === undefined
          ? { name: sub.name, describe: sub.cluster.describe, version: sub.cluster.version(), available: true }
          : {
              name: sub.name,
              describe: sub.cluster.describe,
              version: sub.cluster.version(),
              available: false,
              reason: sub.failed,
            },
      );
      await sub.cluster.stop();
    }
    await pool.close();
  }
  writeRun(dir, "cluster.csv", rows as unknown as Record<string, unknown>[], {
    experiment: "cluster",
    argv,
    targets: outcomes,
    settings: s,
    startedAt,
    notes: [
      "put_spread: the in-flight puts are pinned round-robin to the 3 members (etcd's benchmark tool does the same with its clients over --endpoints); put_leader: all on the leader.",
      "get_*_follower: all gets on one follower (the member after the leader in start order).",
      "server_cores: CPU of the 3 member processes together over the setting (warm-up included); server_us_per_op: that CPU per measured op.",
      `ratio = target / ${CLUSTER_BASELINE} from the same run; for ops/s higher is better, for ms lower.`,
      `go_* rows: perfkit (etcd's clientv3), ${goOrigin}; the others: the harness's Node load threads.`,
    ],
  });
  writeFileSync(
    join(dir, "ratios.csv"),
    stringify(clusterRatios(rows), {
      header: true,
      columns: ["metric", "unit", "better", "target", "value", "etcd_value", "ratio"],
    }),
  );
  const report = reportText(rows, outcomes, ["npm run bench -- cluster", ...argv].join(" "), goOrigin);
  writeFileSync(join(dir, "report.md"), report);
  console.log(report);
  return dir;
}
