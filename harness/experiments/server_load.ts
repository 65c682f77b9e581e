// The Node load generator of the server benchmark: worker threads of the bench process, one EtcdClient (one
// HTTP/2 connection) per thread and server, running closed loops of puts or single-key gets with a given number
// in flight, or preloading keys for the range phase. LoadPool hands each thread its share of a setting and sums
// what they measured: throughput, latency percentiles, errors by code, the generator's and the server's CPU per op
// (so a generator limit is visible).
import { performance } from "node:perf_hooks";
import { setTimeout as pause } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { isMainThread, workerData } from "node:worker_threads";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import { type JobResult, type LoadSummary, LoadThreads, serveJobs, summarize } from "./load_threads.js";
import { cpuSeconds, split } from "./server_process.js";
import type { Server } from "./server_start.js";

const PUT_PREFIX = "/bench/put/";
export const GET_KEY = "/bench/get/key";
export const RANGE_PREFIX = "/bench/range/";

export type JobKind = "connect" | "put" | "get-linearizable" | "get-serializable" | "preload";

interface Job {
  readonly kind: JobKind;
  /** The server to load; a worker keeps one client (one HTTP/2 connection) per server. */
  readonly endpoints: readonly string[];
  readonly slots: number;
  readonly warmupS: number;
  readonly seconds: number;
  readonly valueBytes: number;
  /** preload: this worker writes keys [from, to) under RANGE_PREFIX. */
  readonly from: number;
  readonly to: number;
}

interface WorkerInit {
  readonly serverBenchWorker: true;
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
    case "connect":
      return () => Promise.resolve();
  }
}

async function runPreload(client: EtcdClient, job: Job, index: number): Promise<JobResult> {
  let next = job.from;
  const op = opFor(client, job, index, 0);
  await Promise.all(
    Array.from({ length: job.slots }, async () => {
      while (next < job.to) await op(next++);
    }),
  );
  return {
    ops: job.to - job.from,
    allOps: job.to - job.from,
    errors: 0,
    errorsByCode: {},
    windowS: 0,
    latenciesMs: new Float64Array(0),
    busy: 0,
  };
}

/** Window is when a timed job measures: open after the warm-up, closed after its seconds and enough ops. */
class Window {
  state: "warm" | "measure" | "stopped" = "warm";
  openedAt = 0;
  closedAt = 0;
  private firstDone = 0;
  private settled = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly slots: number) {}

  /** done is called once per completed op (success or error) of `slot`'s `i`-th op. */
  done(i: number): void {
    if (i === 0) this.firstDone++;
    if (this.state === "measure") this.settled++;
    this.wake?.();
  }

  private until(cond: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      if (cond()) return resolve();
      this.wake = () => {
        if (cond()) {
          this.wake = undefined;
          resolve();
        }
      };
    });
  }

  /**
   * drive opens the window once the warm-up time has passed and every slot has had an answer (so a burst of
   * first requests is not measured), and closes it once `seconds` have passed and at least one op per slot
   * completed inside it (so a short window at high latency still measures something).
   */
  async drive(warmupS: number, seconds: number, onOpen: () => void): Promise<void> {
    await Promise.all([pause(warmupS * 1000), this.until(() => this.firstDone >= this.slots)]);
    this.state = "measure";
    this.openedAt = performance.now();
    onOpen();
    await Promise.all([pause(seconds * 1000), this.until(() => this.settled >= this.slots)]);
    this.state = "stopped";
    this.closedAt = performance.now();
  }
}

/** runTimed runs `slots` closed loops; counts ops completing inside the Window and their latencies. */
async function runTimed(client: EtcdClient, job: Job, index: number): Promise<JobResult> {
  const win = new Window(job.slots);
  const lat: number[] = [];
  const errorsByCode: Record<string, number> = {};
  let errors = 0,
    allOps = 0;
  let elu0 = performance.eventLoopUtilization();
  const driving = win.drive(job.warmupS, job.seconds, () => (elu0 = performance.eventLoopUtilization()));
  await Promise.all(
    Array.from({ length: job.slots }, async (_, slot) => {
      const op = opFor(client, job, index, slot);
      for (let i = 0; win.state !== "stopped"; i++) {
        const start = performance.now();
        try {
          await op(i);
          if (win.state === "measure") lat.push(performance.now() - start);
        } catch (err) {
          if (win.state === "measure") {
            errors++;
            const code = errorCode(err);
            errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
          }
        }
        win.done(i);
        allOps++;
      }
    }),
  );
  await driving;
  const busy = performance.eventLoopUtilization(elu0).utilization;
  const windowS = (win.closedAt - win.openedAt) / 1000;
  return { ops: lat.length, allOps, errors, errorsByCode, windowS, latenciesMs: Float64Array.from(lat), busy };
}

/** clientFor returns the worker's connected client for `endpoints` (one per server, kept across jobs). */
async function clientFor(held: Map<string, EtcdClient>, endpoints: readonly string[]): Promise<EtcdClient> {
  const key = endpoints.join(",");
  const have = held.get(key);
  if (have !== undefined) return have;
  const client = new EtcdClient({ endpoints, callTimeoutMs: 60_000 });
  held.set(key, client);
  await client.status(); // connected before the first timed op
  return client;
}

function workerMain(init: WorkerInit): void {
  const held = new Map<string, EtcdClient>();
  serveJobs<Job>(
    async (job) => {
      const client = await clientFor(held, job.endpoints);
      return job.kind === "preload" || job.kind === "connect"
        ? runPreload(client, job, init.index)
        : runTimed(client, job, init.index);
    },
    () => {
      for (const c of held.values()) c.close();
    },
  );
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.serverBenchWorker === true) {
  workerMain(workerData as WorkerInit);
}

export interface LoadStats extends LoadSummary {
  /** Generator process CPU (all threads) / wall time of the setting, in cores. */
  readonly generatorCores: number;
  /** Generator CPU per completed op (warm-up and drain included), µs. */
  readonly generatorUsPerOp: number;
  readonly serverCores: number;
  /** Server CPU (all its threads) per completed op, µs: work per request, less sensitive to other load than ops/s. */
  readonly serverUsPerOp: number;
}

export class LoadPool {
  private constructor(private readonly threads: LoadThreads<Job>) {}

  static async open(count: number): Promise<LoadPool> {
    const file = fileURLToPath(import.meta.url);
    return new LoadPool(
      await LoadThreads.open<Job>(file, count, (index) => ({ serverBenchWorker: true, index }) satisfies WorkerInit),
    );
  }

  /** connect has every worker open its connection to `server` before anything is timed. */
  async connect(server: Server): Promise<void> {
    const job = {
      kind: "connect",
      endpoints: server.endpoints,
      slots: 0,
      warmupS: 0,
      seconds: 0,
      valueBytes: 0,
      from: 0,
      to: 0,
    } as const;
    await Promise.all(Array.from({ length: this.threads.size }, (_, i) => this.threads.send(i, job)));
  }

  async preload(server: Server, keys: number, valueBytes: number, slotsPerWorker: number): Promise<void> {
    const per = Math.ceil(keys / this.threads.size);
    await Promise.all(
      Array.from({ length: this.threads.size }, (_, i) =>
        this.threads.send(i, {
          kind: "preload",
          endpoints: server.endpoints,
          slots: slotsPerWorker,
          warmupS: 0,
          seconds: 0,
          valueBytes,
          from: i * per,
          to: Math.min(keys, (i + 1) * per),
        }),
      ),
    );
  }

  async timed(
    server: Server,
    kind: JobKind,
    slots: number,
    s: { warmupS: number; seconds: number; valueBytes: number },
  ): Promise<LoadStats> {
    const shares = split(slots, this.threads.size);
    const cpu0 = process.cpuUsage(),
      srv0 = cpuSeconds(server.pid),
      t0 = performance.now();
    const job = { kind, endpoints: server.endpoints, ...s, from: 0, to: 0 };
    const results = await Promise.all(shares.map((n, i) => this.threads.send(i, { ...job, slots: n })));
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0),
      srvS = cpuSeconds(server.pid) - srv0;
    const sum = summarize(results);
    const genS = (cpu.user + cpu.system) / 1e6;
    return {
      ...sum,
      generatorCores: genS / wallS,
      generatorUsPerOp: (genS * 1e6) / sum.allOps,
      serverCores: srvS / wallS,
      serverUsPerOp: (srvS * 1e6) / sum.allOps,
    };
  }

  close(): Promise<void> {
    return this.threads.close();
  }
}
