// Proves the member encodings round-trip exactly for every 64-bit id and arbitrary names/URLs: the stored JSON
// (hex id) and the conf-change context (etcd's field names, the id as an exact bare uint64, as Go writes it).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeConfChangeContext,
  decodeMember,
  encodeConfChangeContext,
  encodeMember,
  memberIdOfKey,
  memberKey,
  type Member,
} from "../../core/membership/member_codec.js";

const memberArb: fc.Arbitrary<Member> = fc.record({
  id: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  name: fc.string(),
  peerUrls: fc.array(fc.string(), { minLength: 1, maxLength: 3 }),
  clientUrls: fc.array(fc.string(), { maxLength: 3 }),
  isLearner: fc.boolean(),
});

describe("member codec", () => {
  it("stored JSON and 8-byte keys round-trip", () => {
    fc.assert(
      fc.property(memberArb, (m) => {
        expect(decodeMember(encodeMember(m))).toEqual(m);
        expect(memberIdOfKey(memberKey(m.id))).toBe(m.id);
      }),
      { seed: 11, numRuns: 500 },
    );
  });

  it("conf-change context round-trips, ids above 2^53 included", () => {
    fc.assert(
      fc.property(memberArb, fc.boolean(), (m, isPromote) => {
        expect(decodeConfChangeContext(encodeConfChangeContext({ member: m, isPromote }))).toEqual({
          member: m,
          isPromote,
        });
      }),
      { seed: 12, numRuns: 500 },
    );
  });

  it("writes etcd's field names with the id as a bare integer", () => {
    const m: Member = {
      id: 18446744073709551615n,
      name: "",
      peerUrls: ["http://a:1"],
      clientUrls: [],
      isLearner: true,
    };
    const text = new TextDecoder().decode(encodeConfChangeContext({ member: m, isPromote: false }));
    expect(text).toBe('{"id":18446744073709551615,"peerURLs":["http://a:1"],"isLearner":true,"isPromote":false}');
  });

  it("refuses malformed stored values and keys", () => {
    expect(() => decodeMember(new TextEncoder().encode('{"id":12}'))).toThrow(/bad stored id/);
    expect(() => memberIdOfKey(new Uint8Array(7))).toThrow(/7 bytes/);
    expect(() => decodeConfChangeContext(new TextEncoder().encode('{"name":"x"}'))).toThrow(/without an id/);
  });
});
