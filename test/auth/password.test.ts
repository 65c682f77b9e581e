// Proves password handling matches etcd's: bcrypt hashes in Go's "$2a$<cost>$<salt><hash>" form, salted afresh
// each time; hashes made by Go's bcrypt (etcd's) verify here and a hash made here verifies in Go's; only the first
// 72 bytes of a password count, as in etcd; malformed hashes and costs outside Go's [4, 31] are refused without
// throwing; and many failed logins leave no state behind and lock nobody out.
import { afterEach, describe, expect, it } from "vitest";

import { SimpleTokenProvider } from "../../core/auth/tokens.js";
import { BCRYPT_DEFAULT_COST, hashPassword, isPasswordHash, verifyPassword } from "../../core/auth/password.js";
import { Harness, TEST_BCRYPT_COST } from "./helpers.js";

/** Made by golang.org/x/crypto/bcrypt (the library etcd 3.4.23 hashes with) at cost 4. */
const GO_HASHES: ReadonlyArray<readonly [string, string]> = [
  ["hunter2", "$2a$04$Yhe34zQC08wDxOH/tZOZ8.o53HPYFXn//5Z8Lkmg3ETf4c82MZ7xm"],
  ["", "$2a$04$lZV.XGnhogGCeA.Jzglq4.nRuOqVXrbGs5pn9ehyro1pwyYp1y88u"],
  ["a".repeat(72) + "bbbb", "$2a$04$DPTQO8ZN/csjIybDnWvjlOOJg319d6VKu1I.SI1taFLQepQSn0t0W"],
  ["pässwörd", "$2a$04$fnwMv2AYphb9DzeHETwtIuu2dympxeaOch51933oUpAFwld8p6wK6"],
];
/** Made by hashPassword("hunter2", 4); Go's bcrypt.CompareHashAndPassword accepts it for "hunter2" only. */
const OUR_HASH = "$2a$04$6eLYHD9Jnr9/U6GgGWRUte4T/cmWeq7zNTclwdhE/upk9F13fufHe";

describe("bcrypt password hashes", () => {
  it("are Go-style, salted, and verify only the right password", async () => {
    const a = await hashPassword("hunter2", TEST_BCRYPT_COST);
    const b = await hashPassword("hunter2", TEST_BCRYPT_COST);
    expect(a).toMatch(/^\$2a\$04\$[./A-Za-z0-9]{53}$/);
    expect(a, "a fresh salt each time").not.toBe(b);
    expect(await verifyPassword("hunter2", a)).toBe(true);
    expect(await verifyPassword("hunter3", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
    expect(BCRYPT_DEFAULT_COST, "etcd's --bcrypt-cost default").toBe(10);
    expect(await hashPassword("x")).toMatch(/^\$2a\$10\$/);
  });

  it("verify hashes made by etcd's Go bcrypt, and make hashes Go verifies", async () => {
    for (const [pw, h] of GO_HASHES) {
      expect(await verifyPassword(pw, h), pw).toBe(true);
      expect(await verifyPassword(pw + "x", h), pw + "x").toBe(pw.length >= 72);
    }
    expect(await verifyPassword("hunter2", OUR_HASH)).toBe(true);
    expect(await verifyPassword("hunter", OUR_HASH)).toBe(false);
  });

  it("count only a password's first 72 bytes, as etcd", async () => {
    const h = await hashPassword("a".repeat(72) + "tail", TEST_BCRYPT_COST);
    expect(await verifyPassword("a".repeat(72), h)).toBe(true);
    expect(await verifyPassword("a".repeat(72) + "other", h)).toBe(true);
    expect(await verifyPassword("a".repeat(71), h)).toBe(false);
    const big = "x".repeat(1024 * 1024);
    expect(await verifyPassword(big, await hashPassword(big, TEST_BCRYPT_COST))).toBe(true);
  });

  it("refuse malformed hashes and costs outside [4, 31] without throwing", async () => {
    const good = await hashPassword("pw", TEST_BCRYPT_COST);
    const bad = [
      "",
      "pw",
      "$scrypt$ln=14,r=8,p=1$c2FsdA==$a2V5",
      good.replace("$04$", "$03$"),
      good.replace("$04$", "$32$"),
      good.slice(0, -1),
    ];
    for (const h of bad) {
      expect(isPasswordHash(h), h).toBe(false);
      expect(await verifyPassword("pw", h), h).toBe(false);
    }
    expect(isPasswordHash(good)).toBe(true);
    await expect(hashPassword("pw", 3)).rejects.toThrow(/outside \[4, 31\]/);
    await expect(hashPassword("pw", 32)).rejects.toThrow(/outside \[4, 31\]/);
  });
});

describe("failed logins", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("500 failed logins (wrong password, unknown users) keep no tokens and lock nobody out", async () => {
    const provider = new SimpleTokenProvider({ ttlSeconds: 300 });
    h = new Harness({ provider: () => provider });
    await h.addUser("alice", "pw");
    await h.enableWithRoot();
    const failures = await Promise.allSettled(
      Array.from({ length: 500 }, (_, i) => h.store.authenticate(i % 2 === 0 ? "alice" : `ghost${i}`, `wrong${i}`)),
    );
    const codes = new Set(
      failures.map((r) => (r.status === "rejected" ? (r.reason as { code?: string }).code : "fulfilled")),
    );
    expect([...codes]).toEqual(["AUTH_FAILED"]);
    expect(provider.size, "no token issued or kept").toBe(0);
    const token = await h.store.authenticate("alice", "pw");
    expect(h.store.authInfoFromToken(token).username).toBe("alice");
    expect(await h.store.checkPassword("root", "rootpw")).toBe(true);
  });
});
