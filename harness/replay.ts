// Replays a trace against one target through core/client and workloads' kube-apiserver mapping. Preload ops
// (phase "preload") run first, closed-loop and unmeasured. Then every other op is sent at its intended time
// (start + t / speed): open-loop, so latency is measured from the intended time and a stalled server cannot
// hide behind a waiting sender (coordinated omission). Ops that name a `client` are a sequential caller: each
// starts at the later of its intended time and the client's previous completion (and latency counts from
// that start), and is skipped if it cannot start before its `until`. A client with `inFlight` is a paced caller
// instead: up to that many of its ops overlap, each latency counts from its intended time, and one that gets
// no slot before its `until` is skipped. Watches stay open for their duration.
import { performance } from "node:perf_hooks";
import { type EtcdClient, errorCode, type Watcher } from "../core/client/index.js";
import { KubeStorage, keyFor, listPrefix } from "../workloads/kube_mapping.js";
import type { Trace, TraceOp } from "../workloads/trace.js";
import type { Recorder } from "./metrics.js";
import { ListOffload } from "./list_offload.js";
import { Slots } from "./paced.js";
import { Progress } from "./progress.js";
import { setTimeout as sleep } from "node:timers/promises";

export interface ReplayOptions {
  /** Trace time is divided by this (2 = twice as fast). */
  readonly speed?: number;
  readonly preloadConcurrency?: number;
  /** Bound on ops in flight; past it the sender waits (latency still counts from the intended time). */
  readonly maxInFlight?: number;
  /** Compaction period (kube-apiserver --etcd-compaction-interval), seconds of trace time; 0 = off. */
  readonly compactEverySeconds?: number;
  readonly label?: string;
  readonly timeoutMs?: number;
  /** Run LISTs in a worker thread with its own client (needs the compiled dist/; off under vitest). */
  readonly offloadLists?: readonly string[];
}

export interface ReplayResult {
  readonly preloaded: number;
  readonly preloadErrors: number;
  readonly preloadSeconds: number;
  readonly replaySeconds: number;
  /** Sequential (looping) client ops that could not start before their `until`. */
  readonly skipped: number;
  /** Paced client ops that got no slot before their `until` (the target did not keep the pace). */
  readonly pacedSkipped: number;
  readonly cacheServed: number;
  readonly watchEvents: number;
  readonly compactions: number;
}

const FILLER = Buffer.alloc(2 * 1024 * 1024, "k8s\u0000etcd-ts-object ");

function valueBytesOf(op: TraceOp): Buffer {
  return FILLER.subarray(0, Math.min(op.size ?? 1024, FILLER.length));
}

function keyOf(op: TraceOp): string {
  return keyFor(op.resource, op.ns, op.name ?? "", op.group);
}

/**
 * reportVerb distinguishes the LIST shapes that behave differently: cluster LIST, namespace LIST, count, and a
 * LIST sent in pages (`-paged`), which etcd answers page by page at the first page's revision.
 */
export function reportVerb(op: TraceOp): string {
  if (op.verb !== "list") return op.verb;
  if (op.countOnly === true) return "count";
  const shape = op.ns === undefined || op.ns === "" ? "list" : "list-ns";
  return op.limit !== undefined && op.limit > 0 ? `${shape}-paged` : shape;
}

/** Outcome of one op: whether a compare lost (409-style conflict) and the LIST's response bytes. */
interface Executed {
  readonly conflict: boolean;
  readonly bytes?: number;
}

const done = (conflict: boolean): Executed => ({ conflict });

/** execute runs one op's etcd calls; "cache" when kube-apiserver would answer it without etcd. */
async function execute(
  storage: KubeStorage,
  client: EtcdClient,
  op: TraceOp,
  timeoutMs: number,
): Promise<Executed | "cache"> {
  switch (op.verb) {
    case "create":
      return done(!(await storage.create(keyOf(op), valueBytesOf(op), op.ttl)).created);
    case "update":
    case "patch":
      return done(!(await storage.update(keyOf(op), valueBytesOf(op))).updated);
    case "get":
      if (op.rv === "0") return "cache";
      await storage.get(keyOf(op));
      return done(false);
    case "delete":
      return done(!(await storage.delete(keyOf(op))));
    case "list":
      if (op.rv === "0") return "cache";
      if (op.countOnly === true) {
        await storage.count(listPrefix(op.resource, op.ns, op.group));
        return done(false);
      }
      return {
        conflict: false,
        bytes: (
          await storage.list(listPrefix(op.resource, op.ns, op.group), {
            ...(op.limit === undefined ? {} : { limit: op.limit }),
            timeoutMs,
          })
        ).bytes,
      };
    case "deletecollection": {
      const r = await client.get(listPrefix(op.resource, op.ns, op.group), { prefix: true, keysOnly: true });
      for (const kv of r.kvs) await storage.delete(kv.key.toString());
      return done(false);
    }
    case "watch":
      throw new Error("watch ops are opened by the replayer, not executed");
  }
}

async function preload(storage: KubeStorage, client: EtcdClient, ops: TraceOp[], opts: ReplayOptions): Promise<number> {
  const bar = new Progress(`preload ${opts.label ?? ""}`.trim(), ops.length);
  let next = 0,
    errors = 0;
  const worker = async (): Promise<void> => {
    while (next < ops.length) {
      const op = ops[next++]!;
      try {
        await execute(storage, client, op, opts.timeoutMs ?? 60_000);
      } catch {
        errors++;
      }
      bar.increment();
    }
  };
  await Promise.all(Array.from({ length: opts.preloadConcurrency ?? 64 }, worker));
  bar.stop();
  return errors;
}

/** replayTrace runs the trace against the client's target and records into `rec`. */
export async function replayTrace(
  client: EtcdClient,
  trace: Trace,
  rec: Recorder,
  opts: ReplayOptions = {},
): Promise<ReplayResult> {
  const storage = new KubeStorage(client);
  const pre = trace.ops.filter((o) => o.phase === "preload");
  const ops = trace.ops.filter((o) => o.phase !== "preload");
  const p0 = performance.now();
  const preloadErrors = await preload(storage, client, pre, opts);
  const preloadSeconds = (performance.now() - p0) / 1000;
  const offload = opts.offloadLists === undefined ? undefined : new ListOffload(opts.offloadLists);
  // Watches start from the revision the measured replay starts at (as kube-apiserver watches from its LIST's
  // revision + 1), so a watch sees every measured write on its prefix however long its creation takes.
  const watchFrom = ops.some((o) => o.verb === "watch")
    ? (await client.get("compact_rev_key")).header.revision + 1n
    : undefined;
  const run = new Run(client, storage, rec, opts, offload, watchFrom);
  try {
    await run.run(ops);
  } finally {
    await offload?.close();
  }
  return {
    preloaded: pre.length,
    preloadErrors,
    preloadSeconds,
    replaySeconds: run.elapsedS(),
    skipped: run.skipped,
    pacedSkipped: run.pacedSkipped,
    cacheServed: run.cacheServed,
    watchEvents: run.watchEvents,
    compactions: run.compactions,
  };
}

class Run {
  skipped = 0;
  pacedSkipped = 0;
  cacheServed = 0;
  watchEvents = 0;
  compactions = 0;
  private start = 0;
  private inFlight = 0;
  private slotWaiter: (() => void) | undefined;
  private readonly clients = new Map<string, Promise<void>>();
  private readonly pacedClients = new Map<string, Slots>();
  private readonly watchers: Watcher[] = [];
  private readonly speed: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly client: EtcdClient,
    private readonly storage: KubeStorage,
    private readonly rec: Recorder,
    private readonly opts: ReplayOptions,
    private readonly offload: ListOffload | undefined,
    private readonly watchFrom: bigint | undefined,
  ) {
    this.speed = opts.speed ?? 1;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    if (!(this.speed > 0)) throw new Error(`speed must be > 0, got ${this.speed}`);
  }

  elapsedS(): number {
    return (performance.now() - this.start) / 1000;
  }

  async run(ops: TraceOp[]): Promise<void> {
    const endT = ops.length === 0 ? 0 : ops[ops.length - 1]!.t / this.speed;
    const bar = new Progress(`replay ${this.opts.label ?? ""}`.trim(), ops.length);
    const pending: Promise<void>[] = [];
    this.start = performance.now();
    const compactor = this.startCompactor(endT);
    for (const op of ops) {
      const intendedS = op.t / this.speed;
      const waitMs = intendedS * 1000 - (performance.now() - this.start);
      if (waitMs > 1) await sleep(waitMs);
      bar.increment();
      if (op.verb === "watch") {
        this.openWatch(op, intendedS);
        continue;
      }
      if (op.client !== undefined && op.inFlight !== undefined) {
        pending.push(this.paced(op, intendedS));
        continue;
      }
      if (op.client !== undefined) {
        const prev = this.clients.get(op.client) ?? Promise.resolve();
        const p = prev.then(() => this.sequential(op, intendedS));
        this.clients.set(op.client, p);
        pending.push(p);
        continue;
      }
      while (this.inFlight >= (this.opts.maxInFlight ?? 4096)) await new Promise<void>((r) => (this.slotWaiter = r));
      pending.push(this.issue(op, intendedS));
    }
    await Promise.all(pending);
    bar.stop();
    compactor.stop();
    await compactor.done;
    for (const w of this.watchers) w.cancel();
  }

  private async sequential(op: TraceOp, intendedS: number): Promise<void> {
    const now = this.elapsedS();
    if (op.until !== undefined && Math.max(now, intendedS) >= op.until / this.speed) {
      this.skipped++;
      return;
    }
    if (intendedS > now) await sleep((intendedS - now) * 1000);
    await this.issue(op, Math.max(intendedS, now));
  }

  /** paced: a bounded open-loop caller; latency counts from the op's time, including any wait for a slot. */
  private async paced(op: TraceOp, intendedS: number): Promise<void> {
    let slots = this.pacedClients.get(op.client!);
    if (slots === undefined) this.pacedClients.set(op.client!, (slots = new Slots(op.inFlight!)));
    await slots.acquire();
    try {
      if (op.until !== undefined && this.elapsedS() >= op.until / this.speed) {
        this.pacedSkipped++;
        return;
      }
      await this.issue(op, intendedS);
    } finally {
      slots.release();
    }
  }

  private async issue(op: TraceOp, intendedS: number): Promise<void> {
    if (this.offload !== undefined && op.verb === "list" && op.countOnly !== true && op.rv !== "0")
      return this.issueOffloaded(op, intendedS);
    this.inFlight++;
    const sentS = this.elapsedS();
    const phase = op.phase ?? "run";
    try {
      const r = await execute(this.storage, this.client, op, this.timeoutMs);
      if (r === "cache") this.cacheServed++;
      else
        this.rec.record(
          phase,
          reportVerb(op),
          op.resource,
          { intendedS, sentS, doneS: this.elapsedS() },
          { conflict: r.conflict, bytes: r.bytes ?? 0 },
        );
    } catch (err) {
      this.rec.record(
        phase,
        reportVerb(op),
        op.resource,
        { intendedS, sentS, doneS: this.elapsedS() },
        { errorCode: errorCode(err) },
      );
    } finally {
      this.inFlight--;
      const w = this.slotWaiter;
      this.slotWaiter = undefined;
      w?.();
    }
  }

  private async issueOffloaded(op: TraceOp, intendedS: number): Promise<void> {
    const startAbs = performance.timeOrigin + this.start;
    const r = await this.offload!.list(listPrefix(op.resource, op.ns, op.group), op.limit, this.timeoutMs);
    const t = { intendedS, sentS: (r.sentAbsMs - startAbs) / 1000, doneS: (r.doneAbsMs - startAbs) / 1000 };
    this.rec.record(
      op.phase ?? "run",
      reportVerb(op),
      op.resource,
      t,
      r.errorCode === undefined ? { bytes: r.bytes } : { errorCode: r.errorCode },
    );
  }

  private openWatch(op: TraceOp, intendedS: number): void {
    const from = this.watchFrom === undefined ? {} : { startRevision: this.watchFrom };
    const w = this.client.watch(listPrefix(op.resource, op.ns, op.group), { prefix: true, prevKv: true, ...from });
    this.watchers.push(w);
    const phase = op.phase ?? "run";
    const sentS = this.elapsedS();
    void w.created.then(
      () => this.rec.record(phase, "watch", op.resource, { intendedS, sentS, doneS: this.elapsedS() }),
      (err: unknown) =>
        this.rec.record(
          phase,
          "watch",
          op.resource,
          { intendedS, sentS, doneS: this.elapsedS() },
          { errorCode: errorCode(err) },
        ),
    );
    void (async () => {
      try {
        for await (const batch of w) this.watchEvents += batch.events.length;
      } catch {
        // counted when created fails; a watch ended by compaction is expected under compaction
      }
    })();
    if (op.duration !== undefined) {
      const t = setTimeout(() => w.cancel(), (op.duration / this.speed) * 1000);
      t.unref();
    }
  }

  private startCompactor(endS: number): { stop(): void; done: Promise<void> } {
    const every = this.opts.compactEverySeconds ?? 0;
    let stopped = false;
    let wake: (() => void) | undefined;
    const done = (async () => {
      if (every <= 0) return;
      // Round 0 at the start records a revision (as kube-apiserver's compactor does when it starts); each
      // later round compacts at the revision the previous round saw.
      for (let k = 0; !stopped && (k * every) / this.speed <= endS; k++) {
        const intendedS = (k * every) / this.speed;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.max(0, intendedS * 1000 - (performance.now() - this.start)));
        });
        if (stopped) return;
        const sentS = this.elapsedS();
        const phase = "compaction";
        try {
          if ((await this.storage.compactRound()) > 0n) this.compactions++;
          this.rec.record(phase, "compact", "compact_rev_key", { intendedS, sentS, doneS: this.elapsedS() });
        } catch (err) {
          this.rec.record(
            phase,
            "compact",
            "compact_rev_key",
            { intendedS, sentS, doneS: this.elapsedS() },
            { errorCode: errorCode(err) },
          );
        }
      }
    })();
    return {
      stop: () => {
        stopped = true;
        wake?.();
      },
      done,
    };
  }
}
