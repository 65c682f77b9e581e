// The model behind the KV store's model-based tests (fast-check): random Put/Delete/Txn/Compact/Range/reopen
// sequences run against the KV store and against a plain in-memory model that keeps the whole key state at every
// revision. Every Range (random span, limit, sort, filters, revision) must agree with the model, before and after
// compaction and across close/reopen; at the end every retained revision is read in full and compared, and the
// number of physically stored revisions matches what compaction must keep.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { expect } from "vitest";

import { isEtcdError } from "../../core/errors.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import { KEY_BUCKET } from "../../core/mvcc/layout.js";
import {
  CompareResult,
  CompareTarget,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type TxnRequest,
} from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

type MKv = { value: string; create: number; mod: number; version: number };
type State = Map<string, MKv>;

/** The model: the full key state at each revision ≥ the compacted one. */
class Model {
  rev = 1;
  compacted = 0;
  states = new Map<number, State>([[1, new Map()]]);
  get cur(): State {
    return this.states.get(this.rev) as State;
  }
  /** Every stored change (one per key per revision), as the store must keep it physically. */
  log: { key: string; rev: number; del: boolean }[] = [];
  commit(next: State): void {
    const prev = this.cur;
    this.rev += 1;
    for (const [k, kv] of next) if (prev.get(k)?.mod !== kv.mod) this.log.push({ key: k, rev: this.rev, del: false });
    for (const k of prev.keys()) if (!next.has(k)) this.log.push({ key: k, rev: this.rev, del: true });
    this.states.set(this.rev, next);
  }
  /** Physical compaction: history ≤ r goes except each key's newest change ≤ r when it is not a delete. */
  compact(r: number): void {
    for (const k of [...this.states.keys()]) if (k < r) this.states.delete(k);
    this.compacted = r;
    const newest = new Map<string, { key: string; rev: number; del: boolean }>();
    for (const c of this.log) if (c.rev <= r) newest.set(c.key, c);
    this.log = this.log.filter((c) => c.rev > r || (newest.get(c.key) === c && !c.del));
  }
}

function inSpan(k: string, key: string, end: string | undefined): boolean {
  if (end === undefined) return k === key;
  if (end === "\u0000") return Buffer.compare(enc(k), enc(key)) >= 0;
  return Buffer.compare(enc(k), enc(key)) >= 0 && Buffer.compare(enc(k), enc(end)) < 0;
}

type Span = { key: string; end: string | undefined };
type RangeCmd = Span & {
  kind: "range";
  rev: number;
  limit: number;
  sortTarget: number;
  sortOrder: number;
  minMod: number;
  worker: boolean;
};
type Cmd =
  | { kind: "put"; key: string; value: string }
  | ({ kind: "del" } & Span)
  | { kind: "txn"; key: string; version: number; then: { key: string; value: string }[]; other: Span[] }
  | { kind: "compact"; back: number }
  | RangeCmd
  | { kind: "reopen" };

/** Commands over `keys`; range ends are drawn from `keys` and `bounds` too. */
function commandsFor(keys: readonly string[], bounds: readonly string[]): fc.Arbitrary<Cmd> {
  const keyArb = fc.constantFrom(...keys);
  // Deletes mostly hit one key, so the store keeps several live keys and ranges have something to order.
  const spanArb: fc.Arbitrary<Span> = fc.record({
    key: keyArb,
    end: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom(...keys, ...bounds, "\u0000", "z") },
    ),
  });
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant("put" as const),
        key: keyArb,
        value: fc.string({ minLength: 1, maxLength: 3 }),
      }),
    },
    { weight: 2, arbitrary: spanArb.map((s) => ({ kind: "del" as const, ...s })) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("txn" as const),
        key: keyArb,
        version: fc.integer({ min: 0, max: 3 }),
        // biome-ignore lint/suspicious/noThenProperty: a txn's then branch, named as in etcd's TxnRequest
        then: fc.uniqueArray(fc.record({ key: keyArb, value: fc.string({ maxLength: 2 }) }), {
          selector: (p) => p.key,
          maxLength: 3,
        }),
        other: fc.array(spanArb, { maxLength: 2 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("compact" as const), back: fc.integer({ min: -1, max: 4 }) }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant("range" as const),
        key: keyArb,
        // Mostly wide spans, no filter, no limit and recent revisions, so most ranges return several keys.
        end: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom("\u0000", "z", ...bounds) },
          { weight: 2, arbitrary: fc.option(fc.constantFrom(...keys), { nil: undefined }) },
        ),
        rev: fc.oneof(
          { weight: 3, arbitrary: fc.integer({ min: 0, max: 3 }) },
          { weight: 1, arbitrary: fc.integer({ min: -2, max: 8 }) },
        ),
        limit: fc.oneof(
          { weight: 2, arbitrary: fc.constant(0) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) },
        ),
        sortTarget: fc.integer({ min: 0, max: 4 }),
        sortOrder: fc.integer({ min: 0, max: 2 }),
        minMod: fc.oneof(
          { weight: 3, arbitrary: fc.constant(0) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 12 }) },
        ),
        worker: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
  );
}

function modelRange(m: Model, c: RangeCmd, rev: number): { keys: string[]; kvs: MKv[]; count: number; more: boolean } {
  const state = m.states.get(rev) as State;
  const all = [...state.entries()]
    .filter(([k]) => inSpan(k, c.key, c.end))
    .sort(([a], [b]) => Buffer.compare(enc(a), enc(b)));
  let rows = all.filter(([, kv]) => c.minMod === 0 || kv.mod >= c.minMod);
  const order = c.sortTarget !== 0 && c.sortOrder === 0 ? 1 : c.sortOrder;
  if (order !== 0) {
    const by = ([ka, a]: [string, MKv], [kb, b]: [string, MKv]): number =>
      [
        Buffer.compare(enc(ka), enc(kb)),
        a.version - b.version,
        a.create - b.create,
        a.mod - b.mod,
        Buffer.compare(enc(a.value), enc(b.value)),
      ][c.sortTarget] as number;
    rows = [...rows].sort(order === 2 ? (x, y) => by(y, x) : by);
  }
  const more = c.limit > 0 && rows.length > c.limit;
  if (more) rows = rows.slice(0, c.limit);
  return { keys: rows.map(([k]) => k), kvs: rows.map(([, kv]) => kv), count: all.length, more };
}

function toRequest(c: RangeCmd, rev: number): RangeRequest {
  return {
    key: enc(c.key),
    ...(c.end !== undefined ? { rangeEnd: enc(c.end) } : {}),
    revision: rev,
    limit: c.limit,
    sortTarget: c.sortTarget as RangeRequest["sortTarget"] & number,
    sortOrder: c.sortOrder as RangeRequest["sortOrder"] & number,
    minModRevision: c.minMod,
  };
}

function storeView(r: RangeResponse): { keys: string[]; kvs: MKv[]; count: number; more: boolean } {
  const kvs = r.kvs.map((b) => decodeKeyValue(b));
  return {
    keys: kvs.map((kv) => dec(kv.key)),
    kvs: kvs.map((kv) => ({
      value: dec(kv.value),
      create: kv.createRevision,
      mod: kv.modRevision,
      version: kv.version,
    })),
    count: r.count,
    more: r.more,
  };
}

export interface ModelCheckOptions {
  readonly keys: readonly string[];
  /** Extra range ends besides the keys, "\u0000" and "z". */
  readonly bounds?: readonly string[];
  readonly seed: number;
  readonly numRuns: number;
  readonly maxCommands: number;
  /**
   * Also apply every write to a second store that is never reopened and reads on the main thread only, and
   * require the same HashKV as the first at every retained revision (after each compaction and at the end).
   */
  readonly twin?: boolean;
}

/**
 * Runs random command sequences against the store and the model; every Range must agree, and at the end every
 * retained revision and the number of stored revisions are checked.
 */
export async function checkAgainstModel(o: ModelCheckOptions): Promise<void> {
  await fc.assert(
    // Worker threads cost ~0.1 s to start, so one run in five serves its long ranges from a worker.
    fc.asyncProperty(
      fc.array(commandsFor(o.keys, o.bounds ?? []), { minLength: 5, maxLength: o.maxCommands }),
      fc.constantFrom(0, 0, 0, 0, 1),
      async (cmds, readWorkers) => {
        const dir = mkdtempSync(join(tmpdir(), "mvcc-model-"));
        const twinDir = o.twin === true ? mkdtempSync(join(tmpdir(), "mvcc-twin-")) : undefined;
        let store = KvStore.open(dir, { readWorkers });
        const twin = twinDir === undefined ? undefined : KvStore.open(twinDir, { readWorkers: 0 });
        const m = new Model();
        try {
          for (const c of cmds) {
            store = await step(store, dir, m, c, readWorkers);
            if (twin !== undefined) await twinStep(twin, store, m, c);
          }
          await checkAll(store, m);
          if (twin !== undefined) await sameHashes(store, twin, m);
        } finally {
          await store.close();
          await twin?.close();
          rmSync(dir, { recursive: true, force: true });
          if (twinDir !== undefined) rmSync(twinDir, { recursive: true, force: true });
        }
      },
    ),
    { seed: o.seed, numRuns: o.numRuns },
  );
}

/** The twin gets the same writes (its results are the first store's, checked against the model already). */
async function twinStep(twin: KvStore, store: KvStore, m: Model, c: Cmd): Promise<void> {
  if (c.kind === "put") await twin.put({ key: enc(c.key), value: enc(c.value) });
  else if (c.kind === "del")
    await twin.deleteRange({ key: enc(c.key), ...(c.end !== undefined ? { rangeEnd: enc(c.end) } : {}) });
  else if (c.kind === "txn") await twin.txn(txnRequest(c));
  else if (c.kind === "compact" && m.compacted > twin.compactRevision) {
    await twin.compact(m.compacted);
    await sameHashes(store, twin, m);
  }
  expect(twin.revision).toBe(store.revision);
}

async function sameHashes(store: KvStore, twin: KvStore, m: Model): Promise<void> {
  for (const rev of m.states.keys()) {
    const [a, b] = [await store.hashKV(rev), await twin.hashKV(rev)];
    expect(b, `HashKV at ${rev} (compacted ${m.compacted})`).toEqual(a);
  }
}

async function step(store: KvStore, dir: string, m: Model, c: Cmd, readWorkers: number): Promise<KvStore> {
  switch (c.kind) {
    case "put": {
      const prev = m.cur.get(c.key);
      const next = new Map(m.cur);
      next.set(c.key, {
        value: c.value,
        create: prev?.create ?? m.rev + 1,
        mod: m.rev + 1,
        version: (prev?.version ?? 0) + 1,
      });
      const r = await store.put({ key: enc(c.key), value: enc(c.value) });
      m.commit(next);
      expect(r.revision, `put ${JSON.stringify(c.key)}`).toBe(m.rev);
      return store;
    }
    case "del": {
      const doomed = [...m.cur.keys()].filter((k) => inSpan(k, c.key, c.end));
      const r = await store.deleteRange({ key: enc(c.key), ...(c.end !== undefined ? { rangeEnd: enc(c.end) } : {}) });
      if (doomed.length > 0) {
        const next = new Map(m.cur);
        for (const k of doomed) next.delete(k);
        m.commit(next);
      }
      expect([r.deleted, r.revision]).toEqual([doomed.length, m.rev]);
      return store;
    }
    case "txn":
      await stepTxn(store, m, c);
      return store;
    case "compact": {
      const target = m.rev - c.back;
      const res = await store.compact(target).then(
        () => "ok",
        (e: unknown) => (isEtcdError(e) ? e.code : String(e)),
      );
      const want = target <= m.compacted ? "COMPACTED" : target > m.rev ? "FUTURE_REV" : "ok";
      expect(res, `compact ${target} (rev ${m.rev}, compacted ${m.compacted})`).toBe(want);
      if (want === "ok") m.compact(target);
      return store;
    }
    case "range":
      await checkRange(store, m, c, c.rev < 0 ? m.rev + 1 : c.rev === 0 ? m.rev : Math.max(1, m.rev - c.rev));
      return store;
    case "reopen":
      await store.close();
      return KvStore.open(dir, { readWorkers });
  }
}

async function stepTxn(store: KvStore, m: Model, c: Extract<Cmd, { kind: "txn" }>): Promise<void> {
  const ok = (m.cur.get(c.key)?.version ?? 0) === c.version;
  const next = new Map(m.cur);
  let changed = false;
  if (ok) {
    for (const p of c.then) {
      const prev = next.get(p.key);
      next.set(p.key, {
        value: p.value,
        create: prev?.create ?? m.rev + 1,
        mod: m.rev + 1,
        version: (prev?.version ?? 0) + 1,
      });
      changed = true;
    }
  } else {
    for (const s of c.other) {
      for (const k of [...next.keys()]) {
        if (inSpan(k, s.key, s.end)) {
          next.delete(k);
          changed = true;
        }
      }
    }
  }
  const r = await store.txn(txnRequest(c));
  if (changed) m.commit(next);
  expect([r.succeeded, r.revision], `txn on ${JSON.stringify(c.key)} version ${c.version}`).toEqual([ok, m.rev]);
}

function txnRequest(c: Extract<Cmd, { kind: "txn" }>): TxnRequest {
  const success: RequestOp[] = c.then.map((p) => ({ put: { key: enc(p.key), value: enc(p.value) } }));
  const failure: RequestOp[] = c.other.map((s) => ({
    deleteRange: { key: enc(s.key), ...(s.end !== undefined ? { rangeEnd: enc(s.end) } : {}) },
  }));
  return {
    compare: [{ key: enc(c.key), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: c.version }],
    success,
    failure,
  };
}

async function checkRange(store: KvStore, m: Model, c: RangeCmd, rev: number): Promise<void> {
  const got = await store.range(toRequest(c, rev), { worker: c.worker }).then(
    (r) => storeView(r),
    (e: unknown) => (isEtcdError(e) ? e.code : String(e)),
  );
  const want = rev > m.rev ? "FUTURE_REV" : rev < m.compacted ? "COMPACTED" : modelRange(m, c, rev);
  expect(got, `range ${JSON.stringify(c)} at ${rev} (rev ${m.rev}, compacted ${m.compacted})`).toEqual(want);
}

async function checkAll(store: KvStore, m: Model): Promise<void> {
  for (const rev of m.states.keys()) {
    const c: RangeCmd = {
      kind: "range",
      key: "\u0000",
      end: "\u0000",
      rev,
      limit: 0,
      sortTarget: 0,
      sortOrder: 0,
      minMod: 0,
      worker: rev % 2 === 0,
    };
    await checkRange(store, m, c, rev);
  }
  expect([store.revision, store.compactRevision]).toEqual([m.rev, m.compacted]);
  const stored = store.backend.readNow((v) => [...v.range(KEY_BUCKET, {})].length);
  expect(stored, `stored revisions after compaction at ${m.compacted}`).toBe(m.log.length);
}
