// `npm run bench -- security`: the TLS and auth cost benchmark. Put throughput at 64 in-flight requests (256 B values) against
// one member in three modes, for etcd-ts and real etcd in the same run:
//   plain — http, no auth;
//   tls   — https with --client-cert-auth (mutual TLS: the client presents a certificate of the trusted CA);
//   auth  — http, auth enabled with simple tokens (--auth-token simple); the load runs as a non-root user whose
//           role has readwrite on the /bench/ prefix, so every put is permission-checked; each load connection
//           authenticates once and reuses its token.
// Ratios: each mode to the same target's plain run, and etcd-ts to etcd in the same mode.
// Every (target, mode) server stays up for the whole run and the settings run back to back in rounds (mode by
// mode, target by target), so drift in the machine's other work falls on all alike; the reported value is the
// median over rounds. As server_bench.ts: load from worker threads (one client, one HTTP/2 connection each), the
// server's CPU per put from /proc, and the busiest generator thread's event-loop utilisation so a generator limit
// is visible. Flags: --clients 64 --seconds 8 --warmup 2 --rounds 3 --workers 2 --modes plain,tls,auth
// --targets etcd-ts,etcd --quick.
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execPath } from "node:process";
import { fileURLToPath } from "node:url";
import { isMainThread, workerData } from "node:worker_threads";
import { stringify } from "csv-stringify/sync";
import { EtcdClient, errorCode, type TlsOptions } from "../../core/client/index.js";
import { machineEnv, runDir } from "../results.js";
import { singleMemberFlags } from "../targets/etcd_process.js";
import { freePort, makeDataDir, ServerProcess } from "../targets/launcher.js";
import { ETCD_TS_UNAVAILABLE, etcdTsEntry } from "../targets/make.js";
import { num, parseArgs, type Args } from "./common.js";
import { type JobResult, LoadThreads, serveJobs, summarize as summarizeLoad } from "./load_threads.js";
import { cpuSeconds, putUntilServing, START_LIMIT_MS, split } from "./server_process.js";
import { median } from "../stats.js";
import { setTimeout as pause } from "node:timers/promises";
import { makePki, type TestPki } from "../pki.js";

const MODES = ["plain", "tls", "auth"] as const;
type Mode = (typeof MODES)[number];
const TARGETS = ["etcd-ts", "etcd"] as const;
type TargetName = (typeof TARGETS)[number];
const PUT_PREFIX = "/bench/put/";
const BENCH_USER = { name: "bench", password: "bench-password", role: "bench-rw" } as const;
const ROOT_PASSWORD = "root-password";
const GENERATOR_BOUND_BUSY = 0.85;

/** How a load client reaches one server: endpoints, TLS material, credentials. */
interface Access {
  readonly endpoints: readonly string[];
  readonly tls?: TlsOptions;
  readonly username?: string;
  readonly password?: string;
}

// ---------------------------------------------------------------- worker side

interface Job {
  readonly key: string;
  readonly access: Access;
  readonly slots: number;
  readonly warmupS: number;
  readonly seconds: number;
}

/** Closed loops of puts: the window opens after the warm-up and closes `seconds` later. */
async function putLoops(client: EtcdClient, job: Job, index: number): Promise<JobResult> {
  let state: "warm" | "measure" | "stopped" = "warm";
  let openedAt = 0,
    closedAt = 0,
    errors = 0,
    allOps = 0;
  let elu0 = performance.eventLoopUtilization();
  const lat: number[] = [];
  const errorsByCode: Record<string, number> = {};
  const value = Buffer.alloc(256, "v");
  const driving = (async () => {
    await pause(job.warmupS * 1000);
    state = "measure";
    openedAt = performance.now();
    elu0 = performance.eventLoopUtilization();
    await pause(job.seconds * 1000);
    state = "stopped";
    closedAt = performance.now();
  })();
  await Promise.all(
    Array.from({ length: job.slots }, async (_, slot) => {
      for (let i = 0; state !== "stopped"; i++, allOps++) {
        const start = performance.now();
        try {
          await client.put(`${PUT_PREFIX}${index}/${slot}/${i % 64}`, value);
          if (state === "measure") lat.push(performance.now() - start);
        } catch (err) {
          if (state !== "measure") continue;
          errors++;
          errorsByCode[errorCode(err)] = (errorsByCode[errorCode(err)] ?? 0) + 1;
        }
      }
    }),
  );
  await driving;
  const busy = performance.eventLoopUtilization(elu0).utilization;
  return {
    ops: lat.length,
    allOps,
    errors,
    errorsByCode,
    windowS: (closedAt - openedAt) / 1000,
    latenciesMs: Float64Array.from(lat),
    busy,
  };
}

function workerMain(index: number): void {
  const held = new Map<string, EtcdClient>();
  serveJobs<Job>(
    async (job) => {
      let client = held.get(job.key);
      if (client === undefined) {
        client = new EtcdClient({ ...job.access, callTimeoutMs: 60_000 });
        held.set(job.key, client);
      }
      // The first put of a fresh client connects (and, with auth, authenticates once); later jobs reuse both.
      await client.put(`${PUT_PREFIX}connect/${index}`, "1");
      return putLoops(client, job, index);
    },
    () => {
      for (const c of held.values()) c.close();
    },
  );
}

if (!isMainThread && (workerData as { securityBenchWorker?: number } | null)?.securityBenchWorker !== undefined) {
  workerMain((workerData as { securityBenchWorker: number }).securityBenchWorker);
}

// ---------------------------------------------------------------- servers

interface Server {
  readonly target: TargetName;
  readonly mode: Mode;
  readonly pid: number;
  readonly access: Access;
  stop(): Promise<void>;
}

function modeFlags(mode: Mode, pki: TestPki): string[] {
  if (mode === "tls")
    return [
      "--cert-file",
      pki.serverCertFile,
      "--key-file",
      pki.serverKeyFile,
      "--trusted-ca-file",
      pki.caFile,
      "--client-cert-auth",
    ];
  if (mode === "auth") return ["--auth-token", "simple"];
  return [];
}

function commandFor(
  target: TargetName,
  mode: Mode,
  pki: TestPki,
  dataDir: string,
  ports: { readonly client: number; readonly peer: number },
): [string, string[]] {
  const flags = [...singleMemberFlags(dataDir, ports, mode === "tls" ? "https" : "http"), ...modeFlags(mode, pki)];
  if (target === "etcd") return ["etcd", flags];
  const entry = etcdTsEntry();
  if (entry === undefined) throw new Error(ETCD_TS_UNAVAILABLE);
  return [execPath, [entry, ...flags, "--backend-read-mode", "concurrent"]];
}

/** Creates root and the bench user (readwrite on /bench/), then enables auth; the load then runs as the user. */
async function enableAuth(client: EtcdClient): Promise<void> {
  await client.auth.roleAdd("root");
  await client.auth.userAdd("root", ROOT_PASSWORD);
  await client.auth.userGrantRole("root", "root");
  await client.auth.roleAdd(BENCH_USER.role);
  await client.auth.roleGrantPermission(BENCH_USER.role, { permType: "READWRITE", key: "/bench/", prefix: true });
  await client.auth.userAdd(BENCH_USER.name, BENCH_USER.password);
  await client.auth.userGrantRole(BENCH_USER.name, BENCH_USER.role);
  await client.auth.authEnable();
}

async function startServer(target: TargetName, mode: Mode, pki: TestPki): Promise<Server> {
  const ports = { client: await freePort(), peer: await freePort() };
  const dataDir = makeDataDir("etcd-ts-security-bench-");
  const proc = new ServerProcess({ label: `${target} (${mode})`, dataDir, ports: [ports.client, ports.peer] });
  const stop = (): Promise<void> => proc.dispose();
  const endpoints = [`${mode === "tls" ? "https" : "http"}://127.0.0.1:${ports.client}`];
  const tls: TlsOptions | undefined =
    mode === "tls" ? { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } : undefined;
  const setup = new EtcdClient({ endpoints, callTimeoutMs: 2_000, ...(tls !== undefined ? { tls } : {}) });
  try {
    proc.spawn(...commandFor(target, mode, pki, dataDir, ports));
    await putUntilServing(proc, setup, { deadline: Date.now() + START_LIMIT_MS, intervalMs: 20 });
    if (mode === "auth") await enableAuth(setup);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    setup.close();
  }
  const access: Access = {
    endpoints,
    ...(tls !== undefined ? { tls } : {}),
    ...(mode === "auth" ? { username: BENCH_USER.name, password: BENCH_USER.password } : {}),
  };
  return { target, mode, pid: proc.pid ?? 0, access, stop };
}

// ---------------------------------------------------------------- load pool

interface Sample {
  readonly throughputPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly errorsByCode: string;
  readonly serverUsPerOp: number;
  readonly generatorMaxThreadBusy: number;
}

class LoadPool {
  private constructor(private readonly threads: LoadThreads<Job>) {}

  static async open(count: number): Promise<LoadPool> {
    const file = fileURLToPath(import.meta.url);
    return new LoadPool(await LoadThreads.open<Job>(file, count, (index) => ({ securityBenchWorker: index })));
  }

  async timed(srv: Server, slots: number, warmupS: number, seconds: number): Promise<Sample> {
    const key = `${srv.target}/${srv.mode}`;
    const srv0 = cpuSeconds(srv.pid);
    const shares = split(slots, this.threads.size);
    const results = await Promise.all(
      shares.map((n, i) => this.threads.send(i, { key, access: srv.access, slots: n, warmupS, seconds })),
    );
    const srvS = cpuSeconds(srv.pid) - srv0;
    const sum = summarizeLoad(results);
    return {
      throughputPerS: sum.throughputPerS,
      p50Ms: sum.p50Ms,
      p99Ms: sum.p99Ms,
      errors: sum.errors,
      errorsByCode: Object.entries(sum.errorsByCode)
        .map(([c, n]) => `${c}:${n}`)
        .join(" "),
      serverUsPerOp: (srvS * 1e6) / sum.allOps,
      generatorMaxThreadBusy: sum.generatorMaxThreadBusy,
    };
  }

  close(): Promise<void> {
    return this.threads.close();
  }
}

// ---------------------------------------------------------------- run, rows, report

interface Settings {
  readonly clients: number;
  readonly seconds: number;
  readonly warmupS: number;
  readonly rounds: number;
  readonly workers: number;
  readonly modes: readonly Mode[];
  readonly targets: readonly TargetName[];
}

function settings(args: Args): Settings {
  const quick = args.get("quick") === "true";
  const modes = (args.get("modes") ?? MODES.join(",")).split(",");
  const targets = (args.get("targets") ?? TARGETS.join(",")).split(",");
  for (const m of modes)
    if (!(MODES as readonly string[]).includes(m))
      throw new Error(`--modes: unknown mode ${JSON.stringify(m)} (plain, tls, auth)`);
  for (const t of targets)
    if (!(TARGETS as readonly string[]).includes(t))
      throw new Error(`--targets: unknown target ${JSON.stringify(t)} (etcd-ts, etcd)`);
  return {
    clients: num(args, "clients", 64),
    seconds: num(args, "seconds", quick ? 0.8 : 8),
    warmupS: num(args, "warmup", quick ? 0.3 : 2),
    rounds: num(args, "rounds", quick ? 1 : 3),
    workers: num(args, "workers", 2),
    modes: modes as Mode[],
    targets: targets as TargetName[],
  };
}

interface SampleRow extends Sample {
  readonly target: TargetName;
  readonly mode: Mode;
  readonly round: number;
}

interface SummaryRow {
  target: TargetName;
  mode: Mode;
  clients: number;
  rounds: number;
  put_per_s: number;
  p50_ms: number;
  p99_ms: number;
  server_us_per_put: number;
  errors: number;
  /** This mode's put/s over the same target's plain put/s. */
  ratio_to_plain: number | "";
  /** etcd-ts's put/s over etcd's in the same mode (etcd rows: ""). */
  ratio_to_etcd: number | "";
  /** Server CPU per put over the same target's plain run (steadier than put/s on a loaded machine). */
  cpu_ratio_to_plain: number | "";
  /** etcd-ts's server CPU per put over etcd's in the same mode. */
  cpu_ratio_to_etcd: number | "";
  generator_bound: "yes" | "";
}

const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

function summarize(samples: readonly SampleRow[], s: Settings): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const med = (t: TargetName, m: Mode, f: (x: SampleRow) => number): number | undefined => {
    const xs = samples.filter((x) => x.target === t && x.mode === m).map(f);
    return xs.length === 0 ? undefined : median(xs);
  };
  for (const mode of s.modes) {
    for (const target of s.targets) {
      const tput = med(target, mode, (x) => x.throughputPerS);
      if (tput === undefined) continue;
      const plain = med(target, "plain", (x) => x.throughputPerS);
      const etcd = med("etcd", mode, (x) => x.throughputPerS);
      const cpu = med(target, mode, (x) => x.serverUsPerOp) ?? 0;
      const cpuPlain = med(target, "plain", (x) => x.serverUsPerOp);
      const cpuEtcd = med("etcd", mode, (x) => x.serverUsPerOp);
      const mine = samples.filter((x) => x.target === target && x.mode === mode);
      rows.push({
        target,
        mode,
        clients: s.clients,
        rounds: mine.length,
        put_per_s: round(tput, 0),
        p50_ms: round(med(target, mode, (x) => x.p50Ms) ?? 0, 3),
        p99_ms: round(med(target, mode, (x) => x.p99Ms) ?? 0, 3),
        server_us_per_put: round(cpu, 1),
        errors: mine.reduce((a, x) => a + x.errors, 0),
        ratio_to_plain: plain !== undefined && plain > 0 ? round(tput / plain, 3) : "",
        ratio_to_etcd: target !== "etcd" && etcd !== undefined && etcd > 0 ? round(tput / etcd, 3) : "",
        cpu_ratio_to_plain: cpuPlain !== undefined && cpuPlain > 0 ? round(cpu / cpuPlain, 3) : "",
        cpu_ratio_to_etcd: target !== "etcd" && cpuEtcd !== undefined && cpuEtcd > 0 ? round(cpu / cpuEtcd, 3) : "",
        generator_bound: mine.some((x) => x.generatorMaxThreadBusy >= GENERATOR_BOUND_BUSY) ? "yes" : "",
      });
    }
  }
  return rows;
}

function printAligned(cells: readonly (readonly string[])[]): void {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
  for (const row of cells) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}

/** Starts every (target, mode) server; a target that fails to start is reported and left out. */
async function startAll(s: Settings, pki: TestPki, failed: Map<string, string>): Promise<Server[]> {
  const servers: Server[] = [];
  for (const mode of s.modes) {
    for (const target of s.targets) {
      try {
        servers.push(await startServer(target, mode, pki));
      } catch (err) {
        failed.set(`${target}/${mode}`, String(err).slice(0, 400));
        console.error(`${target} (${mode}): not measured — ${String(err).slice(0, 400)}`);
      }
    }
  }
  return servers;
}

async function measure(
  servers: readonly Server[],
  pool: LoadPool,
  s: Settings,
  failed: Map<string, string>,
): Promise<SampleRow[]> {
  const samples: SampleRow[] = [];
  for (let r = 1; r <= s.rounds; r++) {
    for (const srv of servers) {
      const key = `${srv.target}/${srv.mode}`;
      if (failed.has(key)) continue;
      console.error(`round ${r}/${s.rounds}: ${key}, ${s.clients} in flight, ${s.seconds} s`);
      try {
        samples.push({
          target: srv.target,
          mode: srv.mode,
          round: r,
          ...(await pool.timed(srv, s.clients, s.warmupS, s.seconds)),
        });
      } catch (err) {
        failed.set(key, String(err).slice(0, 400));
        console.error(`${key}: not measured further — ${String(err).slice(0, 400)}`);
      }
    }
  }
  return samples;
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s = settings(args);
  const dir = runDir("security", args.get("results"));
  const startedAt = new Date().toISOString(),
    loadBefore = loadavg();
  const pki = makePki();
  const failed = new Map<string, string>();
  let samples: SampleRow[] = [];
  const pool = await LoadPool.open(s.workers);
  const servers = await startAll(s, pki, failed);
  try {
    samples = await measure(servers, pool, s, failed);
  } finally {
    await pool.close();
    for (const srv of servers) await srv.stop();
    pki.cleanup();
  }
  const summary = summarize(samples, s);
  writeFileSync(
    join(dir, "samples.csv"),
    stringify(
      samples.map((x) => ({ ...x, throughputPerS: round(x.throughputPerS, 0) })),
      { header: true },
    ),
  );
  writeFileSync(join(dir, "security.csv"), stringify(summary, { header: true }));
  writeFileSync(
    join(dir, "env.json"),
    JSON.stringify(
      {
        ...machineEnv(),
        experiment: "security",
        startedAt,
        args: argv,
        settings: s,
        loadAverageAtStart: loadBefore.map((v) => round(v)),
        notFullyMeasured: Object.fromEntries(failed),
        notes: [
          "tls = https with --client-cert-auth (ECDSA P-256 certificates, the client presents one); auth = http, --auth-token simple, a non-root user with readwrite on /bench/, one Authenticate per load connection.",
          "values are medians over rounds; ratio_to_plain = mode / the same target's plain; ratio_to_etcd = etcd-ts / etcd in the same mode, same run; cpu_ratio_* the same for server CPU per put (steadier when the machine is loaded).",
        ],
      },
      null,
      2,
    ) + "\n",
  );
  printAligned([
    [
      "target",
      "mode",
      "put/s",
      "p50 ms",
      "p99 ms",
      "× plain",
      "× etcd",
      "server µs/put",
      "cpu × plain",
      "cpu × etcd",
      "errors",
      "",
    ],
    ...summary.map((r) => [
      r.target,
      r.mode,
      String(r.put_per_s),
      String(r.p50_ms),
      String(r.p99_ms),
      String(r.ratio_to_plain),
      String(r.ratio_to_etcd || "–"),
      String(r.server_us_per_put),
      String(r.cpu_ratio_to_plain),
      String(r.cpu_ratio_to_etcd || "–"),
      String(r.errors),
      r.generator_bound === "yes" ? "generator-bound" : "",
    ]),
  ]);
  for (const [k, why] of failed) console.log(`${k}: not measured — ${why}`);
  return dir;
}
