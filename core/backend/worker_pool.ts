// Worker threads that answer long reads from their own LMDB read transaction, so the main thread keeps
// committing while a 100 MB Range is scanned (docs/ARCHITECTURE.md, "The read paths"). Each worker opens the same
// environment, and before every task calls resetReadTxn(): without it an lmdb-js worker keeps reading the
// snapshot of its previous transaction and never sees newer commits (node-packages.md, lmdb gotcha).
//
// What keeps a worker from slowing the commits on the main thread (measured with harness/micro/storage_bench.ts):
// - Zero-copy scans: a worker's range() hands out views of lmdb's read buffer, which the next step reuses,
//   instead of a fresh copy of every value (a 50,000-key LIST made 100 MB of garbage per scan, and the GC
//   threads it kept busy took CPU from the main thread). Tasks copy what they keep (read_view.ts).
// - Short snapshots: a renewable scan (a Range, which filters by revision) moves to a fresh read snapshot every
//   READ_WORKER_RENEW_ENTRIES entries, so LMDB can keep reusing the pages commits free; with a snapshot pinned for
//   a whole 300 ms scan every commit appends fresh pages instead (idle read txns alone cost ~30% of commits/s).
// - Reused output slabs: a task's large result goes into a growable SharedArrayBuffer the worker lends and takes
//   back when the main thread releases the result (read_view.ts). With a fresh 100 MB buffer per LIST, page
//   faults and frees took over half of each Range's time, and every allocation set off a full GC in the worker
//   and the main thread, whose V8 helper threads (at the main thread's priority) preempted commits for a
//   scheduler tick. Each worker has READ_WORKER_SLAB_SLOTS slots; a slot's state lives in a shared Int32Array,
//   so a release is one atomic store seen at once, not a message queued behind the tasks already sent.
// - Low CPU priority: on Linux each worker thread raises its own nice value (setpriority on its thread id), so
//   when the cores are short the scheduler runs the main thread's commits first and long reads wait. A Range is
//   slower under a saturating write load; a commit is not slowed by Ranges.
import { Worker } from "node:worker_threads";

import type { ReadTask } from "./read_view.js";

/** Nice value of read workers (Linux; 0 leaves them at the main thread's priority). */
export const READ_WORKER_NICENESS = 19;
/** Entries a renewable scan reads per snapshot (read_view.ts, RangeSpan.renewable): ~1–5 ms of scanning. */
export const READ_WORKER_RENEW_ENTRIES = 1000;
/**
 * Output slabs per worker: results holding a slab may stay unreleased up to this many at a time; beyond, the
 * worker lends none (the task writes a resizable buffer and transfers it, as before slabs), so a consumer that
 * never releases costs speed, not unbounded memory. Released slabs are kept for reuse unless larger than
 * READ_WORKER_SLAB_KEEP_MAX_BYTES.
 */
export const READ_WORKER_SLAB_SLOTS = 4;
export const READ_WORKER_SLAB_KEEP_MAX_BYTES = 256 * 2 ** 20;
/**
 * A worker's young generation (V8's new space) at most, in MiB. A scan's garbage is short-lived views and entry
 * objects, so a small new space costs little extra scavenging; V8's default lets each worker's new space grow to
 * tens of MiB that stay resident while the worker sits idle.
 */
export const READ_WORKER_YOUNG_GEN_MB = 6;
/** A slot's state in the shared array: free (its slab, if any, is the worker's) or lent in a result. */
const SLOT_FREE = 0;
const SLOT_LENT = 1;
/** A new slab's first size and the address space it reserves to grow into (etcd's gRPC send limit, MaxInt32). */
const SLAB_FIRST_BYTES = 64 * 1024;
const SLAB_MAX_BYTES = 2 ** 31 - 1;

// Plain CommonJS run with `eval: true`: the worker cannot load TypeScript, so it gets the tasks as source text
// and resolves lmdb from this module's location. A result's top-level typed-array fields that own their whole
// ArrayBuffer are transferred, not copied.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createRequire } = require("node:module");
const lmdb = createRequire(workerData.base)("lmdb");
if (workerData.niceness > 0 && process.platform === "linux") {
  // On Linux setpriority(PRIO_PROCESS, tid) sets one thread's nice value; /proc/thread-self names this thread.
  const tid = Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop());
  require("node:os").setPriority(tid, workerData.niceness);
}
const env = lmdb.open({ path: workerData.path, maxDbs: workerData.maxDbs, noSync: true });
// Per bucket: a copying handle for get(), and a zero-copy one for range(): its decoder returns a view of the
// read buffer (valid until the next step of the iteration), so no value is copied per entry. A plain
// Uint8Array, not lmdb's Buffer: a task's value.slice() must copy (Buffer#slice would not). Keys likewise: the
// scan handle's readKey (the function lmdb-js 3 calls with its reused key buffer for every step) returns a view,
// where lmdb-js's binary keys are a slice each — 50,000 small ArrayBuffers per LIST for the GC to sweep (views:
// ~13% more full Ranges per second, a quarter fewer scavenges in the worker).
const noCopy = { encode: (v) => v, decode: (bytes, size) => new Uint8Array(bytes.buffer, bytes.byteOffset, size) };
const keyView = (buf, start, end) => new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
const buckets = new Map();
const bucket = (name) => {
  let db = buckets.get(name);
  if (db === undefined) {
    db = {
      get: env.openDB(name, { keyEncoding: "binary", encoding: "binary" }),
      scan: env.openDB(name, { keyEncoding: "binary", encoder: noCopy }),
    };
    db.scan.readKey = keyView;
    buckets.set(name, db);
  }
  return db;
};
// Output slabs (read_view.ts), one per slot; slotState (shared with the main thread, which releases) says which
// are free or lent. A free slab that grew past slabKeepMaxBytes is dropped when found, not reused.
const slabs = [];
const slotState = workerData.slotState;
let lending; // the running task's { slot, slab }, once it asked for one
const lendOutput = () => {
  if (lending === undefined) {
    let pick = -1;
    for (let i = 0; i < slotState.length; i++) {
      if (Atomics.load(slotState, i) === ${SLOT_LENT}) continue;
      if (slabs[i] !== undefined && slabs[i].byteLength > workerData.slabKeepMaxBytes) slabs[i] = undefined;
      if (pick < 0 || (slabs[pick] === undefined && slabs[i] !== undefined)) pick = i;
    }
    if (pick < 0) return undefined;
    slabs[pick] ??= new SharedArrayBuffer(workerData.slabFirstBytes, { maxByteLength: workerData.slabMaxBytes });
    Atomics.store(slotState, pick, ${SLOT_LENT});
    lending = { slot: pick, slab: slabs[pick] };
  }
  return lending.slab;
};
const tasks = new Map(Object.entries(workerData.tasks).map(([k, src]) => [k, (0, eval)("(" + src + ")")]));
let txn; // the running task's read transaction (a renewable scan replaces it as it goes)
const renew = () => {
  txn.done();
  env.resetReadTxn();
  txn = env.useReadTransaction();
};
// A renewable forward scan: every RENEW_ENTRIES entries it moves to a fresh snapshot and goes on after the last
// key it handed out, so the oldest snapshot this worker pins is never more than one chunk old (read_view.ts).
function* renewableScan(db, span) {
  let after;
  for (;;) {
    const opts = { transaction: txn };
    if (after !== undefined) { opts.start = after; opts.exclusiveStart = true; } else if (span.start !== undefined) opts.start = span.start;
    if (span.end !== undefined) opts.end = span.end;
    let n = 0;
    for (const e of db.getRange(opts)) {
      yield e;
      if (++n === workerData.renewEntries) {
        after = Uint8Array.prototype.slice.call(e.key); // a copy while the key's view is still valid
        break;
      }
    }
    if (n < workerData.renewEntries) return;
    renew();
  }
}
const scan = (b, span) =>
  span.renewable && !span.reverse && span.limit === undefined && workerData.renewEntries > 0
    ? renewableScan(bucket(b).scan, span)
    : bucket(b).scan.getRange({ ...span, transaction: txn });
parentPort.on("message", (m) => {
  if (m.type === "close") { env.close(); process.exit(0); }
  txn = undefined;
  lending = undefined;
  try {
    env.resetReadTxn();
    txn = env.useReadTransaction();
    const view = {
      get: (b, key) => bucket(b).get.get(key, { transaction: txn }),
      range: scan,
      lendOutput,
    };
    const task = tasks.get(m.task);
    if (task === undefined) throw new Error("unknown worker task " + m.task);
    const result = task(view, m.args);
    const transfer = [];
    let slot;
    if (result !== null && typeof result === "object") {
      for (const v of Object.values(result)) {
        if (!ArrayBuffer.isView(v)) continue;
        if (lending !== undefined && v.buffer === lending.slab) slot = lending.slot;
        else if (v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.byteLength > 0) transfer.push(v.buffer);
      }
    }
    if (slot === undefined && lending !== undefined) Atomics.store(slotState, lending.slot, ${SLOT_FREE}); // asked for, not returned
    parentPort.postMessage({ id: m.id, ok: true, result, slot }, transfer);
  } catch (err) {
    if (lending !== undefined) Atomics.store(slotState, lending.slot, ${SLOT_FREE});
    parentPort.postMessage({ id: m.id, ok: false, message: String(err && err.stack || err) });
  } finally {
    if (txn !== undefined) txn.done();
  }
});
`;

/** Hands a lent slot back to its worker (one atomic store: the worker sees it on its next lend). */
function giveBack(slots: Int32Array, slot: number): void {
  Atomics.compareExchange(slots, slot, SLOT_LENT, SLOT_FREE);
}

type Pending = { readonly resolve: (v: unknown) => void; readonly reject: (e: Error) => void };

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly message?: string;
  /** The result's views share the output slab of this slot (read_view.ts). */
  readonly slot?: number;
}

export interface WorkerPoolOptions {
  readonly path: string;
  readonly maxDbs: number;
  readonly size: number;
  readonly tasks: Readonly<Record<string, ReadTask<never, unknown>>>;
  /** Nice value the workers give themselves (default READ_WORKER_NICENESS; 0 = the main thread's). */
  readonly niceness?: number;
  /** Entries per snapshot of a renewable scan (default READ_WORKER_RENEW_ENTRIES; 0 = one snapshot per task). */
  readonly renewEntries?: number;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  /** Tasks sent and not yet answered, per worker; the next task goes to the least loaded worker. */
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Gives a lent slab back when a result that was never released is collected (read_view.ts). */
  private readonly unreleased = new FinalizationRegistry<{ readonly slots: Int32Array; readonly slot: number }>((h) =>
    giveBack(h.slots, h.slot),
  );

  constructor(private readonly opts: WorkerPoolOptions) {
    if (!(opts.size >= 1)) throw new Error(`WorkerPool: size(${opts.size}) < 1`);
  }

  /** Runs a registered task in a worker over a fresh read snapshot. */
  run<A, R>(task: string, args: A): Promise<R> {
    if (this.closed) return Promise.reject(new Error("WorkerPool: closed"));
    if (!(task in this.opts.tasks)) return Promise.reject(new Error(`WorkerPool: unknown task ${task}`));
    const index = this.pickWorker();
    const worker = this.workers[index] ?? this.spawn(index);
    const id = this.nextId++;
    this.load[index] = (this.load[index] ?? 0) + 1;
    worker.ref(); // an answer is owed: keep the process alive until it comes
    const done = (): void => {
      this.load[index] = (this.load[index] ?? 1) - 1;
      if (this.load[index] === 0) worker.unref();
    };
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (v) => {
          done();
          resolve(v as R);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      worker.postMessage({ type: "run", id, task, args });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exits = this.workers.map((w) => new Promise<void>((resolve) => w.once("exit", () => resolve())));
    for (const w of this.workers) {
      w.ref(); // keep the process alive until the worker has closed its environment and exited
      w.postMessage({ type: "close" });
    }
    await Promise.all(exits);
    for (const p of this.pending.values()) p.reject(new Error("WorkerPool: closed with a task in flight"));
    this.pending.clear();
  }

  /**
   * Adds release() to a result holding the slab of `slot`: the first call gives the slab back to its worker; if
   * none comes, the finalization registry does once the result's slab is unreachable here. Exactly one of the two
   * happens per result, so a release never frees a slot that was lent again meanwhile.
   */
  private lend(slots: Int32Array, slot: number, result: unknown): void {
    const slab = Object.values(result as object).find(
      (v): v is Uint8Array => ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer,
    )?.buffer;
    if (slab === undefined) {
      giveBack(slots, slot); // cannot happen: the worker lends only when a result field views the slab
      return;
    }
    const token = {};
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.unreleased.unregister(token);
      giveBack(slots, slot);
    };
    this.unreleased.register(slab, { slots, slot }, token);
    Object.defineProperty(result, "release", { value: release, enumerable: false });
  }

  /**
   * An idle worker if there is one; else a new worker while fewer than `size` run; else the least loaded. A
   * worker (its own V8 heap, its output slabs) is paid for only once that many long reads have overlapped, not
   * for the first tasks that happen to come one after another.
   */
  private pickWorker(): number {
    let best = -1;
    for (let i = 0; i < this.workers.length; i++) {
      if (best < 0 || (this.load[i] ?? 0) < (this.load[best] ?? 0)) best = i;
    }
    if (best >= 0 && (this.load[best] ?? 0) === 0) return best;
    return this.workers.length < this.opts.size ? this.workers.length : best;
  }

  private spawn(index: number): Worker {
    const tasks = Object.fromEntries(Object.entries(this.opts.tasks).map(([k, fn]) => [k, fn.toString()]));
    const slotState = new Int32Array(new SharedArrayBuffer(4 * READ_WORKER_SLAB_SLOTS));
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      resourceLimits: { maxYoungGenerationSizeMb: READ_WORKER_YOUNG_GEN_MB },
      workerData: {
        base: import.meta.url,
        path: this.opts.path,
        maxDbs: this.opts.maxDbs,
        tasks,
        niceness: this.opts.niceness ?? READ_WORKER_NICENESS,
        renewEntries: this.opts.renewEntries ?? READ_WORKER_RENEW_ENTRIES,
        slotState,
        slabFirstBytes: SLAB_FIRST_BYTES,
        slabMaxBytes: SLAB_MAX_BYTES,
        slabKeepMaxBytes: READ_WORKER_SLAB_KEEP_MAX_BYTES,
      },
    });
    worker.on("message", (reply: Reply) => {
      const p = this.pending.get(reply.id);
      if (reply.slot !== undefined) this.lend(slotState, reply.slot, reply.result);
      if (p === undefined) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`worker task failed: ${reply.message ?? "(no message)"}`));
    });
    worker.on("error", (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
    worker.unref();
    this.workers[index] = worker;
    this.load[index] = 0;
    return worker;
  }
}
