// Proves password handling: scrypt hashes in the self-describing "$scrypt$ln=…,r=…,p=…$salt$key" format with
// a fresh salt each time, verification true only for the right password (including empty and 1 MiB ones),
// malformed or over-costly stored hashes refused without throwing, and that many failed logins leave no
// state behind and lock nobody out.
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
      "$2a$10$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234", // a bcrypt hash from real etcd
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
