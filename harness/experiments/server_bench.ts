// `npm run bench -- server`: the single-member server benchmark, over the wire only, etcd-ts beside real etcd
// from the same run (ratios.csv, report.md). Two load generators, each its own rows (the `client` column):
//   go   — perfkit, etcd's clientv3 (the client kube-apiserver uses), built from ../shared/tools/perfkit when Go is
//          installed or taken from $PERFKIT: puts at 1/64/256 clients, gets at 64, puts through http://
//          endpoints, 30k pods loaded, full and paginated LISTs, RSS, writers beside looping LISTs (server_go.ts);
//   node — worker threads of this process (server_load.ts), one EtcdClient (one HTTP/2 connection) each: put throughput and P50/P99
//          at 1/16/64/256 in-flight requests (256 B values), linearizable and serializable single-key gets (64 in
//          flight), full-prefix get of 50,000 keys × 2 KiB, RSS, and startup time to ready (spawn → first
//          successful put, median over the servers started, each on a fresh data dir).
// Per load setting the server's CPU per op (/proc/<pid>/stat over the setting / its ops) is reported: the work per
// request, far less sensitive to other load on the machine than ops/s. `--quick` shrinks everything for a smoke
// run; `--generators go,node` picks the generators; --clients --seconds --warmup --keys --workers --starts for the
// Node rows, --go-* for the Go rows (server_go.ts).
//
// The load settings run against every target back to back (one server per target alive during the load phase),
// so drift in the machine's other work falls on all targets alike.
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "csv-stringify/sync";
import { EtcdClient } from "../../core/client/index.js";
import { machineEnv, runDir } from "../results.js";
import { parseTargetSpec, specName, type TargetSpec } from "../targets/target.js";
import { num, parseArgs, type Args } from "./common.js";
import { findPerfkit } from "./perfkit.js";
import { median } from "../stats.js";
import { goRows, goSettings, type GoSubject } from "./server_go.js";
import {
  METRIC_COLUMNS,
  RATIO_COLUMNS,
  plainRow,
  printTables,
  ratioRows,
  reportMarkdown,
  round,
  type MetricRow,
} from "./server_report.js";
import { GET_KEY, type JobKind, LoadPool, type LoadStats, RANGE_PREFIX } from "./server_load.js";
import { startServer, statusKib, type Server } from "./server_start.js";

// ---------------------------------------------------------------- settings and result rows

interface Settings {
  readonly clients: readonly number[];
  readonly getClients: number;
  readonly seconds: number;
  readonly warmupS: number;
  readonly keys: number;
  readonly rangeValueBytes: number;
  readonly rangeRuns: number;
  readonly starts: number;
  readonly workers: number;
}

function settings(args: Args): Settings {
  const quick = args.get("quick") === "true";
  return {
    clients: (args.get("clients") ?? "1,16,64,256").split(",").map(Number),
    getClients: num(args, "get-clients", 64),
    seconds: num(args, "seconds", quick ? 0.6 : 10),
    warmupS: num(args, "warmup", quick ? 0.2 : 2),
    keys: num(args, "keys", quick ? 1_000 : 50_000),
    rangeValueBytes: num(args, "range-value-size", 2048),
    rangeRuns: num(args, "range-runs", quick ? 3 : 5),
    starts: num(args, "starts", quick ? 2 : 3),
    workers: num(args, "workers", 2),
  };
}

/** withServer starts a fresh server for `sub`, runs `body` on it and stops it; the start counts as a startup sample. */
async function withServer(sub: Subject, body: (srv: Server) => Promise<void>): Promise<void> {
  const srv = await startServer(sub.spec);
  sub.starts.push(srv);
  try {
    await body(srv);
  } finally {
    await srv.stop();
  }
}

function loadRows(target: string, name: string, clients: number, st: LoadStats): MetricRow[] {
  const base = {
    client: "node" as const,
    target,
    clients,
    errors: st.errors,
    errors_by_code: Object.entries(st.errorsByCode)
      .map(([c, n]) => `${c}:${n}`)
      .join(" "),
    generator_cores: round(st.generatorCores),
    generator_us_per_op: round(st.generatorUsPerOp, 1),
    generator_max_thread_busy: round(st.generatorMaxThreadBusy),
    server_cores: round(st.serverCores),
    server_us_per_op: round(st.serverUsPerOp, 1),
    p50_ms: round(st.p50Ms, 3),
    p99_ms: round(st.p99Ms, 3),
  };
  return [
    {
      ...base,
      metric: `${name}_throughput_c${clients}`,
      value: round(st.throughputPerS, 0),
      unit: "ops/s",
      better: "higher",
    },
    { ...base, metric: `${name}_p50_c${clients}`, value: round(st.p50Ms, 3), unit: "ms", better: "lower" },
    { ...base, metric: `${name}_p99_c${clients}`, value: round(st.p99Ms, 3), unit: "ms", better: "lower" },
    {
      ...base,
      metric: `${name}_server_cpu_c${clients}`,
      value: round(st.serverUsPerOp, 1),
      unit: "µs/op",
      better: "lower",
    },
  ];
}

// ---------------------------------------------------------------- phases

/** A target under test: its name, how to start it, the servers started so far, why it stopped being measured. */
interface Subject {
  readonly name: string;
  readonly spec: TargetSpec;
  readonly starts: Server[];
  failed: string | undefined;
}

/** attempt runs one step for `sub`; a failure marks the target not measured from then on, the others go on. */
async function attempt(sub: Subject, step: () => Promise<void>): Promise<void> {
  if (sub.failed !== undefined) return;
  try {
    await step();
  } catch (err) {
    sub.failed = String(err).slice(0, 400);
    console.error(`target ${sub.name}: not measured further — ${sub.failed}`);
  }
}

/** The timed load settings in run order: puts at each client count, then linearizable and serializable gets. */
function loadSettings(s: Settings): { kind: JobKind; metric: string; clients: number; valueBytes: number }[] {
  return [
    ...s.clients.map((clients) => ({ kind: "put" as const, metric: "put", clients, valueBytes: 256 })),
    { kind: "get-linearizable", metric: "get_linearizable", clients: s.getClients, valueBytes: 0 },
    { kind: "get-serializable", metric: "get_serializable", clients: s.getClients, valueBytes: 0 },
  ];
}

/**
 * loadPhase starts one fresh server per target and runs each load setting against every target back to back,
 * so drift in the machine's other load (a shared machine) falls on all targets alike, not on whichever ran last.
 */
async function loadPhase(subjects: readonly Subject[], pool: LoadPool, s: Settings, rows: MetricRow[]): Promise<void> {
  const servers = new Map<Subject, Server>();
  try {
    for (const sub of subjects) {
      await attempt(sub, async () => {
        const srv = await startServer(sub.spec);
        sub.starts.push(srv);
        servers.set(sub, srv);
        const client = new EtcdClient({ endpoints: srv.endpoints });
        await client.put(GET_KEY, Buffer.alloc(256, "g")).finally(() => client.close());
        await pool.connect(srv);
      });
    }
    for (const set of loadSettings(s)) {
      for (const [sub, srv] of servers) {
        await attempt(sub, async () => {
          console.error(`${sub.name}: ${set.kind}, ${set.clients} in flight, ${s.seconds} s`);
          const st = await pool.timed(srv, set.kind, set.clients, {
            warmupS: s.warmupS,
            seconds: s.seconds,
            valueBytes: set.valueBytes,
          });
          rows.push(...loadRows(sub.name, set.metric, set.clients, st));
        });
      }
    }
  } finally {
    for (const srv of servers.values()) await srv.stop();
  }
}

/** Preloads `keys` × 2 KiB, times full-prefix gets (P50 of rangeRuns), then reads the server's RSS. */
async function rangePhase(name: string, srv: Server, pool: LoadPool, s: Settings): Promise<MetricRow[]> {
  console.error(`${name}: preloading ${s.keys} keys × ${s.rangeValueBytes} B`);
  await pool.preload(srv, s.keys, s.rangeValueBytes, 32);
  const client = new EtcdClient({ endpoints: srv.endpoints, callTimeoutMs: 300_000 });
  const times: number[] = [];
  try {
    for (let r = 0; r < s.rangeRuns; r++) {
      const t0 = performance.now();
      const res = await client.rangeSummary(RANGE_PREFIX, { prefix: true });
      times.push(performance.now() - t0);
      if (res.kvCount !== s.keys)
        throw new Error(`${name}: full-prefix get returned ${res.kvCount} kvs, expected ${s.keys}`);
    }
  } finally {
    client.close();
  }
  const rssMib = statusKib(srv.pid, "VmRSS") / 1024,
    hwmMib = statusKib(srv.pid, "VmHWM") / 1024;
  console.error(
    `${name}: full-prefix get ${times.map((t) => t.toFixed(0)).join(", ")} ms; RSS ${rssMib.toFixed(0)} MiB`,
  );
  return [
    plainRow("node", name, `range_full_p50_${s.keys}keys`, round(median(times), 1), "ms", "lower"),
    plainRow("node", name, "rss_with_keys", round(rssMib, 1), "MiB", "lower"),
    plainRow("node", name, "rss_peak", round(hwmMib, 1), "MiB", "lower"),
  ];
}

function startupRows(name: string, starts: readonly Server[]): MetricRow[] {
  const ready = starts.map((x) => x.readyMs),
    listen = starts.map((x) => x.listenMs);
  console.error(
    `${name}: startup to first put ${ready.map((t) => t.toFixed(0)).join(", ")} ms (port open at ${listen.map((t) => t.toFixed(0)).join(", ")} ms)`,
  );
  return [
    plainRow("node", name, "startup_to_ready_median", round(median(ready), 1), "ms", "lower"),
    plainRow("node", name, "startup_to_listen_median", round(median(listen), 1), "ms", "lower"),
  ];
}

interface TargetOutcome {
  readonly name: string;
  readonly available: boolean;
  readonly reason?: string;
  readonly version?: string;
}

/**
 * benchAll measures every target: the load phase on one server per target (interleaved), then per target a fresh
 * server for the range phase and more fresh starts until --starts startup samples.
 */
async function benchAll(
  specs: readonly TargetSpec[],
  pool: LoadPool,
  s: Settings,
  rows: MetricRow[],
): Promise<TargetOutcome[]> {
  const subjects: Subject[] = specs.map((spec) => ({ name: specName(spec), spec, starts: [], failed: undefined }));
  for (const sub of subjects) {
    if (sub.spec.kind === "endpoints" || (sub.spec.kind === "etcd" && sub.spec.members !== 1)) {
      sub.failed = "the server bench starts its own single member (etcd or etcd-ts targets only)";
    }
  }
  await loadPhase(subjects, pool, s, rows);
  for (const sub of subjects) {
    await attempt(sub, () =>
      withServer(sub, async (srv) => void rows.push(...(await rangePhase(sub.name, srv, pool, s)))),
    );
    while (sub.failed === undefined && sub.starts.length < s.starts)
      await attempt(sub, () => withServer(sub, () => Promise.resolve()));
    if (sub.failed === undefined) rows.push(...startupRows(sub.name, sub.starts));
  }
  return subjects.map((sub) =>
    sub.failed === undefined
      ? { name: sub.name, available: true, version: sub.starts[0]?.version ?? "" }
      : { name: sub.name, available: false, reason: sub.failed },
  );
}

// ---------------------------------------------------------------- ratios, CSV, table
function runConditions(argv: readonly string[], goOrigin: string, loadBefore: number[]): string[] {
  return [
    `command: npm run bench -- server ${argv.join(" ")}`,
    `go rows: perfkit ${goOrigin}`,
    "node rows: worker threads of the bench process (one gRPC connection each); generator_max_thread_busy near 1 = generator-bound",
    `load average at start: ${loadBefore.map((v) => round(v)).join(" / ")} (1/5/15 min) — other work on the machine moves ops/s; server µs/op moves less`,
    "ratio = target / etcd from the same run; for throughput higher is better, for ms, µs/op and MiB lower is better",
  ];
}

/** The Go rows, when perfkit can be found or built; returns how it was found, or why the rows are missing. */
async function goPart(
  args: Args,
  specs: readonly TargetSpec[],
  rows: MetricRow[],
  outcomes: Map<string, string>,
): Promise<string> {
  let pk: ReturnType<typeof findPerfkit>;
  try {
    pk = findPerfkit();
  } catch (err) {
    console.error(`go rows not measured: ${String(err)}`);
    return `not measured: ${String(err)}`;
  }
  const subjects: GoSubject[] = specs.map((spec) => ({ name: specName(spec), spec, failed: undefined }));
  await goRows(pk, subjects, goSettings(args), rows);
  for (const sub of subjects) if (sub.failed !== undefined) outcomes.set(sub.name, sub.failed);
  return pk.origin;
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s = settings(args);
  const generators = (args.get("generators") ?? "go,node").split(",");
  const specs = (args.get("targets") ?? "etcd-ts:concurrent,etcd").split(",").map(parseTargetSpec);
  const dir = runDir("server", args.get("results"));
  const startedAt = new Date().toISOString(),
    loadBefore = loadavg();
  const rows: MetricRow[] = [];
  const outcomes: TargetOutcome[] = [];
  const goFailures = new Map<string, string>();
  const goOrigin = generators.includes("go") ? await goPart(args, specs, rows, goFailures) : "not run (--generators)";
  if (generators.includes("node")) {
    const pool = await LoadPool.open(s.workers);
    try {
      outcomes.push(...(await benchAll(specs, pool, s, rows)));
    } finally {
      await pool.close();
    }
  }
  const ratios = ratioRows(rows);
  const conditions = runConditions(argv, goOrigin, loadBefore);
  writeFileSync(join(dir, "server.csv"), stringify(rows, { header: true, columns: METRIC_COLUMNS as string[] }));
  writeFileSync(join(dir, "ratios.csv"), stringify(ratios, { header: true, columns: RATIO_COLUMNS as string[] }));
  writeFileSync(join(dir, "report.md"), reportMarkdown(rows, ratios, conditions));
  const env = {
    ...machineEnv(),
    experiment: "server",
    startedAt,
    args: argv,
    settings: s,
    targets: outcomes,
    goFailures: Object.fromEntries(goFailures),
    loadAverageAtStart: loadBefore.map((v) => round(v)),
    notes: conditions,
  };
  writeFileSync(join(dir, "env.json"), JSON.stringify(env, null, 2) + "\n");
  printTables(rows, ratios);
  for (const o of outcomes) if (!o.available) console.log(`${o.name}: not measured — ${o.reason ?? ""}`);
  for (const [name, why] of goFailures) console.log(`${name}: ${why}`);
  return dir;
}
