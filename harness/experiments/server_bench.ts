// `npm run bench -- server`: issue 5's server benchmark, single member on loopback, over the wire only. Per
// target: put throughput and P50/P99 at 1/16/64/256 in-flight requests (256 B values), linearizable and
// serializable single-key get throughput (64 in flight), full-prefix get of 50,000 keys × 2 KiB (P50 of a few
// runs), server RSS with those keys loaded, and startup time to ready (spawn → first successful put, median of 3
// fresh data dirs). Every metric is written beside real etcd's from the same run as etcd-ts / etcd.
//
// Load comes from worker threads of this module, one EtcdClient (one HTTP/2 connection) each, so one JS event
// loop is not the ceiling (grpc-js does ~10–12k unary calls/s per thread). The generator's own CPU (process-wide
// rusage), the busiest worker's event-loop utilisation and the server's CPU (/proc/<pid>/stat) are measured over
// every setting and printed, so a reader can tell a server limit from a generator limit.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execPath } from "node:process";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { stringify } from "csv-stringify/sync";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import { machineEnv, runDir } from "../results.js";
import { freePort } from "../targets/etcd_process.js";
import { etcdTsEntry, makeTarget } from "../targets/make.js";
import { parseTargetSpec, specName, type Target, type TargetSpec } from "../targets/target.js";
import { num, parseArgs, type Args } from "./common.js";

const PUT_PREFIX = "/bench/put/";
const GET_KEY = "/bench/get/key";
const RANGE_PREFIX = "/bench/range/";
/** The target every ratio divides by. */
const BASELINE = "etcd";

// ---------------------------------------------------------------- worker side (one EtcdClient per thread)

type JobKind = "put" | "get-linearizable" | "get-serializable" | "preload";

interface Job {
  readonly kind: JobKind;
  readonly slots: number;
  readonly warmupS: number;
  readonly seconds: number;
  readonly valueBytes: number;
  /** preload: this worker writes keys [from, to) under RANGE_PREFIX. */
  readonly from: number;
  readonly to: number;
}

interface JobResult {
  /** Successful ops completed inside the measured window. */
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly windowS: number;
  /** Latency of each counted op, ms. */
  readonly latenciesMs: Float64Array;
  /** Event-loop utilisation of this worker over the measured window (1 = the thread never waited). */
  readonly busy: number;
}

interface WorkerInit {
  readonly serverBenchWorker: true;
  readonly endpoints: string[];
  readonly index: number;
}

const rangeKey = (i: number): string => `${RANGE_PREFIX}key-${String(i).padStart(7, "0")}`;

function opFor(client: EtcdClient, job: Job, index: number, slot: number): (i: number) => Promise<unknown> {
  const value = Buffer.alloc(job.valueBytes, "v");
  switch (job.kind) {
    case "put":
      return (i) => client.put(`${PUT_PREFIX}${index}/${slot}/${i % 64}`, value);
    case "get-linearizable":
      return () => client.get(GET_KEY);
    case "get-serializable":
      return () => client.get(GET_KEY, { serializable: true });
    case "preload":
      return (i) => client.put(rangeKey(i), value);
  }
}

async function runPreload(client: EtcdClient, job: Job, index: number): Promise<JobResult> {
  let next = job.from;
  const op = opFor(client, job, index, 0);
  await Promise.all(Array.from({ length: job.slots }, async () => {
    while (next < job.to) await op(next++);
  }));
  return { ops: job.to - job.from, errors: 0, errorsByCode: {}, windowS: 0, latenciesMs: new Float64Array(0), busy: 0 };
}

/** runTimed runs `slots` closed loops; counts ops completing in [warm-up end, end] and their latencies. */
async function runTimed(client: EtcdClient, job: Job, index: number): Promise<JobResult> {
  const t0 = performance.now();
  const warmEnd = t0 + job.warmupS * 1000, end = warmEnd + job.seconds * 1000;
  const lat: number[] = [];
  const errorsByCode: Record<string, number> = {};
  let errors = 0;
  let elu0 = performance.eventLoopUtilization();
  const eluTimer = setTimeout(() => (elu0 = performance.eventLoopUtilization()), Math.max(0, warmEnd - t0));
  await Promise.all(Array.from({ length: job.slots }, async (_, slot) => {
    const op = opFor(client, job, index, slot);
    for (let i = 0; performance.now() < end; i++) {
      const start = performance.now();
      try {
        await op(i);
        const done = performance.now();
        if (done >= warmEnd && done <= end) lat.push(done - start);
      } catch (err) {
        if (performance.now() < warmEnd) continue;
        errors++;
        const code = errorCode(err);
        errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      }
    }
  }));
  clearTimeout(eluTimer);
  const busy = performance.eventLoopUtilization(elu0).utilization;
  return { ops: lat.length, errors, errorsByCode, windowS: job.seconds, latenciesMs: Float64Array.from(lat), busy };
}

async function workerMain(init: WorkerInit): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const client = new EtcdClient({ endpoints: init.endpoints, callTimeoutMs: 60_000 });
  await client.status(); // connected before the first timed op
  port.on("message", (m: Job | "close") => {
    if (m === "close") {
      client.close();
      port.close();
      return;
    }
    const work = m.kind === "preload" ? runPreload(client, m, init.index) : runTimed(client, m, init.index);
    work.then(
      (r) => port.postMessage({ result: r }, [r.latenciesMs.buffer as ArrayBuffer]),
      (err: unknown) => port.postMessage({ error: `${errorCode(err)}: ${String(err)}` }),
    );
  });
  port.postMessage("ready");
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.serverBenchWorker === true) {
  void workerMain(workerData as WorkerInit);
}

// ---------------------------------------------------------------- process measurements (/proc)

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux x86-64 (getconf CLK_TCK)

/** cpuSeconds is utime + stime of every thread of `pid`, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S; // fields 14 and 15 of proc(5)
}

/** statusKib reads one "Vm…: N kB" line of /proc/<pid>/status. */
function statusKib(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1], state = f[3], inode = f[9];
      if (local === undefined || inode === undefined || state !== "0A") continue;
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) inodes.add(inode);
    }
  }
  return inodes;
}

/**
 * serverPid finds the process listening on the target's client port (socket inode in /proc/net/tcp, then the
 * process holding it), so RSS and CPU are read without reaching into the target classes.
 */
export function serverPid(endpoint: string): number {
  const port = Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));
  const inodes = listeningInodes(port);
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (wanted.has(readlinkSync(`/proc/${name}/fd/${fd}`))) return Number(name);
      } catch {
        // fd closed while scanning
      }
    }
  }
  throw new Error(`no process found listening on ${endpoint} (inodes ${[...inodes].join(",") || "none"})`);
}

// ---------------------------------------------------------------- load pool (main side)

interface LoadStats {
  readonly throughputPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  /** Generator process CPU (all threads) / wall time of the setting, in cores. */
  readonly generatorCores: number;
  /** Generator CPU per successful op, µs. */
  readonly generatorUsPerOp: number;
  /** Highest event-loop utilisation among the worker threads that carried load. */
  readonly generatorMaxThreadBusy: number;
  readonly serverCores: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** split divides `total` in-flight slots over at most `parts` workers as evenly as possible. */
export function split(total: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

class LoadPool {
  private readonly workers: Worker[] = [];

  private constructor(private readonly serverPidValue: number) {}

  static async open(endpoints: string[], count: number, pid: number): Promise<LoadPool> {
    const pool = new LoadPool(pid);
    const file = fileURLToPath(import.meta.url);
    await Promise.all(Array.from({ length: count }, (_, index) => {
      const w = new Worker(file, { workerData: { serverBenchWorker: true, endpoints, index } satisfies WorkerInit });
      pool.workers.push(w);
      return new Promise<void>((resolve, reject) => {
        w.once("message", (m) => (m === "ready" ? resolve() : reject(new Error(`worker ${index}: ${String(m)}`))));
        w.once("error", reject);
      });
    }));
    return pool;
  }

  private send(w: Worker, job: Job): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      w.once("error", onError);
      w.once("message", (m: { result?: JobResult; error?: string }) => {
        w.off("error", onError);
        if (m.result !== undefined) resolve(m.result);
        else reject(new Error(`load worker failed: ${m.error ?? "?"}`));
      });
      w.postMessage(job);
    });
  }

  async preload(keys: number, valueBytes: number, slotsPerWorker: number): Promise<void> {
    const per = Math.ceil(keys / this.workers.length);
    await Promise.all(this.workers.map((w, i) => this.send(w, {
      kind: "preload", slots: slotsPerWorker, warmupS: 0, seconds: 0, valueBytes, from: i * per, to: Math.min(keys, (i + 1) * per),
    })));
  }

  async timed(kind: JobKind, slots: number, s: { warmupS: number; seconds: number; valueBytes: number }): Promise<LoadStats> {
    const shares = split(slots, this.workers.length);
    const cpu0 = process.cpuUsage(), srv0 = cpuSeconds(this.serverPidValue), t0 = performance.now();
    const results = await Promise.all(shares.map((n, i) => this.send(this.workers[i]!, { kind, slots: n, ...s, from: 0, to: 0 })));
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0), srvS = cpuSeconds(this.serverPidValue) - srv0;
    const all = new Float64Array(results.reduce((a, r) => a + r.latenciesMs.length, 0));
    let at = 0;
    for (const r of results) {
      all.set(r.latenciesMs, at);
      at += r.latenciesMs.length;
    }
    all.sort();
    const ops = all.length;
    const errorsByCode: Record<string, number> = {};
    for (const r of results) for (const [c, n] of Object.entries(r.errorsByCode)) errorsByCode[c] = (errorsByCode[c] ?? 0) + n;
    const genS = (cpu.user + cpu.system) / 1e6;
    return {
      throughputPerS: results.reduce((a, r) => a + r.ops / r.windowS, 0), p50Ms: percentile(all, 50), p99Ms: percentile(all, 99),
      ops, errors: results.reduce((a, r) => a + r.errors, 0), errorsByCode,
      generatorCores: genS / wallS, generatorUsPerOp: ops > 0 ? (genS * 1e6) / (ops * ((s.warmupS + s.seconds) / s.seconds)) : 0,
      generatorMaxThreadBusy: Math.max(...results.map((r) => r.busy)), serverCores: srvS / wallS,
    };
  }

  async close(): Promise<void> {
    for (const w of this.workers) w.postMessage("close");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

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
    seconds: num(args, "seconds", quick ? 1 : 10),
    warmupS: num(args, "warmup", quick ? 0.3 : 2),
    keys: num(args, "keys", quick ? 2_000 : 50_000),
    rangeValueBytes: num(args, "range-value-size", 2048),
    rangeRuns: num(args, "range-runs", quick ? 3 : 5),
    starts: num(args, "starts", 3),
    workers: num(args, "workers", 2),
  };
}

/** One measured value of one target (server.csv). */
interface MetricRow {
  target: string;
  metric: string;
  clients: number | "";
  value: number;
  unit: string;
  /** "higher" or "lower" is better. */
  better: "higher" | "lower";
  p50_ms: number | "";
  p99_ms: number | "";
  errors: number;
  errors_by_code: string;
  generator_cores: number | "";
  generator_us_per_op: number | "";
  generator_max_thread_busy: number | "";
  server_cores: number | "";
}

const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

function loadRows(target: string, name: string, clients: number, st: LoadStats): MetricRow[] {
  const base = {
    target, clients, errors: st.errors, errors_by_code: Object.entries(st.errorsByCode).map(([c, n]) => `${c}:${n}`).join(" "),
    generator_cores: round(st.generatorCores), generator_us_per_op: round(st.generatorUsPerOp, 1),
    generator_max_thread_busy: round(st.generatorMaxThreadBusy), server_cores: round(st.serverCores),
    p50_ms: round(st.p50Ms, 3), p99_ms: round(st.p99Ms, 3),
  };
  return [
    { ...base, metric: `${name}_throughput_c${clients}`, value: round(st.throughputPerS, 0), unit: "ops/s", better: "higher" },
    { ...base, metric: `${name}_p50_c${clients}`, value: round(st.p50Ms, 3), unit: "ms", better: "lower" },
    { ...base, metric: `${name}_p99_c${clients}`, value: round(st.p99Ms, 3), unit: "ms", better: "lower" },
  ];
}

function plainRow(target: string, metric: string, value: number, unit: string, better: "higher" | "lower"): MetricRow {
  return {
    target, metric, clients: "", value, unit, better, p50_ms: "", p99_ms: "", errors: 0, errors_by_code: "",
    generator_cores: "", generator_us_per_op: "", generator_max_thread_busy: "", server_cores: "",
  };
}

// ---------------------------------------------------------------- phases

/** Puts at each client count, then linearizable and serializable gets, on one fresh server. */
async function loadPhase(name: string, target: Target, s: Settings): Promise<MetricRow[]> {
  const endpoint = target.endpoints()[0]!;
  const pool = await LoadPool.open(target.endpoints(), s.workers, serverPid(endpoint));
  const rows: MetricRow[] = [];
  const timing = { warmupS: s.warmupS, seconds: s.seconds };
  try {
    for (const c of s.clients) {
      console.error(`${name}: put, ${c} in flight, ${s.seconds} s`);
      rows.push(...loadRows(name, "put", c, await pool.timed("put", c, { ...timing, valueBytes: 256 })));
    }
    const client = new EtcdClient({ endpoints: target.endpoints() });
    await client.put(GET_KEY, Buffer.alloc(256, "g")).finally(() => client.close());
    for (const kind of ["get-linearizable", "get-serializable"] as const) {
      console.error(`${name}: ${kind}, ${s.getClients} in flight, ${s.seconds} s`);
      const st = await pool.timed(kind, s.getClients, { ...timing, valueBytes: 0 });
      rows.push(...loadRows(name, kind.replace("-", "_"), s.getClients, st));
    }
  } finally {
    await pool.close();
  }
  return rows;
}

/** Preloads `keys` × 2 KiB, times full-prefix gets (P50 of rangeRuns), then reads the server's RSS. */
async function rangePhase(name: string, target: Target, s: Settings): Promise<MetricRow[]> {
  const endpoint = target.endpoints()[0]!;
  const pid = serverPid(endpoint);
  const pool = await LoadPool.open(target.endpoints(), s.workers, pid);
  console.error(`${name}: preloading ${s.keys} keys × ${s.rangeValueBytes} B`);
  await pool.preload(s.keys, s.rangeValueBytes, 32).finally(() => pool.close());
  const client = new EtcdClient({ endpoints: target.endpoints(), callTimeoutMs: 300_000 });
  const times: number[] = [];
  try {
    for (let r = 0; r < s.rangeRuns; r++) {
      const t0 = performance.now();
      const res = await client.rangeSummary(RANGE_PREFIX, { prefix: true });
      times.push(performance.now() - t0);
      if (res.kvCount !== s.keys) throw new Error(`${name}: full-prefix get returned ${res.kvCount} kvs, expected ${s.keys}`);
    }
  } finally {
    client.close();
  }
  times.sort((a, b) => a - b);
  const rssMib = statusKib(pid, "VmRSS") / 1024, hwmMib = statusKib(pid, "VmHWM") / 1024;
  console.error(`${name}: full-prefix get ${times.map((t) => t.toFixed(0)).join(", ")} ms; RSS ${rssMib.toFixed(0)} MiB`);
  return [
    plainRow(name, `range_full_p50_${s.keys}keys`, round(percentile(Float64Array.from(times), 50), 1), "ms", "lower"),
    plainRow(name, "rss_with_keys", round(rssMib, 1), "MiB", "lower"),
    plainRow(name, "rss_peak", round(hwmMib, 1), "MiB", "lower"),
  ];
}

/** The command line that starts `spec` as one member, the same flags harness/targets passes. */
function commandFor(spec: TargetSpec, dataDir: string, clientPort: number, peerPort: number): [string, string[]] {
  const flags = [
    "--name", "bench", "--data-dir", dataDir,
    "--listen-client-urls", `http://127.0.0.1:${clientPort}`, "--advertise-client-urls", `http://127.0.0.1:${clientPort}`,
    "--listen-peer-urls", `http://127.0.0.1:${peerPort}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peerPort}`,
    "--initial-cluster", `bench=http://127.0.0.1:${peerPort}`, "--logger", "zap", "--log-outputs", "stderr",
    "--quota-backend-bytes", String(8 * 1024 * 1024 * 1024),
  ];
  if (spec.kind === "etcd") return ["etcd", flags];
  if (spec.kind !== "etcd-ts") throw new Error(`cannot start ${spec.kind} targets`);
  const entry = etcdTsEntry();
  if (entry === undefined) throw new Error("etcd-ts is not built (npm run build)");
  return [execPath, [entry, ...flags, "--backend-read-mode", spec.readMode]];
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    sock.once("connect", () => { sock.destroy(); resolve(true); });
    sock.once("error", () => { sock.destroy(); resolve(false); });
  });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * startupMs spawns the server on a fresh data dir and returns ms from spawn to its first successful put. The
 * port is polled every 5 ms before a gRPC client is made, so no gRPC reconnect backoff is measured.
 */
async function startupMs(spec: TargetSpec): Promise<number> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-startup-"));
  const [bin, args] = commandFor(spec, dataDir, clientPort, peerPort);
  let stderrTail = "";
  const t0 = performance.now();
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (b: Buffer) => (stderrTail = (stderrTail + b.toString("utf8")).slice(-2000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    const deadline = t0 + 30_000;
    const alive = (): void => {
      if (child.exitCode !== null) throw new Error(`${bin} exited with ${child.exitCode}: ${stderrTail.slice(-600)}`);
      if (performance.now() > deadline) throw new Error(`${bin} not ready after 30 s: ${stderrTail.slice(-600)}`);
    };
    while (!(await portAccepts(clientPort))) { alive(); await pause(5); }
    const client = new EtcdClient({ endpoints: [`127.0.0.1:${clientPort}`], callTimeoutMs: 2_000 });
    try {
      for (;;) {
        try {
          await client.put("/bench/startup", "1");
          return performance.now() - t0;
        } catch {
          alive();
          await pause(5);
        }
      }
    } finally {
      client.close();
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function startupPhase(name: string, spec: TargetSpec, s: Settings): Promise<MetricRow[]> {
  const times: number[] = [];
  for (let i = 0; i < s.starts; i++) times.push(await startupMs(spec));
  console.error(`${name}: startup to first put ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
  times.sort((a, b) => a - b);
  return [plainRow(name, "startup_to_ready_median", round(times[Math.floor(times.length / 2)]!, 1), "ms", "lower")];
}

/** withTarget starts a fresh instance of `spec` through harness/targets, runs `body`, and stops it. */
async function withTarget<T>(spec: TargetSpec, body: (t: Target) => Promise<T>): Promise<T> {
  const slot = makeTarget(spec);
  if (slot.target === undefined) throw new Error(slot.reason ?? "not available");
  try {
    await slot.target.start();
    return await body(slot.target);
  } finally {
    await slot.target.stop();
  }
}

interface TargetOutcome {
  readonly name: string;
  readonly available: boolean;
  readonly reason?: string;
  readonly version?: string;
}

async function benchTarget(spec: TargetSpec, s: Settings, rows: MetricRow[]): Promise<TargetOutcome> {
  const name = specName(spec);
  if (spec.kind === "endpoints" || (spec.kind === "etcd" && spec.members !== 1)) {
    return { name, available: false, reason: "the server bench starts its own single member (etcd or etcd-ts targets only)" };
  }
  try {
    let version = "";
    rows.push(...await withTarget(spec, async (t) => {
      version = t.version();
      return loadPhase(name, t, s);
    }));
    rows.push(...await withTarget(spec, (t) => rangePhase(name, t, s)));
    rows.push(...await startupPhase(name, spec, s));
    return { name, available: true, version };
  } catch (err) {
    console.error(`target ${name}: not measured — ${String(err)}`);
    return { name, available: false, reason: String(err).slice(0, 400) };
  }
}

// ---------------------------------------------------------------- ratios, CSV, table

interface RatioRow {
  metric: string;
  unit: string;
  better: string;
  target: string;
  value: number;
  etcd_value: number | "";
  /** target / etcd; "" when etcd was not measured. */
  ratio: number | "";
}

export function ratioRows(rows: readonly MetricRow[]): RatioRow[] {
  const base = new Map(rows.filter((r) => r.target === BASELINE).map((r) => [r.metric, r.value]));
  return rows.filter((r) => r.target !== BASELINE).map((r) => {
    const e = base.get(r.metric);
    return {
      metric: r.metric, unit: r.unit, better: r.better, target: r.target, value: r.value,
      etcd_value: e ?? "", ratio: e !== undefined && e > 0 ? round(r.value / e, 3) : "",
    };
  });
}

function printTables(rows: readonly MetricRow[], ratios: readonly RatioRow[]): void {
  const targets = [...new Set(rows.map((r) => r.target))];
  const others = targets.filter((t) => t !== BASELINE);
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const value = (t: string, m: string): string => String(rows.find((r) => r.target === t && r.metric === m)?.value ?? "–");
  const ratio = (t: string, m: string): string => String(ratios.find((r) => r.target === t && r.metric === m)?.ratio ?? "–");
  const head = ["metric", "unit", ...targets, ...others.map((t) => `${t}/${BASELINE}`)];
  const body = metrics.map((m) => [m, rows.find((r) => r.metric === m)!.unit, ...targets.map((t) => value(t, m)), ...others.map((t) => ratio(t, m) || "–")]);
  printAligned([head, ...body]);
  console.log("");
  const load = rows.filter((r) => r.metric.includes("_throughput_"));
  printAligned([
    ["target", "load", "errors", "generator cores", "generator µs/op", "busiest generator thread", "server cores"],
    ...load.map((r) => [r.target, r.metric.replace("_throughput", ""), String(r.errors), String(r.generator_cores), String(r.generator_us_per_op), String(r.generator_max_thread_busy), String(r.server_cores)]),
  ]);
}

function printAligned(cells: readonly (readonly string[])[]): void {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
  for (const row of cells) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}

const METRIC_COLUMNS: readonly (keyof MetricRow)[] = [
  "target", "metric", "clients", "value", "unit", "better", "p50_ms", "p99_ms", "errors", "errors_by_code",
  "generator_cores", "generator_us_per_op", "generator_max_thread_busy", "server_cores",
];
const RATIO_COLUMNS: readonly (keyof RatioRow)[] = ["metric", "unit", "better", "target", "value", "etcd_value", "ratio"];

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s = settings(args);
  const specs = (args.get("targets") ?? "etcd-ts:concurrent,etcd").split(",").map(parseTargetSpec);
  const dir = runDir("server", args.get("results"));
  const startedAt = new Date().toISOString(), loadBefore = loadavg();
  const rows: MetricRow[] = [];
  const outcomes: TargetOutcome[] = [];
  for (const spec of specs) outcomes.push(await benchTarget(spec, s, rows));
  const ratios = ratioRows(rows);
  writeFileSync(join(dir, "server.csv"), stringify(rows, { header: true, columns: METRIC_COLUMNS as string[] }));
  writeFileSync(join(dir, "ratios.csv"), stringify(ratios, { header: true, columns: RATIO_COLUMNS as string[] }));
  const env = {
    ...machineEnv(), experiment: "server", startedAt, args: argv, settings: s, targets: outcomes,
    loadAverageAtStart: loadBefore.map((v) => round(v)),
    notes: [
      `load from ${s.workers} worker threads of the bench process (one gRPC connection each); generator_cores is the bench process's CPU over each setting, generator_max_thread_busy the busiest worker's event-loop utilisation (near 1 = generator-bound).`,
      "ratio = target / etcd from the same run; for throughput higher is better, for ms and MiB lower is better.",
    ],
  };
  writeFileSync(join(dir, "env.json"), JSON.stringify(env, null, 2) + "\n");
  printTables(rows, ratios);
  for (const o of outcomes) if (!o.available) console.log(`${o.name}: not measured — ${o.reason ?? ""}`);
  return dir;
}
