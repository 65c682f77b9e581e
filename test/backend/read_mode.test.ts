// Proves the two read modes' concurrency structure with ordering, not timing: while a long Range runs in a
// worker, a commit completes before the Range in `concurrent` mode (and the Range keeps its snapshot), and
// after it in `blocking` mode, where a read that arrives behind the queued commit waits for the commit too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { Backend, ReadMode } from "../../core/backend/backend.js";
import type { ReadView } from "../../core/backend/read_view.js";

const KEYS = 20_000;

/** A long read: walks the whole bucket; self-contained so it can run in a worker. */
function countAll(view: ReadView, args: { bucket: string }): { count: number } {
  let count = 0;
  for (const e of view.range(args.bucket, {})) if (e.value.length >= 0) count += 1;
  return { count };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
let dir: string;
let backend: Backend | undefined;

async function openFilled(readMode: ReadMode): Promise<Backend> {
  const b = Backend.open(dir, {
    buckets: ["data"],
    readMode,
    readWorkers: 1,
    workerTasks: { countAll: countAll as (v: ReadView, a: never) => unknown },
  });
  await b.batch(1, (tx) => {
    for (let i = 0; i < KEYS; i++) tx.put("data", enc(`key-${String(i).padStart(6, "0")}`), new Uint8Array(64));
  });
  backend = b;
  return b;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "read-mode-"));
});

afterEach(async () => {
  await backend?.close();
  backend = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("read modes with a long Range in progress", () => {
  it("concurrent: the commit completes before the Range", async () => {
    const b = await openFilled(ReadMode.Concurrent);
    const events: string[] = [];
    const range = b
      .readInWorker("countAll", () => ({ bucket: "data" }), countAll)
      .then((r) => {
        events.push("range");
        return r;
      });
    const commit = b.batch(2, (tx) => tx.put("data", enc("zzz-new"), enc("v"))).then(() => events.push("commit"));
    const [r] = await Promise.all([range, commit]);
    expect(events).toEqual(["commit", "range"]);
    // The worker's snapshot starts when it picks the task up, before or after the commit: both are whole states.
    expect([KEYS, KEYS + 1], `the Range saw ${r.count} keys`).toContain(r.count);
    expect(b.readLock.waiting, "concurrent mode never queues on the lock").toBe(0);
  });

  it("blocking: the commit waits for the Range, and a later read waits for the commit", async () => {
    const b = await openFilled(ReadMode.Blocking);
    const events: string[] = [];
    const range = b
      .readInWorker("countAll", () => ({ bucket: "data" }), countAll)
      .then((r) => {
        events.push("range");
        return r;
      });
    const commit = b.batch(2, (tx) => tx.put("data", enc("zzz-new"), enc("v"))).then(() => events.push("commit"));
    const later = b
      .read((v) => v.get("data", enc("zzz-new")))
      .then((v) => {
        events.push("later read");
        return v;
      });
    expect([b.readLock.activeReaders, b.readLock.waiting], "the Range holds the lock; commit and read queue").toEqual([
      1, 2,
    ]);
    const [r, , seen] = await Promise.all([range, commit, later]);
    expect(events).toEqual(["range", "commit", "later read"]);
    expect(r.count).toBe(KEYS);
    expect(seen !== undefined, "the later read ran after the commit and saw its write").toBe(true);
  });
});
