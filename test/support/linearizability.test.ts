// Proves the linearizability checker accepts known-good histories and rejects known-bad ones (stale reads,
// lost writes, impossible CAS results), including calls whose outcome is unknown.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { checkKvHistory, type KvInput, type KvOutput, type Operation } from "./linearizability.js";

type Op = Operation<KvInput, KvOutput>;
const put = (c: number, v: string, t0: number, t1: number): Op => ({
  clientId: c,
  input: { kind: "put", key: "k", value: v },
  output: null,
  callTime: t0,
  returnTime: t1,
});
const get = (c: number, out: string | null, t0: number, t1: number): Op => ({
  clientId: c,
  input: { kind: "get", key: "k" },
  output: out,
  callTime: t0,
  returnTime: t1,
});
const cas = (c: number, expect: string | null, v: string, out: boolean | undefined, t0: number, t1: number): Op => ({
  clientId: c,
  input: { kind: "cas", key: "k", expect, value: v },
  output: out,
  callTime: t0,
  returnTime: t1,
});

describe("linearizability checker", () => {
  it("accepts a sequential history", () => {
    expect(checkKvHistory([put(0, "a", 0, 1), get(0, "a", 2, 3), put(0, "b", 4, 5), get(1, "b", 6, 7)]).ok).toBe(true);
  });

  it("accepts a read concurrent with a write returning either value", () => {
    expect(checkKvHistory([put(0, "a", 0, 1), put(0, "b", 2, 6), get(1, "a", 3, 4)]).ok).toBe(true);
    expect(checkKvHistory([put(0, "a", 0, 1), put(0, "b", 2, 6), get(1, "b", 3, 4)]).ok).toBe(true);
  });

  it("rejects a stale read after a write returned", () => {
    const r = checkKvHistory([put(0, "a", 0, 1), put(0, "b", 2, 3), get(1, "a", 4, 5)]);
    expect(r.ok).toBe(false);
    expect(r.unknown).toBe(false);
    expect(r.badKey).toBe("k");
  });

  it("rejects two reads that see writes in opposite orders", () => {
    // Writes a and b overlap; client 1 sees b then a, client 2 sees a then b, all after both writes returned.
    const h = [put(0, "a", 0, 10), put(1, "b", 0, 10), get(2, "b", 11, 12), get(2, "a", 13, 14), get(3, "b", 15, 16)];
    expect(checkKvHistory(h).ok).toBe(false);
  });

  it("rejects a CAS that succeeded against a value that was never there", () => {
    expect(checkKvHistory([put(0, "a", 0, 1), cas(1, "z", "c", true, 2, 3)]).ok).toBe(false);
    expect(checkKvHistory([put(0, "a", 0, 1), cas(1, "a", "c", true, 2, 3), get(0, "c", 4, 5)]).ok).toBe(true);
  });

  it("lets a call with unknown outcome take effect or not", () => {
    const timedOut: Op = { ...put(0, "x", 0, 1), returnTime: Infinity, output: undefined };
    expect(checkKvHistory([timedOut, get(1, "x", 5, 6)]).ok).toBe(true);
    expect(checkKvHistory([timedOut, get(1, null, 5, 6)]).ok).toBe(true);
    expect(checkKvHistory([timedOut, get(1, "x", 5, 6), get(1, null, 7, 8)]).ok).toBe(false);
  });

  it("accepts every history produced by a real sequential register (property, fixed seed)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 })), { maxLength: 40 }),
        (script) => {
          let value: string | null = null;
          const h: Op[] = [];
          script.forEach(([kind, v], t) => {
            if (kind === 0) {
              value = `v${v}`;
              h.push(put(t % 3, value, 2 * t, 2 * t + 1));
            } else if (kind === 1) h.push(get(t % 3, value, 2 * t, 2 * t + 1));
            else {
              const expect = `v${v}`;
              const ok = value === expect;
              if (ok) value = `w${t}`;
              h.push(cas(t % 3, expect, `w${t}`, ok, 2 * t, 2 * t + 1));
            }
          });
          return checkKvHistory(h).ok;
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });
});
