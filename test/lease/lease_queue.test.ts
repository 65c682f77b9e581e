// Proves the lazy min-heap under the lessor pops entries in time order whatever the push order, and that
// rebuild/compact keep exactly the entries asked for, still in heap order (fast-check, fixed seed).
import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { LeaseQueue } from "../../core/lease/lease_queue.js";

const SEED = 20261125;

function drain(q: LeaseQueue): number[] {
  const out: number[] = [];
  for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.atMs);
  return out;
}

describe("LeaseQueue", () => {
  it("pops in non-decreasing time order after any interleaving of pushes and pops", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const q = new LeaseQueue();
        const model: number[] = [];
        for (const [i, op] of ops.entries()) {
          if (op < 0) {
            model.sort((a, b) => a - b);
            expect(q.pop()?.atMs, `pop at op ${i}`).toBe(model.shift());
          } else {
            q.push({ atMs: op, id: BigInt(i), seq: i });
            model.push(op);
          }
        }
        expect(drain(q)).toEqual(model.sort((a, b) => a - b));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("compact keeps only the live entries and rebuild heapifies any array", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
        const q = new LeaseQueue();
        times.forEach((t, i) => q.push({ atMs: t, id: BigInt(i), seq: i }));
        q.compact((e) => e.id % 3n !== 0n);
        const kept = times.filter((_, i) => i % 3 !== 0).sort((a, b) => a - b);
        expect(q.length, `${times.length} pushed`).toBe(kept.length);
        expect(drain(q)).toEqual(kept);
        q.rebuild(times.map((t, i) => ({ atMs: t, id: BigInt(i), seq: i })));
        expect(drain(q)).toEqual([...times].sort((a, b) => a - b));
      }),
      { seed: SEED, numRuns: 100 },
    );
  });
});
