// Worker threads that carry a benchmark's load (server_load.ts, cluster_load.ts, security.ts): the main side
// opens the threads on a module that serves jobs, hands each thread a job and sums what the threads measured; the
// worker side answers each job with what it measured, its latencies transferred, not copied.
import { parentPort, Worker } from "node:worker_threads";
import { errorCode } from "../../core/client/index.js";
import { percentile } from "../stats.js";

/** What one thread measured in one job. */
export interface JobResult {
  /** Successful ops completed inside the measured window. */
  readonly ops: number;
  /** Every op completed by the job, warm-up and drain included (for CPU per op). */
  readonly allOps: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly windowS: number;
  /** Latency of each counted op, ms. */
  readonly latenciesMs: Float64Array;
  /** Event-loop utilisation of this thread over the measured window (1 = the thread never waited). */
  readonly busy: number;
}

/** What the threads measured in one setting, taken together. */
export interface LoadSummary {
  readonly throughputPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Successful ops counted inside the windows. */
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  /** Every op completed, warm-up and drain included; at least 1 (a divisor for CPU per op). */
  readonly allOps: number;
  /** Highest event-loop utilisation among the threads (near 1: the generator was the limit). */
  readonly generatorMaxThreadBusy: number;
}

export function summarize(results: readonly JobResult[]): LoadSummary {
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
    // A thread whose window never opened (no slot of its own) adds nothing.
    throughputPerS: results.reduce((a, r) => a + (r.windowS > 0 ? r.ops / r.windowS : 0), 0),
    p50Ms: percentile(all, 50),
    p99Ms: percentile(all, 99),
    ops: all.length,
    errors: results.reduce((a, r) => a + r.errors, 0),
    errorsByCode,
    allOps: Math.max(
      1,
      results.reduce((a, r) => a + r.allOps, 0),
    ),
    generatorMaxThreadBusy: Math.max(...results.map((r) => r.busy)),
  };
}

/** LoadThreads is the main side: `count` threads running `file`, each started with `init(index)` as workerData. */
export class LoadThreads<Job> {
  private constructor(private readonly workers: readonly Worker[]) {}

  static async open<Job>(file: string, count: number, init: (index: number) => object): Promise<LoadThreads<Job>> {
    const workers = Array.from({ length: count }, (_, index) => new Worker(file, { workerData: init(index) }));
    const threads = new LoadThreads<Job>(workers);
    try {
      await Promise.all(
        workers.map(
          (w, index) =>
            new Promise<void>((resolve, reject) => {
              w.once("message", (m) =>
                m === "ready" ? resolve() : reject(new Error(`worker ${index}: ${String(m)}`)),
              );
              w.once("error", reject);
            }),
        ),
      );
    } catch (err) {
      await threads.close();
      throw err;
    }
    return threads;
  }

  get size(): number {
    return this.workers.length;
  }

  /** send gives thread `index` one job and resolves what it measured. */
  send(index: number, job: Job): Promise<JobResult> {
    const w = this.workers[index];
    if (w === undefined) throw new Error(`no load thread ${index} of ${this.workers.length}`);
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

  async close(): Promise<void> {
    for (const w of this.workers) w.postMessage("close");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * serveJobs is the worker side: answers every job with `run(job)` (or the error and its code), and on "close"
 * calls `close` (to close the thread's clients) and stops listening.
 */
export function serveJobs<Job>(run: (job: Job) => Promise<JobResult>, close: () => void): void {
  const port = parentPort;
  if (port === null) return;
  port.on("message", (m: Job | "close") => {
    if (m === "close") {
      close();
      port.close();
      return;
    }
    run(m).then(
      (r) => port.postMessage({ result: r }, [r.latenciesMs.buffer as ArrayBuffer]),
      (err: unknown) => port.postMessage({ error: `${errorCode(err)}: ${String(err)}` }),
    );
  });
  port.postMessage("ready");
}
