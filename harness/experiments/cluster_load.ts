// Closed-loop load for the cluster benchmark from worker threads (one JS event loop is not the ceiling: grpc-js
// does ~10–12k unary calls/s per thread). Each in-flight slot is pinned to one member's endpoint, as etcd's
// benchmark tool pins its clients to --endpoints round-robin; every worker keeps one EtcdClient (one HTTP/2
// connection) per endpoint. A job runs a warm-up, then counts the ops that complete inside its measured window.
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import { setTimeout as pause } from "node:timers/promises";
import { percentile } from "../stats.js";

export type LoadKind = "put" | "get-linearizable" | "get-serializable" | "connect";

/** The key every get reads (written once before the reads). */
export const GET_KEY = "/cluster-bench/get/key";
const PUT_PREFIX = "/cluster-bench/put/";

export interface LoadJob {
  readonly kind: LoadKind;
  readonly endpoints: readonly string[];
  /** slotEndpoints[s] is the index into endpoints of this worker's slot s. */
  readonly slotEndpoints: readonly number[];
  readonly warmupS: number;
  readonly seconds: number;
  readonly valueBytes: number;
}

export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly windowS: number;
  readonly latenciesMs: Float64Array;
  /** Event-loop utilisation of the worker over the window (near 1: the generator was the limit). */
  readonly busy: number;
}

interface WorkerInit {
  readonly clusterLoadWorker: true;
  readonly index: number;
}

function opFor(client: EtcdClient, job: LoadJob, worker: number, slot: number): (i: number) => Promise<unknown> {
  const value = Buffer.alloc(job.valueBytes, "v");
  switch (job.kind) {
    case "put":
      return (i) => client.put(`${PUT_PREFIX}${worker}/${slot}/${i % 64}`, value);
    case "get-linearizable":
      return () => client.get(GET_KEY);
    case "get-serializable":
      return () => client.get(GET_KEY, { serializable: true });
    case "connect":
      return () => client.status();
  }
}

/** runJob drives every slot until the window closes; the window opens after warmupS and lasts `seconds`. */
async function runJob(clients: readonly EtcdClient[], job: LoadJob, worker: number): Promise<LoadResult> {
  let state: "warm" | "measure" | "stopped" = "warm";
  let openedAt = 0,
    closedAt = 0;
  const lat: number[] = [];
  const errorsByCode: Record<string, number> = {};
  let errors = 0;
  let elu0 = performance.eventLoopUtilization();
  const clock = (async () => {
    await pause(job.warmupS * 1000);
    state = "measure";
    openedAt = performance.now();
    elu0 = performance.eventLoopUtilization();
    await pause(job.seconds * 1000);
    state = "stopped";
    closedAt = performance.now();
  })();
  await Promise.all(
    job.slotEndpoints.map(async (ep, slot) => {
      const op = opFor(clients[ep]!, job, worker, slot);
      for (let i = 0; state !== "stopped"; i++) {
        const t0 = performance.now();
        try {
          await op(i);
          if (state === "measure") lat.push(performance.now() - t0);
        } catch (err) {
          if (state === "measure") {
            errors++;
            const code = errorCode(err);
            errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
          }
          await pause(5); // a failing member must not turn the slot into a busy loop
        }
      }
    }),
  );
  await clock;
  const busy = performance.eventLoopUtilization(elu0).utilization;
  return {
    ops: lat.length,
    errors,
    errorsByCode,
    windowS: (closedAt - openedAt) / 1000,
    latenciesMs: Float64Array.from(lat),
    busy,
  };
}

function workerMain(init: WorkerInit): void {
  const port = parentPort;
  if (port === null) return;
  const held = new Map<string, EtcdClient>();
  const clientOf = (ep: string): EtcdClient => {
    let c = held.get(ep);
    if (c === undefined) {
      c = new EtcdClient({ endpoints: [ep], callTimeoutMs: 30_000 });
      held.set(ep, c);
    }
    return c;
  };
  port.on("message", (job: LoadJob | "close") => {
    if (job === "close") {
      for (const c of held.values()) c.close();
      port.close();
      return;
    }
    const clients = job.endpoints.map(clientOf);
    const work =
      job.kind === "connect"
        ? Promise.all(clients.map((c) => c.status())).then(
            (): LoadResult => ({
              ops: 0,
              errors: 0,
              errorsByCode: {},
              windowS: 0,
              latenciesMs: new Float64Array(0),
              busy: 0,
            }),
          )
        : runJob(clients, job, init.index);
    work.then(
      (r) => port.postMessage({ result: r }, [r.latenciesMs.buffer as ArrayBuffer]),
      (err: unknown) => port.postMessage({ error: `${errorCode(err)}: ${String(err)}` }),
    );
  });
  port.postMessage("ready");
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.clusterLoadWorker === true) {
  workerMain(workerData as WorkerInit);
}

export interface LoadStats {
  readonly throughputPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly generatorMaxThreadBusy: number;
}

/** slotPlan spreads `slots` in-flight requests over `workers` threads and `endpoints` members round-robin. */
export function slotPlan(slots: number, workers: number, endpoints: number): number[][] {
  if (!(slots >= 1 && workers >= 1 && endpoints >= 1))
    throw new Error(`slotPlan needs ≥ 1 of each, got ${slots} slots, ${workers} workers, ${endpoints} endpoints`);
  const plan: number[][] = Array.from({ length: Math.min(workers, slots) }, () => []);
  for (let s = 0; s < slots; s++) plan[s % plan.length]!.push(s % endpoints);
  return plan;
}

/** ClusterLoadPool is the worker threads generating load; each job names the endpoints it loads. */
export class ClusterLoadPool {
  private readonly workers: Worker[] = [];

  static async open(count: number): Promise<ClusterLoadPool> {
    const pool = new ClusterLoadPool();
    const file = fileURLToPath(import.meta.url);
    await Promise.all(
      Array.from({ length: count }, (_, index) => {
        const w = new Worker(file, { workerData: { clusterLoadWorker: true, index } satisfies WorkerInit });
        pool.workers.push(w);
        return new Promise<void>((resolve, reject) => {
          w.once("message", (m) => (m === "ready" ? resolve() : reject(new Error(`worker ${index}: ${String(m)}`))));
          w.once("error", reject);
        });
      }),
    );
    return pool;
  }

  private send(w: Worker, job: LoadJob): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      w.once("error", onError);
      w.once("message", (m: { result?: LoadResult; error?: string }) => {
        w.off("error", onError);
        if (m.result !== undefined) resolve(m.result);
        else reject(new Error(`load worker failed: ${m.error ?? "?"}`));
      });
      w.postMessage(job);
    });
  }

  /** connect opens every worker's connections to `endpoints` before anything is timed. */
  async connect(endpoints: readonly string[]): Promise<void> {
    const job: LoadJob = { kind: "connect", endpoints, slotEndpoints: [], warmupS: 0, seconds: 0, valueBytes: 0 };
    await Promise.all(this.workers.map((w) => this.send(w, job)));
  }

  /** timed runs `slots` closed loops spread round-robin over `endpoints` and merges the workers' results. */
  async timed(
    kind: Exclude<LoadKind, "connect">,
    endpoints: readonly string[],
    slots: number,
    s: { warmupS: number; seconds: number; valueBytes: number },
  ): Promise<LoadStats> {
    const plan = slotPlan(slots, this.workers.length, endpoints.length);
    const results = await Promise.all(
      plan.map((slotEndpoints, i) => this.send(this.workers[i]!, { kind, endpoints, slotEndpoints, ...s })),
    );
    const all = new Float64Array(results.reduce((a, r) => a + r.latenciesMs.length, 0));
    let at = 0;
    for (const r of results) {
      all.set(r.latenciesMs, at);
      at += r.latenciesMs.length;
    }
    all.sort();
    const errorsByCode: Record<string, number> = {};
    for (const r of results)
      for (const [c, n] of Object.entries(r.errorsByCode)) errorsByCode[c] = (errorsByCode[c] ?? 0) + n;
    return {
      throughputPerS: results.reduce((a, r) => a + (r.windowS > 0 ? r.ops / r.windowS : 0), 0),
      p50Ms: percentile(all, 50),
      p99Ms: percentile(all, 99),
      ops: all.length,
      errors: results.reduce((a, r) => a + r.errors, 0),
      errorsByCode,
      generatorMaxThreadBusy: Math.max(...results.map((r) => r.busy)),
    };
  }

  async close(): Promise<void> {
    for (const w of this.workers) w.postMessage("close");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
