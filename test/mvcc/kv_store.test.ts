// Proves the KV store's etcd semantics case by case: revisions, versions, Range options (limit/more/count,
// sort, keys_only, count_only, filters, "\0" range end, revision reads), Put options, DeleteRange, Txn
// compares and nested txns, compaction, HashKV, the etcd errors, reopen, and worker-thread ranges.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { isEtcdError, type ErrorCode } from "../../core/errors.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore, ReadMode } from "../../core/mvcc/kv_store.js";
import { CompareResult, CompareTarget, SortOrder, SortTarget, type RangeResponse } from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const keys = (r: RangeResponse): string[] => r.kvs.map((b) => dec(decodeKeyValue(b).key));
const values = (r: RangeResponse): string[] => r.kvs.map((b) => dec(decodeKeyValue(b).value));

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEtcdError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

let dir: string;
let store: KvStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "mvcc-"));
  store = KvStore.open(dir, { readWorkers: 1 });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("put and range", () => {
  it("starts at revision 1; each put makes a revision; version and create_revision follow etcd", async () => {
    expect(store.revision).toBe(1);
    expect((await store.put({ key: enc("a"), value: enc("1") })).revision).toBe(2);
    await store.put({ key: enc("a"), value: enc("2") });
    const r = await store.range({ key: enc("a") });
    const kv = decodeKeyValue(r.kvs[0] as Uint8Array);
    expect([kv.createRevision, kv.modRevision, kv.version, dec(kv.value), r.revision]).toEqual([2, 3, 2, "2", 3]);
    await store.deleteRange({ key: enc("a") });
    await store.put({ key: enc("a"), value: enc("3") });
    const again = decodeKeyValue((await store.range({ key: enc("a") })).kvs[0] as Uint8Array);
    expect([again.createRevision, again.version], "a new generation after delete").toEqual([5, 1]);
  });

  it("limit, more and count; '\\0' range end; keys_only; count_only; range_end <= key is empty", async () => {
    for (const k of ["a", "b", "c", "d"]) await store.put({ key: enc(k), value: enc(k + k) });
    const r = await store.range({ key: enc("a"), rangeEnd: enc("d"), limit: 2 });
    expect([keys(r), r.more, r.count]).toEqual([["a", "b"], true, 3]);
    const all = await store.range({ key: enc("b"), rangeEnd: new Uint8Array([0]) });
    expect(keys(all)).toEqual(["b", "c", "d"]);
    const ko = await store.range({ key: enc("a"), rangeEnd: enc("z"), keysOnly: true });
    expect(values(ko)).toEqual(["", "", "", ""]);
    const co = await store.range({ key: enc("a"), rangeEnd: enc("z"), countOnly: true });
    expect([co.kvs.length, co.count]).toEqual([0, 4]);
    const empty = await store.range({ key: enc("c"), rangeEnd: enc("b") });
    expect([empty.kvs.length, empty.count]).toEqual([0, 0]);
  });

  it("sorts by target; a non-KEY target with order NONE sorts ascending; filters keep count unfiltered", async () => {
    await store.put({ key: enc("a"), value: enc("z") });
    await store.put({ key: enc("b"), value: enc("y") });
    await store.put({ key: enc("b"), value: enc("x") });
    const byValue = await store.range({ key: enc("a"), rangeEnd: enc("c"), sortTarget: SortTarget.VALUE });
    expect(keys(byValue)).toEqual(["b", "a"]);
    const byModDesc = await store.range({
      key: enc("a"),
      rangeEnd: enc("c"),
      sortTarget: SortTarget.MOD,
      sortOrder: SortOrder.DESCEND,
    });
    expect(keys(byModDesc)).toEqual(["b", "a"]);
    const filtered = await store.range({ key: enc("a"), rangeEnd: enc("c"), minModRevision: 3, limit: 5 });
    expect([keys(filtered), filtered.count, filtered.more]).toEqual([["b"], 2, false]);
  });

  it("reads at a past revision; future and compacted revisions are etcd's errors", async () => {
    await store.put({ key: enc("k"), value: enc("v1") });
    await store.put({ key: enc("k"), value: enc("v2") });
    expect(values(await store.range({ key: enc("k"), revision: 2 }))).toEqual(["v1"]);
    await expectCode(store.range({ key: enc("k"), revision: 9 }), "FUTURE_REV");
    await store.compact(3);
    await expectCode(store.range({ key: enc("k"), revision: 2 }), "COMPACTED");
    expect(values(await store.range({ key: enc("k"), revision: 3 }))).toEqual(["v2"]);
    await expectCode(store.compact(3), "COMPACTED");
    await expectCode(store.compact(4), "FUTURE_REV");
  });

  it("put options: prev_kv, ignore_value, ignore_lease and their errors", async () => {
    await expectCode(store.put({ key: enc(""), value: enc("x") }), "EMPTY_KEY");
    await expectCode(store.put({ key: enc("n"), value: new Uint8Array(0), ignoreValue: true }), "KEY_NOT_FOUND");
    await expectCode(store.put({ key: enc("n"), value: enc("x"), ignoreValue: true }), "VALUE_PROVIDED");
    await expectCode(store.put({ key: enc("n"), value: enc("x"), lease: 5n, ignoreLease: true }), "LEASE_PROVIDED");
    await expectCode(store.put({ key: enc("big"), value: new Uint8Array(2 * 1024 * 1024) }), "REQUEST_TOO_LARGE");
    expect(store.revision, "refused requests make no revision").toBe(1);
    await store.put({ key: enc("n"), value: enc("x"), lease: 7n });
    const p = await store.put({ key: enc("n"), value: new Uint8Array(0), ignoreValue: true, prevKv: true });
    expect(dec(decodeKeyValue(p.prevKv as Uint8Array).value)).toBe("x");
    const kv = decodeKeyValue((await store.range({ key: enc("n") })).kvs[0] as Uint8Array);
    expect([dec(kv.value), kv.lease, kv.version], "a put without lease detaches it (etcd)").toEqual(["x", 0n, 2]);
    await store.put({ key: enc("n"), value: enc("y"), lease: 9n });
    await store.put({ key: enc("n"), value: enc("z"), ignoreLease: true });
    const kept = decodeKeyValue((await store.range({ key: enc("n") })).kvs[0] as Uint8Array);
    expect([dec(kept.value), kept.lease, kept.version]).toEqual(["z", 9n, 4]);
  });
});

describe("delete, txn, compaction, hash", () => {
  it("delete range with prev_kv; deleting nothing makes no revision", async () => {
    for (const k of ["a", "b", "c"]) await store.put({ key: enc(k), value: enc(k) });
    const d = await store.deleteRange({ key: enc("a"), rangeEnd: enc("c"), prevKv: true });
    expect([d.deleted, d.prevKvs.map((b) => dec(decodeKeyValue(b).key)), d.revision]).toEqual([2, ["a", "b"], 5]);
    const none = await store.deleteRange({ key: enc("zz") });
    expect([none.deleted, none.revision, store.revision]).toEqual([0, 5, 5]);
  });

  it("txn: compares pick the branch on the state before the txn; nested txns; one revision for all ops", async () => {
    await store.put({ key: enc("x"), value: enc("1") });
    const r = await store.txn({
      compare: [{ key: enc("x"), target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: enc("1") }],
      success: [
        { put: { key: enc("y"), value: enc("2") } },
        { range: { key: enc("y") } },
        {
          txn: {
            compare: [{ key: enc("y"), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: 0 }],
            success: [{ put: { key: enc("z"), value: enc("then") } }],
            failure: [{ put: { key: enc("z"), value: enc("else") } }],
          },
        },
      ],
      failure: [],
    });
    expect([r.succeeded, r.revision]).toEqual([true, 3]);
    const inner = r.responses[1];
    expect(inner !== undefined && "range" in inner ? values(inner.range) : [], "a txn reads its own writes").toEqual([
      "2",
    ]);
    expect(values(await store.range({ key: enc("z") })), "nested compare saw y before the txn").toEqual(["then"]);
    const z = decodeKeyValue((await store.range({ key: enc("z") })).kvs[0] as Uint8Array);
    expect(z.modRevision).toBe(3);
  });

  it("txn errors: duplicate key, put inside a deleted range, too many ops; then/else may share a key", async () => {
    const put = (k: string) => ({ put: { key: enc(k), value: enc("v") } });
    await expectCode(store.txn({ compare: [], success: [put("a"), put("a")], failure: [] }), "DUPLICATE_KEY");
    await expectCode(
      store.txn({
        compare: [],
        success: [{ deleteRange: { key: enc("a"), rangeEnd: enc("c") } }, put("b")],
        failure: [],
      }),
      "DUPLICATE_KEY",
    );
    await expectCode(
      store.txn({ compare: [], success: Array.from({ length: 129 }, (_, i) => put(`k${i}`)), failure: [] }),
      "TOO_MANY_OPS",
    );
    const ok = await store.txn({
      compare: [],
      success: [{ txn: { compare: [], success: [put("a")], failure: [put("a")] } }],
      failure: [],
    });
    expect(ok.succeeded).toBe(true);
  });

  it("compaction keeps the newest revision <= rev of live keys and drops tombstones; state survives reopen", async () => {
    await store.put({ key: enc("a"), value: enc("1") }); // 2
    await store.put({ key: enc("a"), value: enc("2") }); // 3
    await store.put({ key: enc("b"), value: enc("1") }); // 4
    await store.deleteRange({ key: enc("b") }); // 5
    await store.put({ key: enc("a"), value: enc("3") }); // 6
    const before = await store.hashKV(6);
    await store.compact(5);
    expect(values(await store.range({ key: enc("a"), revision: 5 }))).toEqual(["2"]);
    expect((await store.range({ key: enc("b"), revision: 5 })).count).toBe(0);
    const after = await store.hashKV(6);
    expect(after.hash, "compaction changed stored history").not.toBe(before.hash);
    await store.close();
    store = KvStore.open(dir, { readWorkers: 1 });
    expect([store.revision, store.compactRevision]).toEqual([6, 5]);
    expect((await store.hashKV(6)).hash).toBe(after.hash);
    expect(values(await store.range({ key: enc("a"), rangeEnd: new Uint8Array([0]) }))).toEqual(["3"]);
  });

  it("a worker-thread range sees every commit made before it and agrees with the main thread", async () => {
    for (let i = 0; i < 50; i++) await store.put({ key: enc(`k${String(i).padStart(3, "0")}`), value: enc(`v${i}`) });
    const main = await store.range({ key: enc("k"), rangeEnd: enc("l") }, { worker: false });
    const worker = await store.range({ key: enc("k"), rangeEnd: enc("l") }, { worker: true });
    expect([worker.count, keys(worker)]).toEqual([50, keys(main)]);
    await store.put({ key: enc("k999"), value: enc("late") });
    const again = await store.range({ key: enc("k"), rangeEnd: enc("l") }, { worker: true });
    expect(again.count, "worker reset its read txn and saw the new commit").toBe(51);
    const past = await store.range({ key: enc("k"), rangeEnd: enc("l"), revision: 10 }, { worker: true });
    expect(past.count).toBe(9);
  });

  it("concurrent mode: a put issued during a worker Range commits first; the Range answers at its revision", async () => {
    for (let i = 0; i < 200; i++)
      await store.put({ key: enc(`p${String(i).padStart(4, "0")}`), value: new Uint8Array(100) });
    const events: string[] = [];
    const range = store.range({ key: enc("p"), rangeEnd: enc("q") }, { worker: true }).then((r) => {
      events.push("range");
      return r;
    });
    const put = store.put({ key: enc("p9999"), value: enc("late") }).then((r) => {
      events.push("put");
      return r;
    });
    const [r, p] = await Promise.all([range, put]);
    expect(events).toEqual(["put", "range"]);
    expect([r.revision, r.count, p.revision]).toEqual([201, 200, 202]);
  });

  it("blocking mode: a put issued during a worker Range commits after it; a Range issued later sees the put", async () => {
    await store.close();
    store = KvStore.open(dir, { readWorkers: 1, readMode: ReadMode.Blocking });
    for (let i = 0; i < 200; i++)
      await store.put({ key: enc(`p${String(i).padStart(4, "0")}`), value: new Uint8Array(100) });
    const events: string[] = [];
    const range = store.range({ key: enc("p"), rangeEnd: enc("q") }, { worker: true }).then((r) => {
      events.push("range");
      return r;
    });
    const put = store.put({ key: enc("p9999"), value: enc("late") }).then((r) => {
      events.push("put");
      return r;
    });
    const later = store.range({ key: enc("p"), rangeEnd: enc("q") }, { worker: false }).then((r) => {
      events.push("later range");
      return r;
    });
    const [r, p, l] = await Promise.all([range, put, later]);
    expect(events).toEqual(["range", "put", "later range"]);
    expect([r.count, p.revision, l.count, l.revision]).toEqual([200, 202, 201, 202]);
  });
});
