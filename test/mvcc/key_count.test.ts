// Proves the in-memory range count (key_count.ts) equals the count a full scan gives: for random creations and
// deletions at any past revision still in its log, across rebuilds of its sorted array and trims of its log; and
// through the KV store, for paged and count-only Ranges at old revisions, with keys that come and go inside one
// write batch, after reopen, and with the scan cut short once a page is full.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { KeyCount } from "../../core/mvcc/key_count.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import type { RangeRequest, WriteRequest } from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("KeyCount", () => {
  it("agrees with the live sets it was told about, at every revision it still covers", () => {
    const ids = ["a", "b", "ba", "c", "d", "e\u00ff", "f"];
    const op = fc.record({ id: fc.constantFrom(...ids), sameRev: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 4, max: 40 }), (ops, maxLog) => {
        const kc = new KeyCount(maxLog);
        kc.reset(1);
        const live = new Map<string, true>();
        const history = new Map<number, Set<string>>([[1, new Set()]]);
        let rev = 1;
        let oldest = 1;
        let logged = 0;
        for (const { id, sameRev } of ops) {
          if (!sameRev || rev === 1) rev += 1;
          const delta = live.has(id) ? -1 : 1;
          if (delta > 0) live.set(id, true);
          else live.delete(id);
          kc.record(rev, id, delta);
          history.set(rev, new Set(live.keys()));
          if (++logged > maxLog) [oldest, logged] = [rev, Math.floor(maxLog / 2)]; // at most what a trim keeps
          for (const [from, to] of [
            ["a", "c"],
            ["b", undefined],
            ["", undefined],
            ["c", "f"],
          ] as const) {
            for (let at = rev; at >= 1 && at >= rev - 6; at--) {
              const got = kc.count(live, rev, at, from, to);
              if (got === undefined) {
                expect(at, `only revisions before the log may be refused (at ${at})`).toBeLessThanOrEqual(oldest);
                continue;
              }
              const state = [...history.entries()].filter(([r]) => r <= at).sort((x, y) => y[0] - x[0])[0]![1];
              expect(got).toBe([...state].filter((k) => k >= from && (to === undefined || k < to)).length);
            }
          }
        }
      }),
      { seed: 20261207, numRuns: 200 },
    );
  });
});

describe("KvStore paged counts", () => {
  it("counts like a full scan for pages and count-only ranges at old revisions, across batches and reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mvcc-count-"));
    let store = KvStore.open(dir, {});
    try {
      const put = (k: string): WriteRequest => ({ put: { key: enc(k), value: enc(`v-${k}`) } });
      const del = (k: string, end?: string): WriteRequest => ({
        deleteRange: { key: enc(k), ...(end === undefined ? {} : { rangeEnd: enc(end) }) },
      });
      for (let i = 0; i < 40; i++) await store.write([put(`/p/${String(i).padStart(3, "0")}`)]);
      // One batch in which keys are created, deleted and created again at successive revisions.
      await store.write([put("/p/x"), del("/p/x"), put("/p/y"), del("/p/010", "/p/020"), put("/p/x"), put("/p/015")]);
      await store.write([del("/p/y"), put("/q/1")]);
      const check = async (): Promise<void> => {
        const top = store.revision;
        for (let rev = Math.max(2, top - 12); rev <= top; rev++) {
          for (const [key, end] of [
            ["/p/", "/p0"],
            ["/p/005", "/p/030"],
            ["/", "\u0000"],
            ["/p/x", "/q/2"],
          ] as const) {
            const span: RangeRequest = {
              key: enc(key),
              rangeEnd: end === "\u0000" ? new Uint8Array([0]) : enc(end),
              revision: rev,
            };
            const scanned = await store.range(span); // no limit: every key is read and counted
            const paged = await store.range({ ...span, limit: 3 });
            const countOnly = await store.range({ ...span, countOnly: true });
            expect([paged.count, countOnly.count], `${key}..${end} at ${rev}`).toEqual([scanned.count, scanned.count]);
            expect(paged.kvs).toEqual(scanned.kvs.slice(0, 3));
            expect(paged.more).toBe(scanned.count > 3);
          }
        }
      };
      await check();
      await store.close();
      store = KvStore.open(dir, {});
      await store.write([put("/p/new"), del("/p/000")]);
      await check();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
