// The KeyValue codec round-trips every field at its edges: revisions past the 7-byte varints read without BigInt
// (up to 2^53 − 1), negative and 64-bit lease ids, empty keys and values; unknown fields are skipped; a keys_only
// copy drops just the value field, with multi-byte lengths before and after it.
import { describe, expect, it } from "vitest";

import { decodeKeyValue, encodeKeyValue, withoutValue, type KeyValue } from "../../core/mvcc/kv_codec.js";

const kv = (over: Partial<KeyValue>): KeyValue => ({
  key: new Uint8Array([1, 2]),
  createRevision: 1,
  modRevision: 2,
  version: 3,
  value: new Uint8Array([9]),
  lease: 0n,
  ...over,
});

describe("kv_codec", () => {
  it("round-trips revisions of every varint length up to 2^53 - 1", () => {
    for (let bits = 0; bits <= 53; bits++) {
      const n = bits === 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits;
      const back = decodeKeyValue(encodeKeyValue(kv({ createRevision: n, modRevision: n - 1 || 1, version: n })));
      expect([back.createRevision, back.modRevision, back.version]).toEqual([n, n - 1 || 1, n]);
    }
  });

  it("round-trips lease ids, empty keys and empty values", () => {
    for (const lease of [1n, 0x7fffffffffffffffn, -1n, -(2n ** 63n), 123456789012345n]) {
      expect(decodeKeyValue(encodeKeyValue(kv({ lease }))).lease).toBe(lease);
    }
    const back = decodeKeyValue(encodeKeyValue(kv({ key: new Uint8Array(0), value: new Uint8Array(0) })));
    expect([back.key.length, back.value.length, back.version]).toEqual([0, 0, 3]);
  });

  it("skips unknown varint and bytes fields", () => {
    const known = encodeKeyValue(kv({ lease: 5n }));
    const extra = Uint8Array.from([
      (9 << 3) | 0,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0x01,
      (10 << 3) | 2,
      2,
      7,
      7,
    ]);
    const back = decodeKeyValue(Uint8Array.from([...extra, ...known]));
    expect(back).toEqual(decodeKeyValue(Uint8Array.from(known)));
    expect(() => decodeKeyValue(Uint8Array.from([(2 << 3) | 0, 0x80]))).toThrow(/truncated varint/);
  });

  it("drops only the value field for keys_only", () => {
    const long = new Uint8Array(1001).fill(0x4c);
    const cases = [
      kv({}),
      kv({ key: long, value: long, lease: -1n }),
      kv({ value: new Uint8Array(200_000).fill(1), version: 2 ** 40 }),
      kv({ value: new Uint8Array(0), lease: 5n }),
    ];
    for (const c of cases) {
      const bytes = encodeKeyValue(c);
      expect(Buffer.from(withoutValue(bytes))).toEqual(encodeKeyValue({ ...c, value: new Uint8Array(0) }));
    }
    expect(() => withoutValue(Uint8Array.from([(1 << 3) | 2, 0x80]))).toThrow(/truncated varint/);
  });
});
