// Proves key permissions as etcd grants them: on a key, a range, a prefix and "\0" from-key, merged across
// roles and permission types (a range is permitted when the union of the user's intervals covers it, even
// split over roles), root role = everything, auth disabled = everything, and etcd's errors from
// checkPermission. A fast-check property compares the store against a brute-force checker that tests every
// key of a finite universe which holds every boundary the intervals can have.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { PermType, type Permission } from "../../core/auth/auth_store.js";
import { IntervalSet, permissionInterval } from "../../core/auth/range_perms.js";
import { JwtTokenProvider } from "../../core/auth/tokens.js";
import { generateKeyPairSync } from "node:crypto";
import { Harness, enc } from "./helpers.js";

const NONE = new Uint8Array(0);
const FROM_KEY = Uint8Array.of(0);
const perm = (permType: PermType, key: string, rangeEnd: Uint8Array | string = NONE): Permission => ({
  permType,
  key: enc(key),
  rangeEnd: typeof rangeEnd === "string" ? enc(rangeEnd) : rangeEnd,
});

describe("permission checks through the store", () => {
  let h: Harness;
  beforeAll(async () => {
    h = new Harness();
    await h.apply((tx, s) => {
      s.roleAdd(tx, "keys");
      s.roleGrantPermission(tx, "keys", perm(PermType.READ, "a"));
      s.roleGrantPermission(tx, "keys", perm(PermType.WRITE, "w"));
      s.roleAdd(tx, "ranges");
      s.roleGrantPermission(tx, "ranges", perm(PermType.READWRITE, "b", "c")); // prefix "b"
      s.roleAdd(tx, "more");
      s.roleGrantPermission(tx, "more", perm(PermType.READ, "c", "e")); // touches [b, c): merged [b, e)
      s.roleGrantPermission(tx, "more", perm(PermType.READ, "x", FROM_KEY));
    });
    await h.addUser("u", "pw", ["keys", "ranges", "more"]);
    await h.addUser("nobody", "pw");
    await h.addUser("admin", "pw", ["root"]);
  });
  afterAll(async () => {
    await h.close();
  });

  it("with auth disabled everything is permitted, even for unknown users", () => {
    expect(h.store.authInfoFromCommonName("u"), "no identity from a certificate while auth is off").toBeUndefined();
    expect(h.store.isRangePermitted("ghost", enc("q"), undefined)).toBe(true);
    expect(h.store.isPutPermitted("ghost", enc("q"))).toBe(true);
    expect(() => h.store.checkPermission(undefined, { op: "put", key: enc("q") })).not.toThrow();
  });

  it("checks a key, a range, a prefix and from-key against merged intervals", async () => {
    await h.enableWithRoot();
    const s = h.store;
    const read = (k: string, e?: Uint8Array | string): boolean =>
      s.isRangePermitted("u", enc(k), typeof e === "string" ? enc(e) : e);
    const cases: Array<[string, boolean, boolean]> = [
      ["a", read("a"), true],
      ["a a\\0 (the key as a range)", read("a", Uint8Array.of(0x61, 0)), true],
      ["a b (more than the key)", read("a", "b"), false],
      ["aa", read("aa"), false],
      ["b", read("b"), true],
      ["prefix b", read("b", "c"), true],
      ["[b, e) across two roles", read("b", "e"), true],
      ["[b, e\\0) one key too far", read("b", Uint8Array.of(0x65, 0)), false],
      ["d", read("d"), true],
      ["e", read("e"), false],
      ["from-key x", read("x", FROM_KEY), true],
      ["from-key w", read("w", FROM_KEY), false],
      ["[x, zzzz)", read("x", "zzzz"), true],
      ["zzz", read("zzz"), true],
      ["everything", read("\0", FROM_KEY), false],
    ];
    for (const [name, got, want] of cases) expect(got, `range ${name}`).toBe(want);
    expect(s.isPutPermitted("u", enc("w")), "put w").toBe(true);
    expect(s.isPutPermitted("u", enc("a")), "put a (read only)").toBe(false);
    expect(s.isPutPermitted("u", enc("bq")), "put in readwrite prefix").toBe(true);
    expect(s.isDeleteRangePermitted("u", enc("b"), enc("c")), "delete prefix b").toBe(true);
    expect(s.isDeleteRangePermitted("u", enc("b"), enc("d")), "delete [b, d): [c, e) is read only").toBe(false);
    expect(s.isRangePermitted("nobody", enc("a"), undefined), "no roles").toBe(false);
    expect(s.isRangePermitted("ghost", enc("a"), undefined), "unknown user").toBe(false);
    expect(s.isRangePermitted("admin", enc("\0"), FROM_KEY), "root role reads everything").toBe(true);
    expect(s.isDeleteRangePermitted("admin", enc("\0"), FROM_KEY), "root role deletes everything").toBe(true);
  });

  it("sees a grant or revoke at once (the per-user cache is dropped)", async () => {
    const s = h.store;
    expect(s.isPutPermitted("u", enc("new"))).toBe(false);
    await h.apply((tx, st) => st.roleGrantPermission(tx, "keys", perm(PermType.WRITE, "new")));
    expect(s.isPutPermitted("u", enc("new"))).toBe(true);
    await h.apply((tx, st) => st.roleRevokePermission(tx, "keys", enc("new"), NONE));
    expect(s.isPutPermitted("u", enc("new"))).toBe(false);
    await h.apply((tx, st) => st.userRevokeRole(tx, "u", "more"));
    expect(s.isRangePermitted("u", enc("d"), undefined)).toBe(false);
    await h.apply((tx, st) => st.userGrantRole(tx, "u", "more"));
    expect(s.isRangePermitted("u", enc("d"), undefined)).toBe(true);
  });

  it("a client certificate's common name stands for the user at the current revision", () => {
    const s = h.store;
    const info = s.authInfoFromCommonName("u");
    expect(info).toEqual({ username: "u", revision: s.revision });
    expect(() => s.checkPermission(info, { op: "range", key: enc("a") })).not.toThrow();
    expect(() => s.checkPermission(s.authInfoFromCommonName("stranger"), { op: "range", key: enc("a") })).toThrow(
      expect.objectContaining({ code: "PERMISSION_DENIED" }),
    );
  });

  it("checkPermission raises etcd's errors: no user, old revision, denied, admin", async () => {
    const s = h.store;
    const rev = s.revision;
    const codeOf = (f: () => void): string | undefined => {
      try {
        f();
        return undefined;
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    expect(codeOf(() => s.checkPermission(undefined, { op: "range", key: enc("a") }))).toBe("USER_EMPTY");
    expect(codeOf(() => s.checkPermission({ username: "u", revision: rev - 1 }, { op: "range", key: enc("a") }))).toBe(
      "AUTH_OLD_REVISION",
    );
    expect(
      codeOf(() => s.checkPermission({ username: "u", revision: rev }, { op: "range", key: enc("a") })),
    ).toBeUndefined();
    expect(codeOf(() => s.checkPermission({ username: "u", revision: rev }, { op: "put", key: enc("a") }))).toBe(
      "PERMISSION_DENIED",
    );
    expect(codeOf(() => s.checkPermission({ username: "u", revision: rev }, { op: "admin" }))).toBe(
      "PERMISSION_DENIED",
    );
    expect(codeOf(() => s.checkPermission({ username: "gone", revision: rev }, { op: "admin" }))).toBe(
      "USER_NOT_FOUND",
    );
    expect(codeOf(() => s.checkPermission({ username: "", revision: rev }, { op: "admin" }))).toBe("USER_EMPTY");
    expect(codeOf(() => s.checkPermission({ username: "admin", revision: rev }, { op: "admin" }))).toBeUndefined();
  });
});

// ---- property: the store against a brute-force checker ----

const ALPHABET = [0x00, 0x61, 0x62] as const;
const MAX_KEY_LEN = 3;

/**
 * Every byte string over ALPHABET up to MAX_KEY_LEN + 1 bytes. Generated keys and range ends are at most
 * MAX_KEY_LEN long, so every boundary of every interval (a key, a range end, key+"\0") is in the universe;
 * an uncovered part of a request starts at such a boundary, so the universe holds a witness whenever the
 * real key space does.
 */
function universe(): Uint8Array[] {
  const out: Uint8Array[] = [new Uint8Array(0)];
  let layer: Uint8Array[] = [new Uint8Array(0)];
  for (let len = 1; len <= MAX_KEY_LEN + 1; len++) {
    layer = layer.flatMap((p) => ALPHABET.map((b) => Uint8Array.of(...p, b)));
    out.push(...layer);
  }
  return out;
}
const UNIVERSE = universe();
const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);
const isFromKey = (e: Uint8Array): boolean => e.length === 1 && e[0] === 0;

/** Whether key w is in a granted permission (etcd's meaning of key/range_end, written out directly). */
function inPermission(w: Uint8Array, p: Permission): boolean {
  if (p.rangeEnd.length === 0) return cmp(w, p.key) === 0;
  if (isFromKey(p.rangeEnd)) return cmp(w, p.key) >= 0;
  return cmp(w, p.key) >= 0 && cmp(w, p.rangeEnd) < 0;
}

/** The keys a request names: a key, [key, end), from-key; an end at or below the key means the key alone. */
function inRequest(w: Uint8Array, key: Uint8Array, end: Uint8Array): boolean {
  if (end.length === 0 || (!isFromKey(end) && cmp(end, key) <= 0)) return cmp(w, key) === 0;
  if (isFromKey(end)) return cmp(w, key) >= 0;
  return cmp(w, key) >= 0 && cmp(w, end) < 0;
}

function bruteForce(perms: readonly Permission[], key: Uint8Array, end: Uint8Array, kind: "read" | "write"): boolean {
  const usable = perms.filter(
    (p) => p.permType === PermType.READWRITE || p.permType === (kind === "read" ? PermType.READ : PermType.WRITE),
  );
  return UNIVERSE.every((w) => !inRequest(w, key, end) || usable.some((p) => inPermission(w, p)));
}

const keyArb = fc
  .array(fc.constantFrom(...ALPHABET), { minLength: 0, maxLength: MAX_KEY_LEN })
  .map((a) => Uint8Array.from(a));
const endArb = fc.oneof(fc.constant(NONE), fc.constant(FROM_KEY), keyArb);
const permArb = fc.record({
  permType: fc.constantFrom(PermType.READ, PermType.WRITE, PermType.READWRITE),
  key: keyArb,
  rangeEnd: endArb,
});
const SEED = Number(process.env["FC_SEED"] ?? 20261125);

describe("property: permitted iff the union of the user's intervals covers the request", () => {
  it("IntervalSet.coversRequest agrees with the brute-force checker (pure)", () => {
    fc.assert(
      fc.property(fc.array(permArb, { maxLength: 8 }), keyArb, endArb, (perms, key, end) => {
        const set = IntervalSet.of(perms.flatMap((p) => permissionInterval(p.key, p.rangeEnd) ?? []));
        const want = UNIVERSE.every((w) => !inRequest(w, key, end) || perms.some((p) => inPermission(w, p)));
        return set.coversRequest(key, end) === want;
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("the store's range/put/delete checks agree with it for users with several roles", async () => {
    const h = new Harness();
    try {
      await h.enableWithRoot();
      let run = 0;
      const roleSets = fc.array(fc.array(permArb, { maxLength: 5 }), { minLength: 1, maxLength: 3 });
      const requests = fc.array(fc.tuple(keyArb, endArb), { minLength: 1, maxLength: 10 });
      await fc.assert(
        fc.asyncProperty(roleSets, requests, async (roles, reqs) => {
          run++;
          const user = `u${run}`;
          await h.apply((tx, s) => {
            s.userAdd(tx, user, undefined, true);
            roles.forEach((perms, i) => {
              s.roleAdd(tx, `${user}-r${i}`);
              for (const p of perms) s.roleGrantPermission(tx, `${user}-r${i}`, p);
              s.userGrantRole(tx, user, `${user}-r${i}`);
            });
          });
          // A later grant of the same key and range end replaces the type: use what the store kept.
          const all = roles.flatMap((_, i) => h.store.roleGet(`${user}-r${i}`).permissions);
          for (const [key, end] of reqs) {
            const s = h.store;
            if (s.isRangePermitted(user, key, end) !== bruteForce(all, key, end, "read")) return false;
            if (s.isDeleteRangePermitted(user, key, end) !== bruteForce(all, key, end, "write")) return false;
            if (s.isPutPermitted(user, key) !== bruteForce(all, key, NONE, "write")) return false;
          }
          return true;
        }),
        { seed: SEED, numRuns: 150 },
      );
    } finally {
      await h.close();
    }
  });
});

describe("JWT tokens carry the revision they were issued at", () => {
  it("a token from before an auth change gets AUTH_OLD_REVISION; a fresh one passes", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const h = new Harness({
      provider: () =>
        new JwtTokenProvider({
          signMethod: "ES256",
          keys: { kind: "asymmetric", privateKey, publicKey },
          ttlMs: 60_000,
        }),
    });
    try {
      await h.apply((tx, s) => {
        s.roleAdd(tx, "r");
        s.roleGrantPermission(tx, "r", perm(PermType.READ, "k"));
      });
      await h.addUser("u", "pw", ["r"]);
      await h.enableWithRoot();
      const old = h.store.authInfoFromToken(await h.store.authenticate("u", "pw"));
      await h.apply((tx, s) => s.roleAdd(tx, "other"));
      expect(() => h.store.checkPermission(old, { op: "range", key: enc("k") })).toThrow(
        expect.objectContaining({ code: "AUTH_OLD_REVISION" }),
      );
      const fresh = h.store.authInfoFromToken(await h.store.authenticate("u", "pw"));
      expect(fresh.revision, `fresh token revision ${fresh.revision}`).toBe(h.store.revision);
      expect(() => h.store.checkPermission(fresh, { op: "range", key: enc("k") })).not.toThrow();
    } finally {
      await h.close();
    }
  });
});
