// UndoLog takes back exactly the writes that happened: a write the store refused (it threw) is not undone, so
// rollback() never repeats a refused operation and throws again (a crash loop when it runs inside apply), and
// rollback restores puts, deletes and overwrites newest first, also over a real LMDB backend; reset() bounds a
// rollback to the writes after it (one log serves a batch's entries), and what a rollback handed the write view
// is never overwritten by the log's later writes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import type { Entry, RangeSpan, WriteView } from "../../core/backend/read_view.js";
import { UndoLog } from "../../core/backend/undo_log.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

/** A write view that keeps the very buffers it is given (as an overlay of uncommitted writes may). */
class KeepingStore implements WriteView {
  readonly data = new Map<string, Uint8Array>();
  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    return this.data.get(`${bucket}/${dec(key)}`);
  }
  range(_bucket: string, _span: RangeSpan): Iterable<Entry> {
    return [];
  }
  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.data.set(`${bucket}/${dec(key)}`, value);
  }
  del(bucket: string, key: Uint8Array): void {
    this.data.delete(`${bucket}/${dec(key)}`);
  }
}

const contents = (data: Map<string, Uint8Array>): Record<string, string | undefined> =>
  Object.fromEntries([...data].map(([k, v]) => [k, dec(v)]));

/** An in-memory write view that refuses (throws on) any put or delete of a key longer than `maxKey`, as LMDB does. */
class FakeStore implements WriteView {
  readonly data = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  constructor(private readonly maxKey: number) {}
  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    const v = this.data.get(`${bucket}/${dec(key)}`);
    return v === undefined ? undefined : Uint8Array.from(v);
  }
  range(_bucket: string, _span: RangeSpan): Iterable<Entry> {
    return [];
  }
  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.calls.push(`put ${dec(key)}`);
    this.check(key);
    this.data.set(`${bucket}/${dec(key)}`, Uint8Array.from(value));
  }
  del(bucket: string, key: Uint8Array): void {
    this.calls.push(`del ${dec(key)}`);
    this.check(key);
    this.data.delete(`${bucket}/${dec(key)}`);
  }
  private check(key: Uint8Array): void {
    if (key.length > this.maxKey) throw new Error(`key of ${key.length} bytes over the limit`);
  }
}

describe("UndoLog", () => {
  it("does not undo a write that threw, so rollback after a refused write does not throw", () => {
    const store = new FakeStore(8);
    const undo = new UndoLog(store);
    undo.put("b", enc("a"), enc("1"));
    expect(() => undo.put("b", enc("much-too-long-key"), enc("2"))).toThrow(/over the limit/);
    expect(() => undo.del("b", enc("another-too-long-key"))).toThrow(/over the limit/);
    store.calls.length = 0;
    expect(() => undo.rollback()).not.toThrow();
    expect(store.calls).toEqual(["del a"]);
    expect([...store.data.keys()]).toEqual([]);
  });

  it("reports empty when its only write threw", () => {
    const undo = new UndoLog(new FakeStore(4));
    expect(() => undo.put("b", enc("too-long"), enc("v"))).toThrow();
    expect(undo.empty).toBe(true);
  });

  it("restores overwritten and deleted values newest first, after a refused write in between", () => {
    const store = new FakeStore(8);
    store.data.set("b/k", enc("old"));
    store.data.set("b/gone", enc("was-here"));
    const undo = new UndoLog(store);
    undo.put("b", enc("k"), enc("new"));
    undo.put("b", enc("k"), enc("newer"));
    expect(() => undo.put("b", enc("k-too-long-key"), enc("x"))).toThrow();
    undo.del("b", enc("gone"));
    undo.put("b", enc("fresh"), enc("f"));
    undo.rollback();
    expect(Object.fromEntries([...store.data].map(([k, v]) => [k, dec(v)]))).toEqual({
      "b/k": "old",
      "b/gone": "was-here",
    });
    expect(undo.empty).toBe(true);
  });

  it("rolls back many writes over a real backend, with keys LMDB refuses among them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "undo-log-"));
    const backend = Backend.open(dir, { buckets: ["b"], readWorkers: 0 });
    try {
      await backend.batch(undefined, (tx) => {
        for (let i = 0; i < 1000; i += 2) tx.put("b", enc(`k${i}`), enc(`old${i}`));
      });
      const before = backend.hash();
      await backend.batch(undefined, (tx) => {
        const undo = new UndoLog(tx);
        for (let i = 0; i < 1000; i++) {
          if (i % 3 === 0) undo.del("b", enc(`k${i}`));
          else undo.put("b", enc(`k${i}`), enc(`new${i}`.repeat(i % 7)));
          if (i % 100 === 0) expect(() => undo.put("b", new Uint8Array(4000), enc("v"))).toThrow();
        }
        undo.rollback();
      });
      expect(backend.hash()).toBe(before);
    } finally {
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rolls back only the writes since reset(), and the log goes on working after a rollback", () => {
    const store = new FakeStore(16);
    store.data.set("b/k", enc("v0"));
    const undo = new UndoLog(store);
    undo.put("b", enc("k"), enc("v1")); // entry 1: stays
    undo.put("b", enc("a"), enc("a1"));
    undo.reset();
    expect(undo.empty).toBe(true);
    undo.put("b", enc("k"), enc("v2")); // entry 2: rolled back
    undo.del("b", enc("a"));
    undo.put("b", enc("c"), enc("c2"));
    undo.rollback();
    expect(contents(store.data)).toEqual({ "b/k": "v1", "b/a": "a1" });
    undo.put("b", enc("k"), enc("v3")); // entry 3: rolled back too, back to entry 1's state
    undo.rollback();
    expect(contents(store.data)).toEqual({ "b/k": "v1", "b/a": "a1" });
  });

  it("never overwrites the bytes a rollback handed to the write view", () => {
    const store = new KeepingStore();
    store.put("b", enc("k"), enc("original"));
    const undo = new UndoLog(store);
    undo.put("b", enc("k"), enc("changed"));
    undo.rollback(); // hands the store a view of the log's copy of "original"
    undo.reset();
    undo.put("b", enc("x"), enc("y"));
    undo.put("b", enc("zzzzzzzzzz"), enc("w"));
    expect(dec(store.data.get("b/k"))).toBe("original");
  });
});
