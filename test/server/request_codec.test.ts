// Proves Raft entry payloads round-trip: a put without auth in its fixed binary form (every flag, lease, empty
// and binary keys and values), everything else through msgpackr, and puts written in the msgpackr form (by older
// builds, still in WALs) still decode; a truncated put is refused, not misread.
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decodePayload, encodePayload, type RaftPayload } from "../../core/server/request_codec.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
/** Bytes as plain arrays (msgpackr gives Buffers, the binary form subarrays), so payloads compare by content. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

describe("Raft payload codec", () => {
  it("round-trips puts in the binary form, with every option", () => {
    const cases: RaftPayload[] = [
      {
        id: 1n,
        req: {
          put: { key: enc("k"), value: enc("v"), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
        },
      },
      {
        id: 0xffff_ffff_ffff_fff0n,
        req: {
          put: {
            key: new Uint8Array([0, 255, 0]),
            value: new Uint8Array(0),
            lease: 0x7fff_ffff_ffff_ffffn,
            prevKv: true,
            ignoreValue: true,
            ignoreLease: true,
          },
        },
      },
      {
        id: 42n,
        req: {
          put: {
            key: enc("only-prev"),
            value: new Uint8Array(70_000).fill(7),
            lease: 5n,
            prevKv: true,
            ignoreValue: false,
            ignoreLease: false,
          },
        },
      },
    ];
    for (const p of cases) {
      const bytes = encodePayload(p);
      expect(bytes[0], "binary put form").toBe(0);
      expect(plain(decodePayload(bytes))).toEqual(plain(p));
    }
  });

  it("keeps msgpackr for other requests and for puts with auth", () => {
    const others: RaftPayload[] = [
      { id: 7n, req: { deleteRange: { key: enc("a"), rangeEnd: enc("b"), prevKv: true } } },
      { id: 8n, req: { leaseGrant: { id: 99n, ttl: 10 } } },
      {
        id: 9n,
        req: {
          put: { key: enc("k"), value: enc("v"), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
        },
        auth: { username: "u", revision: 3 },
      },
    ];
    for (const p of others) {
      const bytes = encodePayload(p);
      expect(bytes[0]).not.toBe(0);
      expect(plain(decodePayload(bytes))).toEqual(plain(p));
    }
  });

  it("decodes puts an older build wrote with msgpackr", () => {
    const old = new Packr({ useRecords: false, int64AsType: "bigint", mapsAsObjects: true });
    const p: RaftPayload = {
      id: 5n,
      req: {
        put: { key: enc("k"), value: enc("v"), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
      },
    };
    expect(plain(decodePayload(old.pack(p)))).toEqual(plain(p));
  });

  it("refuses a truncated binary put", () => {
    const bytes = encodePayload({ id: 1n, req: { put: { key: enc("key"), value: enc("v") } } });
    expect(() => decodePayload(bytes.subarray(0, 10))).toThrow(/truncated/);
    const badLen = bytes.slice();
    badLen[21] = 200; // key length past the end
    expect(() => decodePayload(badLen)).toThrow(/key of/);
  });
});
