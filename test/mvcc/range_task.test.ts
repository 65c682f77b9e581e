// Proves the range task against a plain model over random histories (fast-check, fixed seed): for any span,
// revision, limit, sort, keys_only, count_only and min/max filters it returns etcd's kvs, count and more — and
// the same bytes whether the view hands out fresh buffers (main thread) or views of one buffer that the next
// step overwrites (a worker's zero-copy scan), so nothing the task keeps may alias an entry; and a renewable
// scan that a compaction races (a tombstone dropped between two snapshots) is read again in one snapshot.
import fc from "fast-check";
import { describe, expect, it } from "vitest";

import type { Entry, RangeSpan, ReadView, Slab } from "../../core/backend/read_view.js";
import { decodeKeyValue, encodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { compareBytes, layoutKey, layoutSpan } from "../../core/mvcc/layout.js";
import { rangeTask, type RangeTaskArgs, type RangeTaskResult } from "../../core/mvcc/range_task.js";

const SEED = 20_261_125;
const KEYS = ["a", "a\u0000", "ab", "b", "c", "d\u0000x", "e"] as const;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const META = new TextEncoder().encode("compact_rev");

type Kv = { key: string; value: string; create: number; mod: number; version: number };
/** Per revision ≥ 2: the changes of that revision (a value, or undefined for a delete). */
type History = { key: string; value: string | undefined }[][];

/** The stored layout: (key, rev, sub) → KeyValue bytes, empty for a tombstone; and the live state per revision. */
function build(history: History): { rows: Entry[]; states: Map<number, Map<string, Kv>> } {
  const rows: Entry[] = [];
  const states = new Map<number, Map<string, Kv>>([[1, new Map()]]);
  let cur = new Map<string, Kv>();
  history.forEach((changes, i) => {
    const rev = i + 2;
    cur = new Map(cur);
    changes.forEach(({ key, value }, sub) => {
      const prev = cur.get(key);
      if (value === undefined) {
        if (prev === undefined) return;
        cur.delete(key);
        rows.push({ key: layoutKey(enc(key), { main: rev, sub }), value: new Uint8Array(0) });
        return;
      }
      const kv: Kv = { key, value, create: prev?.create ?? rev, mod: rev, version: (prev?.version ?? 0) + 1 };
      cur.set(key, kv);
      const bytes = encodeKeyValue({
        key: enc(key),
        createRevision: kv.create,
        modRevision: rev,
        version: kv.version,
        value: enc(value),
        lease: 0n,
      });
      rows.push({ key: layoutKey(enc(key), { main: rev, sub }), value: bytes });
    });
    states.set(rev, cur);
  });
  rows.sort((x, y) => compareBytes(x.key, y.key));
  return { rows, states };
}

function inSpan(row: Uint8Array, span: RangeSpan): boolean {
  return (
    (span.start === undefined || compareBytes(row, span.start) >= 0) &&
    (span.end === undefined || compareBytes(row, span.end) < 0)
  );
}

/** fresh: a new copy per entry (the backend's main-thread view); reused: one key and one value buffer for all. */
function viewOf(rows: Entry[], reused: boolean): ReadView {
  const keyBuf = new Uint8Array(1024);
  const valueBuf = new Uint8Array(8192);
  return {
    get: () => undefined,
    range: function* (_bucket: string, span: RangeSpan): Iterable<Entry> {
      for (const r of rows) {
        if (!inSpan(r.key, span)) continue;
        if (!reused) {
          yield { key: r.key.slice(), value: r.value.slice() };
          continue;
        }
        keyBuf.set(r.key);
        valueBuf.set(r.value);
        yield { key: keyBuf.subarray(0, r.key.length), value: valueBuf.subarray(0, r.value.length) };
        keyBuf.fill(0xee); // what a worker's next step does to the previous entry
        valueBuf.fill(0xee);
      }
    },
  };
}

type Req = {
  key: string;
  end: string | undefined;
  rev: number;
  limit: number;
  sortOrder: number;
  sortTarget: number;
  keysOnly: boolean;
  countOnly: boolean;
  minMod: number;
  maxMod: number;
  minCreate: number;
  maxCreate: number;
};

/** etcd 3.4's applier Range over the live state at rev: count before filters, filter, sort, cut to limit. */
function model(state: Map<string, Kv>, q: Req): { kvs: Kv[]; count: number; more: boolean } {
  const inRange = (k: string): boolean =>
    q.end === undefined
      ? k === q.key
      : q.end === "\u0000"
        ? Buffer.compare(enc(k), enc(q.key)) >= 0
        : Buffer.compare(enc(k), enc(q.key)) >= 0 && Buffer.compare(enc(k), enc(q.end)) < 0;
  const live = [...state.values()]
    .filter((kv) => inRange(kv.key))
    .sort((x, y) => Buffer.compare(enc(x.key), enc(y.key)));
  let kvs = live.filter(
    (kv) =>
      !(
        (q.minMod > 0 && kv.mod < q.minMod) ||
        (q.maxMod > 0 && kv.mod > q.maxMod) ||
        (q.minCreate > 0 && kv.create < q.minCreate) ||
        (q.maxCreate > 0 && kv.create > q.maxCreate)
      ),
  );
  const order = q.sortTarget !== 0 && q.sortOrder === 0 ? 1 : q.sortOrder;
  if (order !== 0) {
    const by = (x: Kv, y: Kv): number =>
      [
        Buffer.compare(enc(x.key), enc(y.key)),
        x.version - y.version,
        x.create - y.create,
        x.mod - y.mod,
        Buffer.compare(enc(x.value), enc(y.value)),
      ][q.sortTarget] as number;
    kvs.sort(order === 2 ? (x, y) => by(y, x) : by);
  }
  let more = false;
  if (q.limit > 0 && kvs.length > q.limit) {
    kvs = kvs.slice(0, q.limit);
    more = true;
  }
  return { kvs: q.countOnly ? [] : kvs, count: live.length, more: q.countOnly ? false : more };
}

function argsOf(q: Req): RangeTaskArgs {
  const span = layoutSpan(enc(q.key), q.end === undefined ? undefined : enc(q.end));
  return {
    ...{
      bucket: "key",
      metaBucket: "meta",
      compactKey: META,
      start: span.start,
      end: span.end,
      rev: q.rev,
      limit: q.limit,
    },
    ...{ sortOrder: q.sortOrder, sortTarget: q.sortTarget, countOnly: q.countOnly, keysOnly: q.keysOnly },
    ...{
      minModRevision: q.minMod,
      maxModRevision: q.maxMod,
      minCreateRevision: q.minCreate,
      maxCreateRevision: q.maxCreate,
    },
    ...{ frameHeadBytes: 64, frameTailBytes: 16 },
  };
}

/** The kvs of a result, read back from its frames (tag 0x12 + varint length + bytes between the gaps). */
function framesOf(res: RangeTaskResult): Kv[] {
  const out: Kv[] = [];
  let pos = res.framedStart;
  for (let i = 0; i < res.starts.length; i++) {
    expect(res.packed[pos], `frame ${i} tag at ${pos}`).toBe(0x12);
    const start = res.starts[i] as number;
    const end = res.ends[i] as number;
    const kv = decodeKeyValue(res.packed.subarray(start, end));
    out.push({
      key: dec(kv.key),
      value: dec(kv.value),
      create: kv.createRevision,
      mod: kv.modRevision,
      version: kv.version,
    });
    pos = end;
  }
  expect(pos, "frames end at framedEnd").toBe(res.framedEnd);
  expect(res.packed.length - res.framedEnd, "tail gap").toBeGreaterThanOrEqual(16);
  return out;
}

const key = fc.constantFrom(...KEYS);
const historyArb: fc.Arbitrary<History> = fc.array(
  fc.array(fc.record({ key, value: fc.option(fc.string({ maxLength: 40 }), { nil: undefined, freq: 4 }) }), {
    minLength: 1,
    maxLength: 3,
  }),
  { minLength: 1, maxLength: 14 },
);
const spanArb = fc.oneof(
  key.map((k) => ({ key: k, end: undefined as string | undefined })),
  fc.tuple(key, fc.constantFrom(...KEYS, "\u0000", "z")).map(([k, e]) => ({ key: k, end: e as string | undefined })),
  fc.constant({ key: "\u0000", end: "\u0000" as string | undefined }),
);
const reqArb = (revs: number): fc.Arbitrary<Req> =>
  fc
    .record({
      span: spanArb,
      rev: fc.integer({ min: 1, max: revs + 1 }),
      limit: fc.integer({ min: 0, max: 4 }),
      sortOrder: fc.integer({ min: 0, max: 2 }),
      sortTarget: fc.integer({ min: 0, max: 4 }),
      keysOnly: fc.boolean(),
      countOnly: fc.boolean(),
      filter: fc.tuple(
        fc.integer({ min: 0, max: revs + 1 }),
        fc.integer({ min: 0, max: revs + 1 }),
        fc.integer({ min: 0, max: revs + 1 }),
        fc.integer({ min: 0, max: revs + 1 }),
      ),
      noFilter: fc.boolean(),
    })
    .map((r) => {
      const [minMod, maxMod, minCreate, maxCreate] = r.noFilter ? [0, 0, 0, 0] : r.filter;
      return {
        key: r.span.key,
        end: r.span.end,
        rev: r.rev,
        limit: r.limit,
        sortOrder: r.sortOrder,
        sortTarget: r.sortTarget,
        keysOnly: r.keysOnly,
        countOnly: r.countOnly,
        minMod,
        maxMod,
        minCreate,
        maxCreate,
      };
    });

describe("range task", () => {
  it("agrees with the model, with fresh and with reused entry buffers", () => {
    const cases = historyArb.chain((h) =>
      fc.tuple(fc.constant(h), fc.array(reqArb(h.length), { minLength: 1, maxLength: 8 })),
    );
    fc.assert(
      fc.property(cases, ([history, reqs]) => {
        const { rows, states } = build(history);
        for (const q of reqs) {
          const want = model(states.get(q.rev) ?? new Map(), q);
          for (const reused of [false, true]) {
            const res = rangeTask(viewOf(rows, reused), argsOf(q));
            const got = framesOf(res);
            const label = `reused=${reused} req=${JSON.stringify(q)}`;
            expect([res.count, res.more], label).toEqual([want.count, want.more]);
            expect(got, label).toEqual(want.kvs.map((kv) => (q.keysOnly ? { ...kv, value: "" } : kv)));
          }
        }
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("a long read writes into the view's lent slab (growing it, reusing an old one as it is) or a resizable buffer; a short one grows a plain buffer by copying", () => {
    const rows: Entry[] = [];
    const value = new Uint8Array(3000).fill(0x61);
    for (let i = 0; i < 200; i++) {
      const k = enc(`pod-${String(i).padStart(4, "0")}`);
      rows.push({
        key: layoutKey(k, { main: 2, sub: i }),
        value: encodeKeyValue({ key: k, createRevision: 2, modRevision: 2, version: 1, value, lease: 0n }),
      });
    }
    const q: Req = {
      key: "pod-",
      end: "pod.",
      rev: 2,
      limit: 0,
      sortOrder: 0,
      sortTarget: 0,
      keysOnly: false,
      countOnly: false,
      minMod: 0,
      maxMod: 0,
      minCreate: 0,
      maxCreate: 0,
    };
    const Growable = SharedArrayBuffer as unknown as new (bytes: number, o: { maxByteLength: number }) => Slab;
    const slab = new Growable(64 * 1024, { maxByteLength: 2 ** 31 - 1 });
    const lending: ReadView = { ...viewOf(rows, true), lendOutput: () => slab };
    const res = rangeTask(lending, { ...argsOf(q), lendOutput: true });
    const got = framesOf(res);
    expect(got.length, "every pod returned").toBe(200);
    expect(got[199]?.key, "the last pod").toBe("pod-0199");
    expect(res.packed.buffer, "the frames are in the lent slab").toBe(slab);
    expect(slab.byteLength, "grown past its first 64 KiB").toBeGreaterThan(64 * 1024);
    expect(res.packed.byteLength, `a view of head + frames + tail (${res.framedEnd} + 16)`).toBe(res.framedEnd + 16);
    // The slab again, now longer than needed and full of the first result's bytes: a smaller range is exact.
    new Uint8Array(slab).fill(0xee);
    const few = rangeTask(lending, { ...argsOf({ ...q, end: "pod-0010" }), lendOutput: true });
    expect(few.packed.buffer).toBe(slab);
    expect(few.packed.byteLength).toBe(few.framedEnd + 16);
    expect(framesOf(few)).toEqual(got.slice(0, 10));
    // A long read with no slab lent: a resizable buffer grown in place, trimmed to head + frames + tail.
    const resized = rangeTask(viewOf(rows, true), { ...argsOf(q), lendOutput: true });
    expect(framesOf(resized)).toEqual(got);
    expect((resized.packed.buffer as ArrayBuffer & { resizable?: boolean }).resizable).toBe(true);
    expect(resized.packed.byteLength).toBe(resized.framedEnd + 16);
    // A short read: a plain buffer (4 KiB first) grown by copying.
    const plain = rangeTask(lending, argsOf(q));
    expect(framesOf(plain)).toEqual(got);
    expect((plain.packed.buffer as ArrayBuffer & { resizable?: boolean }).resizable).toBe(false);
    expect(plain.packed.byteLength).toBeGreaterThanOrEqual(plain.framedEnd + 16);
  });

  it("a compaction between two snapshots of a renewable scan makes the task read again in one snapshot", () => {
    // a@2 put, a@3 delete (tombstone), b@4 put. Range at rev 4 over [a, c): only b.
    const kv = (k: string, rev: number): Uint8Array =>
      encodeKeyValue({ key: enc(k), createRevision: rev, modRevision: rev, version: 1, value: enc("v"), lease: 0n });
    const before: Entry[] = [
      { key: layoutKey(enc("a"), { main: 2, sub: 0 }), value: kv("a", 2) },
      { key: layoutKey(enc("a"), { main: 3, sub: 0 }), value: new Uint8Array(0) },
      { key: layoutKey(enc("b"), { main: 4, sub: 0 }), value: kv("b", 4) },
    ];
    // Compaction at 3 drops a's tombstone and everything below it; the compact key moves to 3.
    const after = before.slice(2);
    let compacted = false;
    let singleSnapshotScans = 0;
    const u64 = (n: number): Uint8Array => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, n]);
    const view: ReadView = {
      get: () => (compacted ? u64(3) : undefined),
      range: function* (_b: string, span: RangeSpan): Iterable<Entry> {
        if (span.renewable !== true) {
          singleSnapshotScans += 1;
          yield* (compacted ? after : before).filter((r) => inSpan(r.key, span));
          return;
        }
        yield before[0] as Entry; // first snapshot: a@2 only, then the view renews after the compaction
        compacted = true;
        yield* after.filter((r) => inSpan(r.key, span));
      },
    };
    const q: Req = {
      key: "a",
      end: "c",
      rev: 4,
      limit: 0,
      sortOrder: 0,
      sortTarget: 0,
      keysOnly: false,
      countOnly: false,
      minMod: 0,
      maxMod: 0,
      minCreate: 0,
      maxCreate: 0,
    };
    const res = rangeTask(view, argsOf(q));
    expect(singleSnapshotScans, "read again in one snapshot").toBe(1);
    expect(
      framesOf(res).map((k) => k.key),
      "a was deleted at 3: only b at 4",
    ).toEqual(["b"]);
    expect(res.count).toBe(1);
  });
});
