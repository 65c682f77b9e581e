// Proves the read workers' two cost contracts: a worker's scan hands out views of one reused buffer (no copy
// per entry — a task that keeps an entry past its step sees it overwritten, one that copies sees its bytes),
// a task's owned output buffer comes back to the main thread intact, and on Linux each worker thread runs at
// READ_WORKER_NICENESS so the main thread's commits win the CPU; a pool starts its second worker only when two
// tasks overlap.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import type { ReadView } from "../../core/backend/read_view.js";
import { READ_WORKER_NICENESS, READ_WORKER_SLAB_SLOTS } from "../../core/backend/worker_pool.js";

const KEYS = 50;

/** Keeps each entry's key and value as handed out, and copies of them; returns both, flattened, plus lengths. */
function keepAndCopy(
  view: ReadView,
  args: { bucket: string },
): { kept: Uint8Array; copied: Uint8Array; lengths: number[]; keptKeys: string[]; copiedKeys: string[] } {
  const kept: Uint8Array[] = [];
  const copied: Uint8Array[] = [];
  const keptKeys: Uint8Array[] = [];
  const copiedKeys: Uint8Array[] = [];
  for (const e of view.range(args.bucket, {})) {
    kept.push(e.value);
    copied.push(e.value.slice());
    keptKeys.push(e.key);
    copiedKeys.push(e.key.slice());
  }
  const flat = (parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const text = (k: Uint8Array): string => new TextDecoder().decode(k);
  return {
    kept: flat(kept),
    copied: flat(copied),
    lengths: copied.map((c) => c.length),
    keptKeys: keptKeys.map(text),
    copiedKeys: copiedKeys.map(text),
  };
}

/** Counts the bucket's entries into a 1000-byte result filled with `fill`, in a lent slab when the view has one. */
function filled(view: ReadView, args: { bucket: string; fill: number }): { packed: Uint8Array; entries: number } {
  let entries = 0;
  for (const _ of view.range(args.bucket, {})) entries++;
  const slab = view.lendOutput?.();
  if (slab !== undefined && slab.byteLength < 1000) slab.grow(1000);
  const packed = slab === undefined ? new Uint8Array(1000) : new Uint8Array(slab, 0, 1000);
  return { packed: packed.fill(args.fill), entries };
}

type Filled = ReturnType<typeof filled> & { release?: () => void };

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const valueAt = (i: number): Uint8Array => new Uint8Array(100).fill(i + 1);
let dir: string;
let backend: Backend | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "worker-pool-"));
});

afterEach(async () => {
  await backend?.close();
  backend = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function openFilled(readWorkers = 1): Promise<Backend> {
  const b = Backend.open(dir, {
    buckets: ["data"],
    readWorkers,
    workerTasks: {
      keepAndCopy: keepAndCopy as (v: ReadView, a: never) => unknown,
      filled: filled as (v: ReadView, a: never) => unknown,
    },
  });
  backend = b;
  await b.batch(1, (tx) => {
    for (let i = 0; i < KEYS; i++) tx.put("data", enc(`key-${String(i).padStart(3, "0")}`), valueAt(i));
  });
  return b;
}

/** Nice values of this process's threads (Linux: field 19 of /proc/self/task/<tid>/stat). */
function threadNiceness(): number[] {
  return readdirSync("/proc/self/task").map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "latin1");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

describe("read workers", () => {
  it("scan without copying: entries kept past their step are overwritten, copies are exact", async () => {
    const b = await openFilled();
    const r = await b.readInWorker("keepAndCopy", () => ({ bucket: "data" }), keepAndCopy);
    expect(r.lengths, `${KEYS} values of 100 bytes`).toEqual(Array.from({ length: KEYS }, () => 100));
    for (let i = 0; i < KEYS; i++) {
      expect(r.copied.subarray(i * 100, i * 100 + 100), `copied value ${i}`).toEqual(valueAt(i));
    }
    const kept = new Set(r.kept);
    expect(kept.size, `the ${KEYS} kept views share one buffer: all show the last value's byte (${KEYS})`).toBe(1);
    expect([...kept][0]).toBe(KEYS);
    const names = Array.from({ length: KEYS }, (_, i) => `key-${String(i).padStart(3, "0")}`);
    expect(r.copiedKeys, "copied keys are exact").toEqual(names);
    expect(new Set(r.keptKeys), "kept keys are views of one buffer too: all show the last key").toEqual(
      new Set([names[KEYS - 1]]),
    );
    // On the main thread the backend copies: kept entries stay intact.
    const main = keepAndCopy(
      b.readNow((v) => v),
      { bucket: "data" },
    );
    expect(main.kept, "main-thread entries are fresh buffers").toEqual(main.copied);
    expect(main.keptKeys).toEqual(names);
  });

  it("each worker thread lowers its own priority (Linux)", async () => {
    const before = process.platform === "linux" ? threadNiceness().filter((n) => n === READ_WORKER_NICENESS).length : 0;
    const b = await openFilled();
    await b.readInWorker("keepAndCopy", () => ({ bucket: "data" }), keepAndCopy);
    const after = process.platform === "linux" ? threadNiceness().filter((n) => n === READ_WORKER_NICENESS).length : 1;
    expect(
      after - before,
      `threads at nice ${READ_WORKER_NICENESS}: ${before} before the pool, ${after} after one task`,
    ).toBe(1);
  });

  it.runIf(process.platform === "linux")("a second worker starts only when two tasks overlap", async () => {
    const niceThreads = (): number => threadNiceness().filter((n) => n === READ_WORKER_NICENESS).length;
    const before = niceThreads();
    const b = await openFilled(2);
    for (let i = 0; i < 3; i++) await b.readInWorker("keepAndCopy", () => ({ bucket: "data" }), keepAndCopy);
    expect(niceThreads() - before, "worker threads after three tasks one after another").toBe(1);
    await Promise.all([1, 2].map(() => b.readInWorker("keepAndCopy", () => ({ bucket: "data" }), keepAndCopy)));
    expect(niceThreads() - before, "worker threads after two overlapping tasks").toBe(2);
  });

  describe("output slabs", () => {
    const run = (b: Backend, fill: number): Promise<Filled> =>
      b.readInWorker("filled", () => ({ bucket: "data", fill }), filled);
    const allOf = (r: Filled, fill: number): boolean => r.packed.every((x) => x === fill);

    it("a lent slab is not reused while its result is held, and is once the result is released", async () => {
      const b = await openFilled();
      const r1 = await run(b, 1);
      expect(r1.entries).toBe(KEYS);
      expect(r1.packed.buffer, "a view of a shared slab, no copy or transfer").toBeInstanceOf(SharedArrayBuffer);
      expect(typeof r1.release).toBe("function");
      const r2 = await run(b, 2);
      expect(allOf(r1, 1) && allOf(r2, 2), "r1 lent: r2 got another slab").toBe(true);
      r1.release?.();
      r1.release?.(); // a second call does nothing
      const r3 = await run(b, 3);
      expect(allOf(r1, 3), "r1's slab went to r3").toBe(true);
      expect(allOf(r2, 2), "r2's slab, still lent, untouched").toBe(true);
      r2.release?.();
      r3.release?.();
    });

    it(`with all ${READ_WORKER_SLAB_SLOTS} slots lent a result comes in a plain transferred buffer; a release frees a slot`, async () => {
      const b = await openFilled();
      const held: Filled[] = [];
      for (let i = 0; i < READ_WORKER_SLAB_SLOTS; i++) held.push(await run(b, 10 + i));
      expect(held.every((r) => r.packed.buffer instanceof SharedArrayBuffer)).toBe(true);
      const over = await run(b, 99);
      expect(over.packed.buffer, "no slot free").toBeInstanceOf(ArrayBuffer);
      expect(over.release, "nothing to release").toBeUndefined();
      expect(allOf(over, 99)).toBe(true);
      expect(
        held.every((r, i) => allOf(r, 10 + i)),
        "the lent slabs untouched",
      ).toBe(true);
      held[2]?.release?.();
      const again = await run(b, 42);
      expect(again.packed.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(allOf(held[2] as Filled, 42), "the released slot's slab was reused").toBe(true);
    });

    it("results never released give their slabs back once garbage-collected", async () => {
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void;
      const b = await openFilled();
      for (let i = 0; i < READ_WORKER_SLAB_SLOTS; i++) await run(b, i); // dropped unreleased
      let last: Filled | undefined;
      for (let attempt = 0; attempt < 50; attempt++) {
        gc();
        await new Promise((r) => setTimeout(r, 10)); // finalization callbacks run as tasks after the GC
        last = await run(b, 7);
        if (last.packed.buffer instanceof SharedArrayBuffer) break;
      }
      expect(last?.packed.buffer, "a slot came back after GC").toBeInstanceOf(SharedArrayBuffer);
      expect(last !== undefined && allOf(last, 7)).toBe(true);
    });
  });
});
