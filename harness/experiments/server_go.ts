// The server benchmark's Go-client rows: perfkit (etcd's clientv3) against one fresh member of each target, in
// the same run. Two phases:
//   load  — one server per target alive, each setting run against every target back to back (so drift in the
//           machine's other work falls on all alike): puts (256 B) at 1/64/256 clients, linearizable and
//           serializable single-key gets at 64, and puts at 64 through `http://` endpoints (a scheme in
//           `:authority`);
//   pods  — per target a fresh server: 30k pods × 2 KiB loaded by 32 clients, topped up to 50k, plus 20k keys
//           under a second prefix; full LIST of the 50k (linearizable, serializable), paginated LISTs (500 a page,
//           continued at the first page's revision, as kube-apiserver lists) of 50k and 20k, RSS with the keys
//           loaded, then 16 writers alone and beside 4 looping full LISTs, and last `etcdctl del --prefix` of the
//           50k pods (one DeleteRange, applied in one piece; skipped when etcdctl is not on the PATH).
// Server CPU per op is the member's process CPU (/proc/<pid>/stat, every thread) over the setting / its ops: work
// per request, much less sensitive than ops/s to other load on the machine.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { type Perfkit, field, runPerfkit } from "./perfkit.js";
import { type ClientKind, type MetricRow, plainRow, round } from "./server_report.js";
import { startServer, statusKib, type Server } from "./server_start.js";
import { cpuSeconds } from "./server_process.js";
import type { TargetSpec } from "../targets/target.js";
import type { Args } from "./common.js";
import { num } from "./common.js";

const GO: ClientKind = "go";
const execFileAsync = promisify(execFile);
/** The key the get settings read: what `perfkit put --key-size=8 --key-space-size=1` writes. */
const GET_KEY = "/bench/0";
const PODS = "/registry/pods/";
const SECOND_PREFIX = "/registry/configmaps/";

export interface GoSettings {
  readonly putClients: readonly number[];
  readonly putTotal: number;
  readonly putTotalOneClient: number;
  readonly getTotal: number;
  readonly loadPods: number;
  readonly totalPods: number;
  readonly secondKeys: number;
  readonly listReps: number;
  readonly rwSeconds: number;
  /** Untimed puts at 64 clients on each fresh load-phase server first, so JIT warm-up is not measured. */
  readonly warmupPuts: number;
}

export function goSettings(args: Args): GoSettings {
  const quick = args.get("quick") === "true";
  return {
    putClients: (args.get("go-clients") ?? "1,64,256").split(",").map(Number),
    putTotal: num(args, "go-put-total", quick ? 3_000 : 100_000),
    putTotalOneClient: num(args, "go-put-total-1", quick ? 300 : 10_000),
    getTotal: num(args, "go-get-total", quick ? 3_000 : 100_000),
    loadPods: num(args, "go-load-pods", quick ? 1_000 : 30_000),
    totalPods: num(args, "go-pods", quick ? 2_000 : 50_000),
    secondKeys: num(args, "go-second-keys", quick ? 1_000 : 20_000),
    listReps: num(args, "go-list-reps", quick ? 1 : 3),
    rwSeconds: num(args, "go-rw-seconds", quick ? 2 : 20),
    warmupPuts: num(args, "go-warmup-puts", quick ? 1_000 : 20_000),
  };
}

export interface GoSubject {
  readonly name: string;
  readonly spec: TargetSpec;
  failed: string | undefined;
}

async function attempt(sub: GoSubject, step: () => Promise<void>): Promise<void> {
  if (sub.failed !== undefined) return;
  try {
    await step();
  } catch (err) {
    sub.failed = `go client: ${String(err).slice(0, 400)}`;
    console.error(`target ${sub.name}: ${sub.failed}`);
  }
}

/** Runs `args` against `srv`, returning the RESULT fields and the server's CPU seconds over the run. */
async function measured(
  pk: Perfkit,
  srv: Server,
  args: string[],
): Promise<{ r: Record<string, string>; cpuS: number }> {
  const cpu0 = cpuSeconds(srv.pid);
  const r = await runPerfkit(pk, args);
  return { r, cpuS: cpuSeconds(srv.pid) - cpu0 };
}

function loadRows(
  target: string,
  metric: string,
  clients: number,
  r: Record<string, string>,
  cpuS: number,
): MetricRow[] {
  const ok = field(r, "ok"),
    seconds = field(r, "seconds");
  const base = {
    ...plainRow(GO, target, "", 0, "", "higher"),
    clients,
    errors: field(r, "errors"),
    p50_ms: field(r, "p50_ms"),
    p99_ms: field(r, "p99_ms"),
    server_cores: round(cpuS / seconds),
    server_us_per_op: round((cpuS * 1e6) / Math.max(1, ok), 1),
  };
  return [
    { ...base, metric: `${metric}_throughput_c${clients}`, value: field(r, "rps"), unit: "ops/s", better: "higher" },
    { ...base, metric: `${metric}_p99_c${clients}`, value: field(r, "p99_ms"), unit: "ms", better: "lower" },
    {
      ...base,
      metric: `${metric}_server_cpu_c${clients}`,
      value: base.server_us_per_op,
      unit: "µs/op",
      better: "lower",
    },
  ];
}

interface LoadSetting {
  readonly metric: string;
  readonly clients: number;
  readonly args: (endpoint: string) => string[];
}

function loadSettings(s: GoSettings): LoadSetting[] {
  const conn = (c: number): string[] => [`--conns=${Math.min(c, 64)}`, `--clients=${c}`];
  return [
    ...s.putClients.map((c) => ({
      metric: "put",
      clients: c,
      args: (ep: string) => [
        "put",
        `--endpoints=${ep}`,
        ...conn(c),
        `--total=${c === 1 ? s.putTotalOneClient : s.putTotal}`,
        "--key-size=64",
        "--val-size=256",
        "--key-space-size=100000",
      ],
    })),
    ...(["linearizable", "serializable"] as const).map((mode) => ({
      metric: `get_${mode}`,
      clients: 64,
      args: (ep: string) => [
        "range",
        `--endpoints=${ep}`,
        ...conn(64),
        `--total=${s.getTotal}`,
        `--key=${GET_KEY}`,
        `--consistency=${mode[0]}`,
      ],
    })),
    {
      metric: "put_http",
      clients: 64,
      args: (ep: string) => [
        "put",
        `--endpoints=http://${ep}`,
        ...conn(64),
        `--total=${s.putTotal}`,
        "--key-size=64",
        "--val-size=256",
        "--key-space-size=100000",
      ],
    },
  ];
}

async function loadPhase(pk: Perfkit, subjects: readonly GoSubject[], s: GoSettings, rows: MetricRow[]): Promise<void> {
  const servers = new Map<GoSubject, Server>();
  try {
    for (const sub of subjects) {
      await attempt(sub, async () => {
        const srv = await startServer(sub.spec);
        servers.set(sub, srv);
        await runPerfkit(pk, [
          "put",
          `--endpoints=${srv.endpoints[0]!}`,
          "--total=1",
          "--key-space-size=1",
          "--key-size=8",
          "--val-size=256",
        ]);
        await runPerfkit(pk, [
          "put",
          `--endpoints=${srv.endpoints[0]!}`,
          "--conns=64",
          "--clients=64",
          `--total=${s.warmupPuts}`,
        ]);
      });
    }
    for (const set of loadSettings(s)) {
      for (const [sub, srv] of servers) {
        await attempt(sub, async () => {
          console.error(`${sub.name} (go): ${set.metric}, ${set.clients} clients`);
          const { r, cpuS } = await measured(pk, srv, set.args(srv.endpoints[0]!));
          rows.push(...loadRows(sub.name, set.metric, set.clients, r, cpuS));
        });
      }
    }
  } finally {
    for (const srv of servers.values()) await srv.stop();
  }
}

async function list(
  pk: Perfkit,
  srv: Server,
  prefix: string,
  limit: number,
  consistency: "l" | "s",
  reps: number,
  expect: number,
): Promise<number> {
  const r = await runPerfkit(pk, [
    "list",
    `--endpoints=${srv.endpoints[0]!}`,
    `--prefix=${prefix}`,
    `--limit=${limit}`,
    `--consistency=${consistency}`,
    `--reps=${reps}`,
  ]);
  if (field(r, "kvs") !== expect)
    throw new Error(`list ${prefix} limit ${limit} returned ${field(r, "kvs")} kvs, expected ${expect}`);
  return field(r, "median_ms");
}

function rwArgs(srv: Server, readers: number, seconds: number): string[] {
  return [
    "rw",
    `--endpoints=${srv.endpoints[0]!}`,
    "--writers=16",
    "--conns=16",
    `--readers=${readers}`,
    `--read-prefix=${PODS}`,
    `--duration=${seconds}s`,
    "--key-size=64",
    "--val-size=256",
    "--key-space-size=100000",
  ];
}

async function podsPhase(pk: Perfkit, sub: GoSubject, s: GoSettings, rows: MetricRow[]): Promise<void> {
  const srv = await startServer(sub.spec);
  const name = sub.name,
    ep = `--endpoints=${srv.endpoints[0]!}`;
  const row = (metric: string, value: number, unit: string, better: "higher" | "lower"): void =>
    void rows.push(plainRow(GO, name, metric, round(value, 1), unit, better));
  try {
    console.error(`${name} (go): loading ${s.loadPods} pods × 2 KiB by 32 clients`);
    const { r, cpuS } = await measured(pk, srv, [
      "load-pods",
      ep,
      `--count=${s.loadPods}`,
      "--val-size=2048",
      "--clients=32",
    ]);
    row(`load_${s.loadPods}_pods`, field(r, "puts_per_s"), "puts/s", "higher");
    row(`load_${s.loadPods}_pods_server_cpu`, (cpuS * 1e6) / s.loadPods, "µs/op", "lower");
    await runPerfkit(pk, [
      "load-pods",
      ep,
      `--start=${s.loadPods}`,
      `--count=${s.totalPods - s.loadPods}`,
      "--val-size=2048",
      "--clients=32",
    ]);
    await runPerfkit(pk, [
      "load-pods",
      ep,
      `--prefix=${SECOND_PREFIX}`,
      `--count=${s.secondKeys}`,
      "--val-size=2048",
      "--clients=32",
    ]);
    console.error(`${name} (go): LISTs`);
    row(
      `list_full_linearizable_${s.totalPods}`,
      await list(pk, srv, PODS, 0, "l", s.listReps, s.totalPods),
      "ms",
      "lower",
    );
    row(
      `list_full_serializable_${s.totalPods}`,
      await list(pk, srv, PODS, 0, "s", s.listReps, s.totalPods),
      "ms",
      "lower",
    );
    row(`list_paged500_${s.totalPods}`, await list(pk, srv, PODS, 500, "l", s.listReps, s.totalPods), "ms", "lower");
    row(
      `list_paged500_${s.secondKeys}`,
      await list(pk, srv, SECOND_PREFIX, 500, "l", s.listReps, s.secondKeys),
      "ms",
      "lower",
    );
    row(`rss_with_${s.totalPods + s.secondKeys}_keys`, statusKib(srv.pid, "VmRSS") / 1024, "MiB", "lower");
    console.error(`${name} (go): 16 writers, alone and beside 4 looping LISTs`);
    const alone = await measured(pk, srv, rwArgs(srv, 0, s.rwSeconds)),
      beside = await measured(pk, srv, rwArgs(srv, 4, s.rwSeconds));
    for (const [name, { r, cpuS }] of [
      ["alone", alone],
      ["r4", beside],
    ] as const) {
      row(`rw_w16_${name}_puts`, field(r, "puts_per_s"), "puts/s", "higher");
      row(`rw_w16_${name}_p99`, field(r, "p99_ms"), "ms", "lower");
      // With readers, the LISTs' CPU is in it too: the whole cost of the mix per put.
      row(`rw_w16_${name}_server_cpu_per_put`, (cpuS * 1e6) / Math.max(1, field(r, "puts")), "µs/op", "lower");
    }
    rows.push(
      plainRow(
        GO,
        name,
        "rw_r4_puts_kept",
        round(field(beside.r, "puts_per_s") / field(alone.r, "puts_per_s"), 3),
        "fraction",
        "higher",
      ),
    );
    rows.push(
      plainRow(
        GO,
        name,
        "rw_r4_p99_growth",
        round(field(beside.r, "p99_ms") / field(alone.r, "p99_ms"), 3),
        "×",
        "lower",
      ),
    );
    const deleteMs = await timedPrefixDelete(srv.endpoints[0]!, PODS);
    if (deleteMs !== undefined) row(`delete_prefix_${s.totalPods}`, deleteMs, "ms", "lower");
  } finally {
    await srv.stop();
  }
}

/** goRows measures every subject with perfkit; a target that fails is marked and skipped from then on. */
export async function goRows(
  pk: Perfkit,
  subjects: readonly GoSubject[],
  s: GoSettings,
  rows: MetricRow[],
): Promise<void> {
  await loadPhase(pk, subjects, s, rows);
  for (const sub of subjects) await attempt(sub, () => podsPhase(pk, sub, s, rows));
}

/**
 * Milliseconds `etcdctl del --prefix` takes (process start included, a few ms of a DeleteRange that takes
 * hundreds), or undefined without etcdctl. A failed delete throws: the row would be meaningless.
 */
async function timedPrefixDelete(endpoint: string, prefix: string): Promise<number | undefined> {
  const args = [`--endpoints=${endpoint}`, "--command-timeout=120s", "del", "--prefix", prefix];
  const t0 = performance.now();
  try {
    await execFileAsync("etcdctl", args, { env: { ...process.env, ETCDCTL_API: "3" } });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return performance.now() - t0;
}
