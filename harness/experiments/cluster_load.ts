// Closed-loop load for the cluster benchmark from worker threads (one JS event loop is not the ceiling: grpc-js
// does ~10–12k unary calls/s per thread). Each in-flight slot is pinned to one member's endpoint, as etcd's
// benchmark tool pins its clients to --endpoints round-robin; every worker keeps one EtcdClient (one HTTP/2
// connection) per endpoint. A job runs a warm-up, then counts the ops that complete inside its measured window.
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { isMainThread, workerData } from "node:worker_threads";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import { setTimeout as pause } from "node:timers/promises";
import { type JobResult, type LoadSummary, LoadThreads, serveJobs, summarize } from "./load_threads.js";

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
async function runJob(clients: readonly EtcdClient[], job: LoadJob, worker: number): Promise<JobResult> {
  let state: "warm" | "measure" | "stopped" = "warm";
  let openedAt = 0,
    closedAt = 0;
  const lat: number[] = [];
  const errorsByCode: Record<string, number> = {};
  let errors = 0,
    allOps = 0;
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
        allOps++;
      }
    }),
  );
  await clock;
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

function workerMain(init: WorkerInit): void {
  const held = new Map<string, EtcdClient>();
  const clientOf = (ep: string): EtcdClient => {
    let c = held.get(ep);
    if (c === undefined) {
      c = new EtcdClient({ endpoints: [ep], callTimeoutMs: 30_000 });
      held.set(ep, c);
    }
    return c;
  };
  serveJobs<LoadJob>(
    async (job) => {
      const clients = job.endpoints.map(clientOf);
      if (job.kind !== "connect") return runJob(clients, job, init.index);
      await Promise.all(clients.map((c) => c.status()));
      return { ops: 0, allOps: 0, errors: 0, errorsByCode: {}, windowS: 0, latenciesMs: new Float64Array(0), busy: 0 };
    },
    () => {
      for (const c of held.values()) c.close();
    },
  );
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.clusterLoadWorker === true) {
  workerMain(workerData as WorkerInit);
}

export type LoadStats = LoadSummary;

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
  private constructor(private readonly threads: LoadThreads<LoadJob>) {}

  static async open(count: number): Promise<ClusterLoadPool> {
    const file = fileURLToPath(import.meta.url);
    return new ClusterLoadPool(
      await LoadThreads.open<LoadJob>(
        file,
        count,
        (index) => ({ clusterLoadWorker: true, index }) satisfies WorkerInit,
      ),
    );
  }

  /** connect opens every worker's connections to `endpoints` before anything is timed. */
  async connect(endpoints: readonly string[]): Promise<void> {
    const job: LoadJob = { kind: "connect", endpoints, slotEndpoints: [], warmupS: 0, seconds: 0, valueBytes: 0 };
    await Promise.all(Array.from({ length: this.threads.size }, (_, i) => this.threads.send(i, job)));
  }

  /** timed runs `slots` closed loops spread round-robin over `endpoints` and merges the workers' results. */
  async timed(
    kind: Exclude<LoadKind, "connect">,
    endpoints: readonly string[],
    slots: number,
    s: { warmupS: number; seconds: number; valueBytes: number },
  ): Promise<LoadStats> {
    const plan = slotPlan(slots, this.threads.size, endpoints.length);
    const results = await Promise.all(
      plan.map((slotEndpoints, i) => this.threads.send(i, { kind, endpoints, slotEndpoints, ...s })),
    );
    return summarize(results);
  }

  close(): Promise<void> {
    return this.threads.close();
  }
}
