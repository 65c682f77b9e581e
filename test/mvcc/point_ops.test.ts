// Single-key reads inside a Txn (its Range ops and its compares) are answered from the live index with one exact
// get; this proves them identical to the range task's answers (fast-check, fixed seeds): every single-key Range in
// a Txn — any options, any revision, after puts with leases, deletes, compaction, and after the Txn's own writes —
// returns the kvs bytes, count and more (or the error) of the same Range read by the range task, and every
// single-key compare decides as the same compare over the one-key span [key, key + 0x00) does. Kubernetes'
// guarded update (compare a key, then put it or get it) sees the key as it was and leaves it at the next version.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { isEtcdError } from "../../core/errors.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import {
  CompareResult,
  CompareTarget,
  type Compare,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type SortOrder,
  type SortTarget,
} from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Short keys (one with 0x00 bytes) and two long ones sharing their first 960 bytes (layout.ts). */
const LONG = "L".repeat(1000);
const KEYS = ["a", "a\u0000b", "ab", "b", `${LONG}1`, `${LONG}2`, "zz"];
const LEASES = [0n, 7n, 0x7fff_ffff_ffff_ffffn];

type Write =
  | { kind: "put"; key: string; value: string; lease: bigint }
  | { kind: "del"; key: string; prefix: boolean }
  | { kind: "compact"; back: number };

const writeArb: fc.Arbitrary<Write> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: fc.constantFrom(...KEYS),
      value: fc.constantFrom("", "v", "value-two"),
      lease: fc.constantFrom(...LEASES),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("del" as const), key: fc.constantFrom(...KEYS), prefix: fc.boolean() }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant("compact" as const), back: fc.nat(3) }), weight: 1 },
);

/** A Range's options; the revision is given relative to the current one (0: none asked, 1: current, −1: next). */
const optionsArb = fc.record({
  key: fc.constantFrom(...KEYS),
  emptyEnd: fc.boolean(),
  limit: fc.constantFrom(0, 1, 2),
  revBack: fc.constantFrom<number>(0, 0, 1, 2, 3, -1),
  sortOrder: fc.constantFrom<SortOrder>(0, 1, 2),
  sortTarget: fc.constantFrom<SortTarget>(0, 1, 2, 3, 4),
  keysOnly: fc.boolean(),
  countOnly: fc.boolean(),
  minMod: fc.constantFrom(0, 0, 1, 3, 6),
  maxMod: fc.constantFrom(0, 0, 2, 5, 9),
  minCreate: fc.constantFrom(0, 0, 1, 4),
  maxCreate: fc.constantFrom(0, 0, 3, 8),
});
type Options = typeof optionsArb extends fc.Arbitrary<infer T> ? T : never;

function rangeRequest(o: Options, current: number): RangeRequest {
  return {
    key: enc(o.key),
    ...(o.emptyEnd ? { rangeEnd: new Uint8Array(0) } : {}),
    limit: o.limit,
    ...(o.revBack === 0 ? {} : { revision: current + 1 - o.revBack }),
    sortOrder: o.sortOrder,
    sortTarget: o.sortTarget,
    keysOnly: o.keysOnly,
    countOnly: o.countOnly,
    minModRevision: o.minMod,
    maxModRevision: o.maxMod,
    minCreateRevision: o.minCreate,
    maxCreateRevision: o.maxCreate,
  };
}

/** What a Range answered, comparable across both paths: its fields with kvs as hex, or its error code. */
function outcome(res: RangeResponse | unknown): unknown {
  if (isEtcdError(res)) return { error: res.code };
  if (res instanceof Error) throw res;
  const r = res as RangeResponse;
  return { revision: r.revision, count: r.count, more: r.more, kvs: r.kvs.map(hex) };
}

async function settle<T>(p: Promise<T>): Promise<T | unknown> {
  return await p.catch((err: unknown) => err);
}

async function applyWrite(store: KvStore, w: Write): Promise<void> {
  if (w.kind === "put") await store.put({ key: enc(w.key), value: enc(w.value), lease: w.lease });
  else if (w.kind === "del")
    await store.deleteRange({ key: enc(w.key), ...(w.prefix ? { rangeEnd: enc(`${w.key}\u00ff`) } : {}) });
  else {
    const to = store.revision - w.back;
    if (to > store.compactRevision) await store.compact(to);
  }
}

async function withStore(fn: (store: KvStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "point-ops-"));
  const store = KvStore.open(dir, { readWorkers: 0 });
  try {
    await fn(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The one-key span [key, key + 0x00): the same key, read the multi-key way. */
const oneKeyEnd = (key: Uint8Array): Uint8Array => {
  const end = new Uint8Array(key.length + 1);
  end.set(key);
  return end;
};

describe("single-key reads inside a Txn", () => {
  it("a single-key Range op answers as the range task does", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(writeArb, fc.array(optionsArb, { minLength: 1, maxLength: 4 })), {
          minLength: 1,
          maxLength: 14,
        }),
        async (steps) => {
          await withStore(async (store) => {
            for (const [write, probes] of steps) {
              await applyWrite(store, write);
              for (const o of probes) {
                const r = rangeRequest(o, store.revision);
                const viaTxn = await settle(
                  store.txn({ compare: [], success: [{ range: r }], failure: [] }).then((t) => {
                    const op = t.responses[0];
                    if (op === undefined || !("range" in op)) throw new Error("no range response");
                    return op.range;
                  }),
                );
                const viaTask = await settle(store.range(r, { worker: false }));
                expect(outcome(viaTxn)).toEqual(outcome(viaTask));
              }
            }
          });
        },
      ),
      { seed: 20_261_207, numRuns: 40 },
    );
  });

  it("a single-key Range after the Txn's own writes sees them, as the range task does after the commit", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(writeArb, { maxLength: 8 }),
        // One write per key (etcd refuses a Txn that writes a key twice); the first is a put, so the Txn writes.
        fc.uniqueArray(fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...LEASES), fc.boolean()), {
          minLength: 1,
          selector: ([key]) => key,
        }),
        fc.array(optionsArb, { minLength: 1, maxLength: 5 }),
        async (before, txnWrites, probes) => {
          await withStore(async (store) => {
            for (const w of before) await applyWrite(store, w);
            const writes: RequestOp[] = txnWrites.map(([key, lease, del], i) =>
              del && i > 0 ? { deleteRange: { key: enc(key) } } : { put: { key: enc(key), value: enc(key), lease } },
            );
            // Only revisions the Txn can read: its own (not asked, or asked as the new revision), or the one before.
            const newRev = store.revision + 1;
            const reads = probes.map((o) =>
              rangeRequest({ ...o, revBack: Math.min(2, Math.max(0, o.revBack)) }, newRev),
            );
            const txn = await store.txn({
              compare: [],
              success: [...writes, ...reads.map((range) => ({ range }))],
              failure: [],
            });
            for (const [i, r] of reads.entries()) {
              const op = txn.responses[writes.length + i];
              if (op === undefined || !("range" in op)) throw new Error("no range response");
              const asked = r.revision === undefined ? { revision: txn.revision } : {};
              const viaTask = await settle(store.range({ ...r, ...asked }, { worker: false }));
              expect(outcome(op.range)).toEqual(outcome(viaTask));
            }
          });
        },
      ),
      { seed: 20_261_208, numRuns: 40 },
    );
  });

  it("a single-key compare decides as the same compare over the one-key span", async () => {
    const compareArb = fc.record({
      key: fc.constantFrom(...KEYS),
      target: fc.constantFrom(...Object.values(CompareTarget)),
      result: fc.constantFrom(...Object.values(CompareResult)),
      number: fc.constantFrom(0, 1, 2, 3, 5, 8),
      value: fc.constantFrom("", "v", "value-two", "zzz"),
      lease: fc.constantFrom(...LEASES),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(writeArb, fc.array(compareArb, { minLength: 1, maxLength: 4 })), {
          minLength: 1,
          maxLength: 14,
        }),
        async (steps) => {
          await withStore(async (store) => {
            for (const [write, compares] of steps) {
              await applyWrite(store, write);
              for (const c of compares) {
                const single: Compare = {
                  key: enc(c.key),
                  target: c.target,
                  result: c.result,
                  version: c.number,
                  createRevision: c.number,
                  modRevision: c.number,
                  value: enc(c.value),
                  lease: c.lease,
                };
                const spanned: Compare = { ...single, rangeEnd: oneKeyEnd(single.key) };
                const a = await store.txn({ compare: [single], success: [], failure: [] });
                const b = await store.txn({ compare: [spanned], success: [], failure: [] });
                expect(a.succeeded).toBe(b.succeeded);
              }
            }
          });
        },
      ),
      { seed: 20_261_209, numRuns: 40 },
    );
  });

  it("a guarded update reads the key as it was, puts the next version, or gets it when the guard fails", async () => {
    await withStore(async (store) => {
      const key = enc("/registry/pods/ns/p");
      await store.put({ key, value: enc("v1"), lease: 7n });
      const first = await store.put({ key, value: enc("v2"), lease: 7n });
      const guarded = (mod: number, value: string) =>
        store.txn({
          compare: [{ key, target: CompareTarget.MOD, result: CompareResult.EQUAL, modRevision: mod }],
          success: [{ put: { key, value: enc(value), prevKv: true } }],
          failure: [{ range: { key } }],
        });
      const ok = await guarded(first.revision, "v3");
      expect(ok.succeeded).toBe(true);
      const put = ok.responses[0];
      if (put === undefined || !("put" in put) || put.put.prevKv === undefined) throw new Error("no prev kv");
      const prev = decodeKeyValue(put.put.prevKv);
      expect([dec(prev.value), prev.version, prev.lease]).toEqual(["v2", 2, 7n]);
      const now = await store.range({ key });
      const cur = decodeKeyValue(now.kvs[0] as Uint8Array);
      expect([dec(cur.value), cur.version, cur.lease, cur.modRevision]).toEqual(["v3", 3, 0n, ok.revision]);
      const stale = await guarded(first.revision, "v4");
      expect(stale.succeeded).toBe(false);
      const got = stale.responses[0];
      if (got === undefined || !("range" in got)) throw new Error("no range response");
      expect(got.range.kvs.map(hex)).toEqual(now.kvs.map(hex));
    });
  });
});
