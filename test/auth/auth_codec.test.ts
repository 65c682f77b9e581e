// Proves the auth buckets hold authpb records with etcd's field numbers (golden bytes worked out by hand
// from auth.proto), that records round-trip, that unknown fields are skipped, and that a truncated or
// invalid record is an error naming the message rather than a silent misread.
import { describe, expect, it } from "vitest";

import {
  decodeRevision,
  decodeRole,
  decodeUser,
  encodeRevision,
  encodeRole,
  encodeUser,
} from "../../core/auth/auth_codec.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/ /g, ""), "hex"));

describe("authpb encoding", () => {
  it("encodes a user as authpb.User: name=1, password=2, roles=3, options=4{no_password=1}", () => {
    const noPw = encodeUser({ name: "u", passwordHash: undefined, roles: ["r"], noPassword: true });
    expect(hex(noPw)).toBe("0a0175" + "1a0172" + "22020801");
    const withPw = encodeUser({ name: "ab", passwordHash: "h", roles: [], noPassword: false });
    expect(hex(withPw)).toBe("0a026162" + "120168" + "2200");
    expect(decodeUser(noPw)).toEqual({ name: "u", passwordHash: undefined, roles: ["r"], noPassword: true });
    expect(decodeUser(withPw)).toEqual({ name: "ab", passwordHash: "h", roles: [], noPassword: false });
  });

  it("encodes a role as authpb.Role: name=1, keyPermission=2{permType=1, key=2, range_end=3}", () => {
    const role = {
      name: "r",
      permissions: [
        { permType: 0, key: Uint8Array.of(0x61), rangeEnd: new Uint8Array(0) },
        { permType: 2, key: Uint8Array.of(0x62), rangeEnd: Uint8Array.of(0) },
      ],
    };
    const b = encodeRole(role);
    expect(hex(b)).toBe("0a0172" + "1203" + "120161" + "1208" + "0802" + "120162" + "1a0100");
    expect(decodeRole(b)).toEqual(role);
  });

  it("skips unknown fields of every wire type", () => {
    // name="u", then field 9 varint 300, field 10 fixed64, field 11 fixed32, field 12 bytes "zz".
    const b = bytes("0a0175 48ac02 510102030405060708 5d01020304 62027a7a");
    expect(decodeUser(b)).toEqual({ name: "u", passwordHash: undefined, roles: [], noPassword: false });
  });

  it("refuses truncated records, bad wire types, bad permission types and invalid UTF-8 names", () => {
    expect(() => decodeUser(bytes("0a05 7575"))).toThrow(/authpb.User: field 1 length 5 past end 4/);
    expect(() => decodeUser(bytes("48ff"))).toThrow(/authpb.User: truncated varint/);
    expect(() => decodeUser(bytes("0b"))).toThrow(/unsupported wire type 3/);
    expect(() => decodeRole(bytes("0a0172 1202 0807"))).toThrow(/permType 7/);
    expect(() => decodeUser(bytes("0a01ff"))).toThrow();
  });

  it("stores the auth revision as 8 bytes big-endian", () => {
    expect(hex(encodeRevision(1))).toBe("0000000000000001");
    expect(hex(encodeRevision(2 ** 40 + 5))).toBe("0000010000000005");
    expect(decodeRevision(encodeRevision(2 ** 53 - 1))).toBe(2 ** 53 - 1);
    expect(() => decodeRevision(Uint8Array.of(1))).toThrow(/1 bytes, want 8/);
  });
});
