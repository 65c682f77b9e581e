// Proves the read workers' two cost contracts: a worker's scan hands out views of one reused buffer (no copy
// per entry — a task that keeps an entry past its step sees it overwritten, one that copies sees its bytes),
// a task's owned output buffer comes back to the main thread intact, and on Linux each worker thread runs at
// READ_WORKER_NICENESS so the main thread's commits win the CPU.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import type { ReadView } from "../../core/backend/read_view.js";
import { READ_WORKER_NICENESS } from "../../core/backend/worker_pool.js";

const KEYS = 50;

/** Keeps each entry's value as handed out, and a copy of it; returns both, flattened, plus their lengths. */
function keepAndCopy(view: ReadView, args: { bucket: string }): { kept: Uint8Array; copied: Uint8Array; lengths: number[] } {
  const kept: Uint8Array[] = [];
  const copied: Uint8Array[] = [];
  for (const e of view.range(args.bucket, {})) {
    kept.push(e.value);
    copied.push(e.value.slice());
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
  return { kept: flat(kept), copied: flat(copied), lengths: copied.map((c) => c.length) };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const valueOf = (i: number): Uint8Array => new Uint8Array(100).fill(i + 1);
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

async function openFilled(): Promise<Backend> {
  const b = Backend.open(dir, { buckets: ["data"], readWorkers: 1, workerTasks: { keepAndCopy: keepAndCopy as (v: ReadView, a: never) => unknown } });
  backend = b;
  await b.batch(1, (tx) => {
    for (let i = 0; i < KEYS; i++) tx.put("data", enc(`key-${String(i).padStart(3, "0")}`), valueOf(i));
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
      expect(r.copied.subarray(i * 100, i * 100 + 100), `copied value ${i}`).toEqual(valueOf(i));
    }
    const kept = new Set(r.kept);
    expect(kept.size, `the ${KEYS} kept views share one buffer: all show the last value's byte (${KEYS})`).toBe(1);
    expect([...kept][0]).toBe(KEYS);
    // On the main thread the backend copies: kept entries stay intact.
    const main = keepAndCopy(b.readNow((v) => v), { bucket: "data" });
    expect(main.kept, "main-thread entries are fresh buffers").toEqual(main.copied);
  });

  it("each worker thread lowers its own priority (Linux)", async () => {
    const before = process.platform === "linux" ? threadNiceness().filter((n) => n === READ_WORKER_NICENESS).length : 0;
    const b = await openFilled();
    await b.readInWorker("keepAndCopy", () => ({ bucket: "data" }), keepAndCopy);
    const after = process.platform === "linux" ? threadNiceness().filter((n) => n === READ_WORKER_NICENESS).length : 1;
    expect(after - before, `threads at nice ${READ_WORKER_NICENESS}: ${before} before the pool, ${after} after one task`).toBe(1);
  });
});
