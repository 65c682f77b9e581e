// Keys of any length, past LMDB's 1,978-byte key limit: the model-based check (fast-check, fixed seed) over keys
// of 1 to 100,000 bytes sharing prefixes across the short/long layout boundary agrees with a plain sorted model
// on every Range (spans, limits, sorts, revisions), through compaction and reopen, and two stores fed the same
// writes have the same HashKV at every revision; plus direct checks of order, lease, compare and watch.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { decodeKeyValue, encodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import {
  KEY_BUCKET,
  LMDB_MAX_KEY_BYTES,
  REV_BYTES,
  SHORT_KEY_MAX_BYTES,
  compareBytes,
  layoutKey,
} from "../../core/mvcc/layout.js";
import { CompareResult, CompareTarget } from "../../core/mvcc/types.js";
import { EventType, WatchableStore, type WatchResponse } from "../../core/mvcc/watchable_store.js";
import { checkAgainstModel } from "./kv_model_harness.js";

const k = (n: number): string => "k".repeat(n);
const S = SHORT_KEY_MAX_BYTES;
/** Lengths around both limits, keys sharing the first S bytes (one long group), and 0x00 bytes at the boundary. */
const KEYS = [
  "a",
  "k",
  k(S),
  k(S + 1),
  `${k(S)}\u0000`,
  k(1977),
  k(1978),
  k(3000),
  k(100_000),
  `${k(1000)}a${k(2000)}`,
  `${k(S - 1)}\u0000${k(40)}`,
  "\u0000".repeat(S),
  "\u0000".repeat(3000),
  "l",
];
/** Range ends inside a long group that are not keys themselves. */
const BOUNDS = [k(2000), `${k(1000)}b`, `${k(S - 1)}\u0000`, "\u0000".repeat(S + 1)];

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dirs: string[] = [];
const stores: KvStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(readWorkers = 0): KvStore {
  const dir = mkdtempSync(join(tmpdir(), "mvcc-long-"));
  dirs.push(dir);
  const s = KvStore.open(dir, { readWorkers });
  stores.push(s);
  return s;
}

describe("long keys", () => {
  it("every layout key stays within LMDB's limit, however long or 0x00-filled the user key", () => {
    const rev = { main: 2 ** 40, sub: 2 ** 40 };
    for (const key of [...KEYS, ...BOUNDS, "\u0000".repeat(1_500_000)]) {
      expect(layoutKey(enc(key), rev).length, `key of ${key.length} bytes`).toBeLessThanOrEqual(LMDB_MAX_KEY_BYTES);
    }
  });

  it("agrees with a sorted model on every Range, through compaction and reopen, with the same HashKV as a twin", async () => {
    await checkAgainstModel({ keys: KEYS, bounds: BOUNDS, seed: 20_261_207, numRuns: 25, maxCommands: 30, twin: true });
  }, 120_000);

  it("puts, gets and lists keys of 3,000 and 100,000 bytes in byte order among short keys sharing their prefix", async () => {
    const store = open(1);
    const keys = [k(3000), k(100_000), k(10), `${k(3000)}a`, k(S), `${k(S)}\u0000`, "l"];
    for (const key of keys) await store.put({ key: enc(key), value: enc(`v${key.length}`) });
    const got = await store.range({ key: enc("k"), rangeEnd: enc("l") }, { worker: true });
    const want = keys
      .filter((x) => x !== "l")
      .map(enc)
      .sort(compareBytes);
    expect(got.kvs.map((b) => decodeKeyValue(b).key)).toEqual(want);
    // Long bounds cut a long group in the middle, in the worker thread and on the main thread alike.
    for (const worker of [true, false]) {
      const mid = await store.range({ key: enc(k(2000)), rangeEnd: enc(`${k(3000)}b`) }, { worker });
      expect(
        mid.kvs.map((b) => decodeKeyValue(b).key.length),
        `worker ${worker}`,
      ).toEqual([3000, 3001]);
    }
    const one = await store.range({ key: enc(k(100_000)) });
    expect(one.kvs.map((b) => decodeKeyValue(b).value)).toEqual([enc("v100000")]);
    const limited = await store.range({ key: enc(k(S)), rangeEnd: enc(`${k(3000)}b`), limit: 2 });
    expect([limited.kvs.map((b) => decodeKeyValue(b).key.length), limited.count, limited.more]).toEqual([
      [S, S + 1],
      4,
      true,
    ]);
  });

  it("deletes, compares and attaches leases to a long key, and the live index survives a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mvcc-long-"));
    dirs.push(dir);
    let store = KvStore.open(dir, { readWorkers: 0 });
    const attached: string[] = [];
    const leases = {
      has: () => true,
      attach: (_: bigint, key: Uint8Array) => attached.push(`+${key.length}`),
      detach: (key: Uint8Array) => attached.push(`-${key.length}`),
    };
    store.setLeaseAttacher(leases);
    const key = enc(k(3000));
    await store.put({ key, value: enc("v"), lease: 7n });
    await store.close();
    store = KvStore.open(dir, { readWorkers: 0 });
    stores.push(store);
    store.setLeaseAttacher(leases);
    expect(store.liveLeasedKeys().map((x) => [x.lease, x.key.length])).toEqual([[7n, 3000]]);
    expect(attached).toEqual(["+3000"]);
    attached.length = 0;
    const txn = await store.txn({
      compare: [{ key, target: CompareTarget.VALUE, result: CompareResult.EQUAL, value: enc("v") }],
      success: [{ put: { key, value: enc("w") } }],
      failure: [],
    });
    expect(txn.succeeded).toBe(true);
    const del = await store.deleteRange({ key, prevKv: true });
    expect([del.deleted, del.prevKvs.map((b) => Buffer.from(decodeKeyValue(b).value).toString())]).toEqual([1, ["w"]]);
    expect(attached).toEqual(["-3000"]); // the txn's put without a lease
    expect((await store.range({ key })).count).toBe(0);
    await store.compact(store.revision);
    expect(store.backend.readNow((v) => [...v.range(KEY_BUCKET, {})].length)).toBe(0);
  });

  it("watches a span whose bounds are long keys, live and caught up from history, with only the keys inside it", async () => {
    const store = open();
    const ws = new WatchableStore(store);
    const span = { key: enc(k(2000)), rangeEnd: enc(`${k(3000)}b`) };
    const events = (rs: WatchResponse[]): string[] =>
      rs.flatMap((r) =>
        r.events.map(
          (e) =>
            `${e.type === EventType.PUT ? "PUT" : "DEL"} ${decodeKeyValue(e.kv).key.length}@${decodeKeyValue(e.kv).modRevision}`,
        ),
      );
    const live: WatchResponse[] = [];
    ws.watch({ ...span, send: (r) => live.push(r) > 0 });
    // In span: k(3000), k(3000)+"a"; outside but in the same long group: k(1999), k(100_000), k(3000)+"c".
    for (const key of [k(1999), k(3000), `${k(3000)}a`, k(100_000), `${k(3000)}c`])
      await store.put({ key: enc(key), value: enc("v") });
    await store.deleteRange({ key: enc(k(S + 1)), rangeEnd: enc(k(100_001)) });
    const want = ["PUT 3000@3", "PUT 3001@4", "DEL 3000@7", "DEL 3001@7"];
    expect(events(live)).toEqual(want);
    const caughtUp: WatchResponse[] = [];
    ws.watch({ ...span, startRevision: 2, send: (r) => caughtUp.push(r) > 0 });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(events(caughtUp)).toEqual(want);
  });

  it("moves a key an older build stored in the short layout (961 to ~1,960 bytes) to the long layout on open", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mvcc-long-"));
    dirs.push(dir);
    const old = KvStore.open(dir, { readWorkers: 0 });
    await old.put({ key: enc("a"), value: enc("1") }); // revision 2
    const key = enc(k(1500));
    // The older layout: the key's bytes (no 0x00 to escape), the 0x00 0x00 terminator, main 2, sub 1.
    const layout = new Uint8Array(key.length + 2 + REV_BYTES);
    layout.set(key);
    layout[layout.length - 9] = 2;
    layout[layout.length - 1] = 1;
    const kv = encodeKeyValue({ key, createRevision: 2, modRevision: 2, version: 1, value: enc("old"), lease: 0n });
    await old.backend.batch(undefined, (tx) => tx.put(KEY_BUCKET, layout, kv));
    await old.close();
    const store = KvStore.open(dir, { readWorkers: 0 });
    stores.push(store);
    expect((await store.range({ key })).kvs.map((b) => Buffer.from(decodeKeyValue(b).value).toString())).toEqual([
      "old",
    ]);
    const put = await store.put({ key, value: enc("new"), prevKv: true });
    expect([put.revision, Buffer.from(decodeKeyValue(put.prevKv ?? new Uint8Array()).value).toString()]).toEqual([
      3,
      "old",
    ]);
    expect(
      (await store.range({ key: enc("a"), rangeEnd: enc("l") })).kvs.map((b) => decodeKeyValue(b).version),
    ).toEqual([1, 2]);
  });
});
