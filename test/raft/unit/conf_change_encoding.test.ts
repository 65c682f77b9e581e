// Proves the ConfChange binary encoding round-trips for every type, any 64-bit id and any context (property
// test, fixed seed), and that truncated or corrupted input is refused with a RaftError, never misread.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeConfChange, encodeConfChange } from "../../../core/raft/conf_change.js";
import { RaftError } from "../../../core/raft/errors.js";
import { ConfChangeType, type ConfChange } from "../../../core/raft/types.js";

const SEED = 20261125;

const arbConfChange: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom(...Object.values(ConfChangeType)),
  nodeId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  context: fc.uint8Array({ maxLength: 600 }),
});

describe("conf change encoding", () => {
  it("round-trips any conf change", () => {
    fc.assert(
      fc.property(arbConfChange, (cc) => {
        const back = decodeConfChange(encodeConfChange(cc));
        expect(back.type).toBe(cc.type);
        expect(back.nodeId).toBe(cc.nodeId);
        expect(Array.from(back.context)).toEqual(Array.from(cc.context));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it("refuses every strict prefix and any extra trailing byte", () => {
    fc.assert(
      fc.property(arbConfChange, (cc) => {
        const b = encodeConfChange(cc);
        for (const cut of [0, 1, 9, 10, b.length - 1]) {
          if (cut >= b.length) continue;
          expect(() => decodeConfChange(b.subarray(0, cut)), `prefix of ${cut}/${b.length} bytes`).toThrowError(
            RaftError,
          );
        }
        const longer = new Uint8Array(b.length + 1);
        longer.set(b);
        expect(() => decodeConfChange(longer)).toThrowError(RaftError);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("refuses an unknown version or type", () => {
    const b = encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 7n, context: new Uint8Array([1, 2]) });
    const badVersion = b.slice();
    badVersion[0] = 2;
    expect(() => decodeConfChange(badVersion)).toThrowError(/version 2/);
    const badType = b.slice();
    badType[1] = 9;
    expect(() => decodeConfChange(badType)).toThrowError(/type\(9\)/);
  });

  it("decodes from a view into a larger buffer (byteOffset ≠ 0)", () => {
    const b = encodeConfChange({
      type: ConfChangeType.RemoveNode,
      nodeId: 0xfedcba9876543210n,
      context: new Uint8Array([5]),
    });
    const big = new Uint8Array(b.length + 7);
    big.set(b, 7);
    expect(decodeConfChange(big.subarray(7)).nodeId).toBe(0xfedcba9876543210n);
  });
});
