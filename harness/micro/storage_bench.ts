// `npm run bench -- storage [--seconds S] [--keys N] [--value-bytes B] [--readers 0,1,2,4] [--writers W]
//  [--range-workers K] [--modes concurrent,blocking] [--reps N] [--controls spin,stream,process,keys-only,count-only]
//  [--results ROOT]`:
// the storage layer alone (KvStore over LMDB, no network, no Raft, no WAL).
// 1. put throughput: 64-put batches of 256 B values, one backend transaction per batch;
// 2. a full Range over N keys × B bytes ("LIST pods"), on the main thread and in a worker;
// 3. the seed's experiment at this layer: W writer loops committing 16-put batches while R loops run full
//    Ranges, in both read modes: commits/s, P99 commit latency, and concurrent/blocking ratios. Every cell starts
//    from its own copy of the freshly loaded store: a cell's writes (~10^5 lease revisions, never compacted)
//    would otherwise make the next cell's commits slower (an earlier version measured 0 readers on a fresh
//    store and 4 readers after three cells' history: p50 commit 0.35 → 0.61 ms from history alone).
// With --reps N the mix cells run N rounds, interleaved (every cell once per round, each round starting one cell
// further along so no cell always runs first or after the same one, after two unrecorded warm-up cells), and the
// ratios are medians over the rounds and P99s of all rounds' commits pooled: a 4 s cell's P99 commit latency is a
// few hundred microseconds and moves by ±30% between runs on a quiet host, more than the effect measured.
// --controls adds, per round, concurrent-mode cells with no Range but one unrelated busy thread at the read
// workers' priority (nice READ_WORKER_NICENESS): `spin` does arithmetic only, `stream` copies a 100 MB buffer
// byte by byte in a loop (the memory traffic of a full Range, without LMDB, the read path or a transfer), and
// `process` spins like `spin` but in a separate process (no shared address space, GC or helper threads). They
// tell how much of the with-Ranges P99 any busy second core costs the committing thread on this machine.
// `keys-only` and `count-only` are Range-shape controls: the largest reader count, the same full scans, but
// responses without values / without kvs (a 50k LIST's ~100 MB of output becomes ~3 MB / none).
// Writes results/<timestamp>-storage/{put,range,mix,ratio,control}.csv (under ROOT with --results). The machine
// is shared: each mix row also says how much CPU other processes used meanwhile (foreign_cpu_s, from /proc/stat
// on Linux), so a row taken while the host was busy can be told from a quiet one (the `process` control's own
// child counts there too).
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setImmediate as yieldTurn } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { stringify } from "csv-stringify/sync";
import { build, type Histogram } from "hdr-histogram-js";

import { BACKEND_FILE, ReadMode } from "../../core/backend/backend.js";
import { READ_WORKER_NICENESS } from "../../core/backend/worker_pool.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import type { RangeRequest, WriteRequest } from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const PODS: RangeRequest = { key: enc("/registry/pods/"), rangeEnd: enc("/registry/pods0") };
const PUT_BATCH = 64;
const MIX_BATCH = 16;
const LEASE_KEYS = 1000;

function flag(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  const v = i >= 0 ? args[i + 1] : undefined;
  return v ?? dflt;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
const podKey = (i: number): Uint8Array => enc(`/registry/pods/default/pod-${String(i).padStart(6, "0")}`);

interface Ci {
  next(): number;
}

function counter(start: number): Ci {
  let n = start;
  return { next: () => ++n };
}

async function loadPods(store: KvStore, keys: number, valueBytes: number): Promise<void> {
  const ci = counter(store.consistentIndex());
  const value = new Uint8Array(valueBytes).fill(0x61);
  for (let i = 0; i < keys; i += 1000) {
    const reqs: WriteRequest[] = [];
    for (let j = i; j < Math.min(keys, i + 1000); j++) reqs.push({ put: { key: podKey(j), value } });
    await store.write(reqs, ci.next());
  }
}

async function putThroughput(dir: string, seconds: number): Promise<Record<string, number>> {
  const store = KvStore.open(dir, { readWorkers: 0 });
  const ci = counter(store.consistentIndex());
  const value = new Uint8Array(256).fill(0x62);
  let puts = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) {
    const reqs: WriteRequest[] = [];
    for (let j = 0; j < PUT_BATCH; j++) reqs.push({ put: { key: enc(`/registry/events/e-${puts + j}`), value } });
    await store.write(reqs, ci.next());
    puts += PUT_BATCH;
  }
  const elapsed = (performance.now() - start) / 1000;
  await store.close();
  return {
    batch_puts: PUT_BATCH,
    value_bytes: 256,
    seconds: round(elapsed, 2),
    puts,
    puts_per_s: Math.round(puts / elapsed),
  };
}

async function fullRange(
  dir: string,
  keys: number,
  valueBytes: number,
  reps: number,
): Promise<Record<string, number | string>[]> {
  const rows: Record<string, number | string>[] = [];
  const store = KvStore.open(dir, { readWorkers: 1 });
  (await store.range(PODS, { worker: true })).release?.(); // start the worker and warm its pages
  for (const where of ["main", "worker"] as const) {
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const r = await store.range(PODS, { worker: where === "worker" });
      ms.push(performance.now() - t0);
      if (r.count !== keys) throw new Error(`full range returned count ${r.count}, loaded ${keys}`);
      bytes = r.kvs.reduce((n, kv) => n + kv.length, 0);
      r.release?.();
    }
    ms.sort((a, b) => a - b);
    const median = ms[Math.floor(ms.length / 2)] as number;
    rows.push({
      where,
      keys,
      value_bytes: valueBytes,
      reps,
      median_ms: round(median),
      min_ms: round(ms[0] as number),
      keys_per_s: Math.round(keys / (median / 1000)),
      mib: round(bytes / 2 ** 20),
    });
  }
  await store.close();
  return rows;
}

/** CPU seconds the whole host has been busy (user+nice+system+irq+softirq+steal), or NaN off Linux. */
function hostBusySeconds(): number {
  try {
    const fields = (readFileSync("/proc/stat", "latin1").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ
  } catch {
    return Number.NaN;
  }
}

interface MixRow {
  readonly rep: number;
  readonly mode: ReadMode;
  readonly readers: number;
  /** "" or the --controls cell: an unrelated busy thread beside the writers, or a Range shape. */
  readonly control: string;
  readonly range_workers: string;
  readonly writers: number;
  readonly seconds: number;
  readonly commits_per_s: number;
  readonly puts_per_s: number;
  readonly p50_commit_ms: number;
  readonly p99_commit_ms: number;
  readonly max_commit_ms: number;
  readonly ranges_per_s: number;
  /** CPU seconds this process used during the cell, and what the rest of the host used meanwhile. */
  readonly own_cpu_s: number;
  readonly foreign_cpu_s: number;
}

/** Controls that are Ranges of another shape, not a busy thread. */
const SHAPE_CONTROLS: Readonly<Record<string, Partial<RangeRequest>>> = {
  "keys-only": { keysOnly: true },
  "count-only": { countOnly: true },
};

// The control threads: plain CommonJS, lowered to the read workers' nice value the same way (Linux).
const CONTROL_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
if (workerData.niceness > 0 && process.platform === "linux") {
  const tid = Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop());
  require("node:os").setPriority(tid, workerData.niceness);
}
const stop = new Int32Array(workerData.stop);
let sink = 0;
if (workerData.kind === "spin") {
  while (Atomics.load(stop, 0) === 0) for (let i = 0; i < 1e6; i++) sink = (sink * 31 + i) | 0;
} else {
  const src = new Uint8Array(100 * 1024 * 1024).fill(7);
  const dst = new Uint8Array(src.length);
  while (Atomics.load(stop, 0) === 0) {
    for (let i = 0; i < src.length; i++) dst[i] = src[i];
    sink += dst[sink & 0xffff];
  }
}
parentPort.postMessage(sink);
`;

// The `process` control: arithmetic in a loop, in a child process (lowered to the same nice value by the parent).
const PROCESS_SPIN_SOURCE = "let sink = 0; for (;;) for (let i = 0; i < 1e6; i++) sink = (sink * 31 + i) | 0;";

function startProcessControl(): () => Promise<void> {
  const child = spawn(process.execPath, ["-e", PROCESS_SPIN_SOURCE], { stdio: "ignore" });
  if (child.pid !== undefined && READ_WORKER_NICENESS > 0) setPriority(child.pid, READ_WORKER_NICENESS);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return async () => {
    child.kill("SIGKILL");
    await exited;
  };
}

function startControl(kind: string): () => Promise<void> {
  if (kind === "process") return startProcessControl();
  if (kind !== "spin" && kind !== "stream")
    throw new Error(`--controls: unknown control ${kind} (spin, stream, process)`);
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(CONTROL_SOURCE, { eval: true, workerData: { kind, stop, niceness: READ_WORKER_NICENESS } });
  const done = new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
  });
  return async () => {
    Atomics.store(new Int32Array(stop), 0, 1);
    await done;
    await worker.terminate();
  };
}

const newHistogram = (): Histogram =>
  build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
/** A mix cell's key across rounds (its commit latencies are also pooled over the rounds under it). */
const cellKey = (mode: ReadMode, readers: number, control: string): string => `${mode}/${readers}/${control}`;

async function mixCell(
  rep: number,
  dir: string,
  mode: ReadMode,
  readers: number,
  writers: number,
  seconds: number,
  rangeWorkers: number | undefined,
  control: string,
  pooled: Map<string, Histogram>,
): Promise<MixRow> {
  // Blocking mode gets one worker per Range, as etcd 3.3 ran each Range on its own goroutine: a Range holds
  // the read lock only while it runs, never while queued for a worker (that would overstate the blocking).
  const workers = mode === ReadMode.Blocking ? Math.max(1, readers) : rangeWorkers;
  const store = KvStore.open(dir, { readMode: mode, ...(workers !== undefined ? { readWorkers: workers } : {}) });
  (await store.range(PODS, { worker: true })).release?.(); // spawn a worker before measuring
  const ci = counter(store.consistentIndex());
  const hist = newHistogram();
  const value = new Uint8Array(256).fill(0x63);
  let commits = 0;
  let ranges = 0;
  let running = true;
  let seq = 0;
  const writer = async (): Promise<void> => {
    while (running) {
      const reqs: WriteRequest[] = [];
      for (let j = 0; j < MIX_BATCH; j++)
        reqs.push({ put: { key: enc(`/registry/leases/node-${seq++ % LEASE_KEYS}`), value } });
      const t0 = performance.now();
      await store.write(reqs, ci.next());
      hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      commits += 1;
      await yieldTurn(); // one commit per loop turn per writer, as an applier fed by Raft
    }
  };
  const shape = SHAPE_CONTROLS[control];
  const rangeReq: RangeRequest = { ...PODS, ...shape };
  const reader = async (): Promise<void> => {
    while (running) {
      // Released at once, as the API releases a LIST once its response is on the socket (read_view.ts).
      (await store.range(rangeReq, { worker: true })).release?.();
      ranges += 1;
    }
  };
  const stopControl = control === "" || shape !== undefined ? undefined : startControl(control);
  const start = performance.now();
  const busy0 = hostBusySeconds();
  const cpu0 = process.cpuUsage();
  const loops = [...Array.from({ length: writers }, writer), ...Array.from({ length: readers }, reader)];
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const ownCpuS = (cpu.user + cpu.system) / 1e6;
  const foreignCpuS = hostBusySeconds() - busy0 - ownCpuS;
  await Promise.all(loops);
  await stopControl?.();
  await store.close();
  const row: MixRow = {
    rep,
    mode,
    readers,
    control,
    range_workers: workers === undefined ? "default" : String(workers),
    writers,
    seconds: round(elapsed, 2),
    commits_per_s: Math.round(commits / elapsed),
    puts_per_s: Math.round((commits * MIX_BATCH) / elapsed),
    p50_commit_ms: round(hist.getValueAtPercentile(50) / 1000, 3),
    p99_commit_ms: round(hist.getValueAtPercentile(99) / 1000, 3),
    max_commit_ms: round(hist.maxValue / 1000, 3),
    ranges_per_s: round(ranges / elapsed, 2),
    own_cpu_s: round(ownCpuS, 2),
    foreign_cpu_s: round(Math.max(0, foreignCpuS), 2),
  };
  const key = cellKey(mode, readers, control);
  if (!pooled.has(key)) pooled.set(key, newHistogram());
  pooled.get(key)?.add(hist);
  hist.destroy();
  return row;
}

export async function run(args: string[]): Promise<string> {
  const seconds = Number(flag(args, "--seconds", "4"));
  const keys = Number(flag(args, "--keys", "50000"));
  const valueBytes = Number(flag(args, "--value-bytes", "2048"));
  const writers = Number(flag(args, "--writers", "8"));
  const readerCounts = flag(args, "--readers", "0,1,2,4").split(",").map(Number);
  // Worker threads serving the Ranges; default: the store's own (cores − 1, at least 1).
  const rangeWorkersFlag = flag(args, "--range-workers", "");
  const rangeWorkers = rangeWorkersFlag === "" ? undefined : Number(rangeWorkersFlag);
  const work = mkdtempSync(join(tmpdir(), "storage-bench-"));
  try {
    const put = await putThroughput(join(work, "put"), seconds);
    console.log(`put: ${put.puts_per_s} puts/s (batches of ${PUT_BATCH} × 256 B)`);
    mkdirSync(join(work, "pods"));
    const loader = KvStore.open(join(work, "pods"), { readWorkers: 0 });
    await loadPods(loader, keys, valueBytes);
    await loader.close();
    const range = await fullRange(join(work, "pods"), keys, valueBytes, 5);
    for (const r of range)
      console.log(`full range (${r.where}): ${r.median_ms} ms median, ${r.keys_per_s} keys/s, ${r.mib} MiB`);
    const mix: MixRow[] = [];
    const modes = flag(args, "--modes", "concurrent,blocking").split(",") as ReadMode[];
    const reps = Number(flag(args, "--reps", "3"));
    const controls = flag(args, "--controls", "")
      .split(",")
      .filter((c) => c !== "");
    const pooled = new Map<string, Histogram>();
    const pooledP99 = (mode: ReadMode, readers: number, control = ""): number => {
      const h = pooled.get(cellKey(mode, readers, control));
      return h === undefined ? Number.NaN : h.getValueAtPercentile(99) / 1000;
    };
    // Each cell on its own copy of the loaded store (see the top of this file).
    const runCell = async (
      rep: number,
      mode: ReadMode,
      readers: number,
      control = "",
      into = pooled,
    ): Promise<MixRow> => {
      const cell = join(work, control === "" ? `cell-${mode}-${readers}` : `cell-control-${control}`);
      mkdirSync(cell);
      copyFileSync(join(work, "pods", BACKEND_FILE), join(cell, BACKEND_FILE));
      try {
        return await mixCell(rep, cell, mode, readers, writers, seconds, rangeWorkers, control, into);
      } finally {
        rmSync(cell, { recursive: true, force: true });
      }
    };
    type Cell = { mode: ReadMode; readers: number; control: string };
    const cells: Cell[] = [
      ...modes.flatMap((mode) => readerCounts.map((readers) => ({ mode, readers, control: "" }))),
      ...controls.map((control) => ({
        mode: ReadMode.Concurrent,
        readers: control in SHAPE_CONTROLS ? Math.max(...readerCounts) : 0,
        control,
      })),
    ];
    // Two unrecorded cells first, with no Range and with the most readers: a process's first cells of each kind
    // ran on cold code and a young heap. Without them the first round's 4-Range cell had the highest or second
    // highest P99 of its run in each of the 7 runs of 2026-12-04 21:05–23:00 (up to 1.49 ms; later rounds 0.38–1.19,
    // median 0.46), and with only a no-Range warm-up it still did (1.43 ms; later rounds 0.38–0.63).
    const warmUp = new Map<string, Histogram>();
    for (const readers of new Set([0, Math.max(...readerCounts)]))
      await runCell(0, ReadMode.Concurrent, readers, "", warmUp);
    for (const h of warmUp.values()) h.destroy();
    for (let rep = 1; rep <= reps; rep++) {
      // Each round starts one cell further along the list, so no cell always runs first or after the same one.
      const shift = (rep - 1) % cells.length;
      for (const { mode, readers, control } of [...cells.slice(shift), ...cells.slice(0, shift)]) {
        const row = await runCell(rep, mode, readers, control);
        mix.push(row);
        const round = reps > 1 ? `rep ${rep} ` : "";
        if (control === "") {
          console.log(
            `${round}${mode} readers=${readers}: ${row.puts_per_s} puts/s, p99 commit ${row.p99_commit_ms} ms, ${row.ranges_per_s} ranges/s (other processes: ${row.foreign_cpu_s} CPU-s)`,
          );
        } else {
          const what = readers > 0 ? `${readers} ${control} Ranges` : "no Range";
          console.log(
            `${round}control ${control} (${what}): ${row.puts_per_s} puts/s, p99 commit ${row.p99_commit_ms} ms, ${row.ranges_per_s} ranges/s`,
          );
        }
      }
    }
    const median = (xs: number[]): number => {
      const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
      if (v.length === 0) return Number.NaN;
      const mid = Math.floor(v.length / 2);
      return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
    };
    const cellOf = (rep: number, mode: ReadMode, readers: number, control = ""): MixRow | undefined =>
      mix.find((r) => r.rep === rep && r.mode === mode && r.readers === readers && r.control === control);
    /** The median over the rounds of a per-round figure (NaN where a round lacks a cell). */
    const overRounds = (f: (rep: number) => number): number => median(Array.from({ length: reps }, (_, i) => f(i + 1)));
    const perRep = (
      readers: number,
      f: (c: MixRow, b: MixRow | undefined, idle: MixRow | undefined) => number,
    ): number =>
      overRounds((rep) => {
        const c = cellOf(rep, ReadMode.Concurrent, readers);
        return c === undefined
          ? Number.NaN
          : f(c, cellOf(rep, ReadMode.Blocking, readers), cellOf(rep, ReadMode.Concurrent, 0));
      });
    const ratios = readerCounts.map((readers) => ({
      readers,
      reps,
      median_p99_concurrent_ms: round(
        median(
          mix
            .filter((r) => r.mode === ReadMode.Concurrent && r.readers === readers && r.control === "")
            .map((r) => r.p99_commit_ms),
        ),
        3,
      ),
      median_p99_blocking_ms: round(
        median(mix.filter((r) => r.mode === ReadMode.Blocking && r.readers === readers).map((r) => r.p99_commit_ms)),
        3,
      ),
      throughput_concurrent_over_blocking: round(
        perRep(readers, (c, b) => (b === undefined ? Number.NaN : c.puts_per_s / b.puts_per_s)),
        2,
      ),
      p99_concurrent_over_blocking: round(
        perRep(readers, (c, b) => (b === undefined ? Number.NaN : c.p99_commit_ms / b.p99_commit_ms)),
        3,
      ),
      // The issue's target: concurrent-mode P99 with R long Ranges over the P99 with none (≤ 1.2 at R = 4),
      // as the median of the per-round ratios (each round's cells ran back to back).
      p99_concurrent_over_no_reader: round(
        perRep(readers, (c, _b, idle) => (idle === undefined ? Number.NaN : c.p99_commit_ms / idle.p99_commit_ms)),
        2,
      ),
      // Every round's ratio, in round order: one bad round moves a 5-round median less than it moves the pooled P99.
      per_round_p99_over_no_reader: Array.from({ length: reps }, (_, i) => {
        const c = cellOf(i + 1, ReadMode.Concurrent, readers);
        const idle = cellOf(i + 1, ReadMode.Concurrent, 0);
        return c === undefined || idle === undefined ? "" : round(c.p99_commit_ms / idle.p99_commit_ms, 2).toString();
      }).join(" "),
      // The same from every round's commits pooled (one P99 over all rounds' latencies): steadier than a median
      // of per-round P99s when each round's tail holds a few dozen commits.
      pooled_p99_concurrent_ms: round(pooledP99(ReadMode.Concurrent, readers), 3),
      pooled_p99_over_no_reader: round(pooledP99(ReadMode.Concurrent, readers) / pooledP99(ReadMode.Concurrent, 0), 2),
    }));
    const controlRatios = controls.map((control) => ({
      control,
      reps,
      median_p99_ms: round(median(mix.filter((r) => r.control === control).map((r) => r.p99_commit_ms)), 3),
      pooled_p99_over_no_reader: round(
        pooledP99(ReadMode.Concurrent, control in SHAPE_CONTROLS ? Math.max(...readerCounts) : 0, control) /
          pooledP99(ReadMode.Concurrent, 0),
        2,
      ),
      p99_over_no_reader: round(
        overRounds((rep) => {
          const c = mix.find((r) => r.rep === rep && r.control === control);
          const idle = cellOf(rep, ReadMode.Concurrent, 0);
          return c === undefined || idle === undefined ? Number.NaN : c.p99_commit_ms / idle.p99_commit_ms;
        }),
        2,
      ),
    }));
    for (const h of pooled.values()) h.destroy();
    for (const c of controlRatios)
      console.log(
        `control ${c.control}: p99 ${c.median_p99_ms} ms, over no-reader ×${c.p99_over_no_reader} (pooled ×${c.pooled_p99_over_no_reader})`,
      );
    for (const r of ratios) {
      console.log(
        `ratio readers=${r.readers}${reps > 1 ? ` (median of ${reps} rounds)` : ""}: throughput ×${r.throughput_concurrent_over_blocking}, p99 ×${r.p99_concurrent_over_blocking}, concurrent p99 ${r.median_p99_concurrent_ms} ms, over no-reader ×${r.p99_concurrent_over_no_reader} (rounds: ${r.per_round_p99_over_no_reader}; pooled over rounds: p99 ${r.pooled_p99_concurrent_ms} ms, ×${r.pooled_p99_over_no_reader})`,
      );
    }
    const stamp = new Date()
      .toISOString()
      .replace(/[:.]/g, "-")
      .replace(/-\d{3}Z$/, "Z");
    const dir = join(resolve(flag(args, "--results", "results")), `${stamp}-storage`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "put.csv"), stringify([put], { header: true }));
    writeFileSync(join(dir, "range.csv"), stringify(range, { header: true }));
    writeFileSync(join(dir, "mix.csv"), stringify(mix, { header: true }));
    writeFileSync(join(dir, "ratio.csv"), stringify(ratios, { header: true }));
    if (controlRatios.length > 0) writeFileSync(join(dir, "control.csv"), stringify(controlRatios, { header: true }));
    return dir;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
