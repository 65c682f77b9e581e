// Proves password handling: scrypt hashes in the self-describing "$scrypt$ln=…,r=…,p=…$salt$key" format with
// a fresh salt each time, verification true only for the right password (including empty and 1 MiB ones),
// malformed or over-costly stored hashes refused without throwing, bcrypt hashes as etcd (Go's bcrypt) writes
// them verified and made, and that many failed logins leave no state behind and lock nobody out.
import { afterEach, describe, expect, it } from "vitest";

import { SimpleTokenProvider } from "../../core/auth/tokens.js";
import { SCRYPT_DEFAULT_COST_LOG2, hashPassword, isPasswordHash, verifyPassword } from "../../core/auth/password.js";
import { Harness, TEST_COST_LOG2 } from "./helpers.js";

describe("scrypt password hashes", () => {
  it("are self-describing, salted, and verify only the right password", async () => {
    const a = await hashPassword("hunter2", TEST_COST_LOG2);
    const b = await hashPassword("hunter2", TEST_COST_LOG2);
    expect(a).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(a, "a fresh salt each time").not.toBe(b);
    expect(await verifyPassword("hunter2", a)).toBe(true);
    expect(await verifyPassword("hunter3", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
  });

  it("handle a 0-byte and a 1 MiB password", async () => {
    const big = "x".repeat(1024 * 1024);
    const hEmpty = await hashPassword("", TEST_COST_LOG2);
    const hBig = await hashPassword(big, TEST_COST_LOG2);
    expect(await verifyPassword("", hEmpty)).toBe(true);
    expect(await verifyPassword("x", hEmpty)).toBe(false);
    expect(await verifyPassword(big, hBig)).toBe(true);
    expect(await verifyPassword(big.slice(1), hBig)).toBe(false);
  });

  it("refuse malformed and over-costly hashes without throwing", async () => {
    const good = await hashPassword("pw", TEST_COST_LOG2);
    const bad = [
      "",
      "pw",
      "$2a$03$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234", // bcrypt below its minimum cost
      "$2a$10$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ0123", // one character short
      good.replace("ln=10", "ln=30"),
      good.replace("ln=10", "ln=0"),
      good.replace(/\$[^$]+$/, "$"),
    ];
    for (const h of bad) {
      expect(isPasswordHash(h), h).toBe(false);
      expect(await verifyPassword("pw", h), h).toBe(false);
    }
    expect(isPasswordHash(good)).toBe(true);
    expect(SCRYPT_DEFAULT_COST_LOG2, "default cost ≈ bcrypt cost 10 in time").toBe(14);
  });
});

describe("bcrypt password hashes (etcd's)", () => {
  // Made by Go's golang.org/x/crypto/bcrypt (what etcd 3.4 uses) for "hunter2" at cost 4.
  const FROM_GO = "$2a$04$PrxvTE8w.IPVJNEM2KZ/o.EXkZZTyZ86W00lzXRo9NPTe4gUXYzr6";

  it("verify a hash Go's bcrypt made, only for the right password", async () => {
    expect(isPasswordHash(FROM_GO)).toBe(true);
    expect(await verifyPassword("hunter2", FROM_GO)).toBe(true);
    expect(await verifyPassword("hunter3", FROM_GO)).toBe(false);
    expect(await verifyPassword("", FROM_GO)).toBe(false);
  });

  it("are made at the configured cost, salted, and verify", async () => {
    const a = await hashPassword("hunter2", { bcryptCost: 4 });
    const b = await hashPassword("hunter2", { bcryptCost: 4 });
    expect(a).toMatch(/^\$2[ab]\$04\$[./A-Za-z0-9]{53}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword("hunter2", a)).toBe(true);
    expect(await verifyPassword("hunter2!", a)).toBe(false);
    await expect(hashPassword("x", { bcryptCost: 3 })).rejects.toThrow(/cost 3/);
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
    const codes = new Set(failures.map((r) => (r.status === "rejected" ? (r.reason as { code?: string }).code : "fulfilled")));
    expect([...codes]).toEqual(["AUTH_FAILED"]);
    expect(provider.size, "no token issued or kept").toBe(0);
    const token = await h.store.authenticate("alice", "pw");
    expect(h.store.authInfoFromToken(token).username).toBe("alice");
    expect(await h.store.checkPassword("root", "rootpw")).toBe(true);
  });
});
