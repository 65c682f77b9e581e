// Proves the token side of auth: simple tokens in etcd's "<16 letters>.<index>" form that expire after the
// TTL without use and are renewed by use (injected clock), are dropped on password change, user deletion
// and auth disable; JWTs for RS256/ES256 (and PS256, ES384, HS256) with keys generated here, refused when
// tampered, expired, signed by another key or with another algorithm; and every --auth-token error.
import { createHmac, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import {
  AuthTokenFlagError,
  ERR_VERIFY_ONLY,
  JwtTokenProvider,
  SimpleTokenProvider,
  parseAuthTokenFlag,
  type TokenProvider,
} from "../../core/auth/tokens.js";
import { Harness } from "./helpers.js";

const TTL_S = 300;
const TTL_MS = TTL_S * 1000;

describe("simple tokens through the store", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function setup(): Promise<void> {
    h = new Harness({ provider: () => new SimpleTokenProvider({ ttlSeconds: TTL_S }) });
    await h.addUser("alice", "pw");
    await h.apply((tx, s) => s.userAdd(tx, "svc", undefined, true));
  }

  it("authenticate needs auth enabled and the right password; --no-password users cannot log in", async () => {
    await setup();
    await expect(h.store.authenticate("alice", "pw")).rejects.toMatchObject({ code: "AUTH_NOT_ENABLED" });
    await h.enableWithRoot();
    await expect(h.store.authenticate("alice", "bad")).rejects.toMatchObject({ code: "AUTH_FAILED" });
    await expect(h.store.authenticate("nobody", "pw")).rejects.toMatchObject({ code: "AUTH_FAILED" });
    await expect(h.store.authenticate("svc", "")).rejects.toMatchObject({ code: "AUTH_FAILED" });
    const token = await h.store.authenticate("alice", "pw");
    expect(token).toMatch(/^[A-Za-z]{16}\.\d+$/);
    expect(h.store.authInfoFromToken(token)).toEqual({ username: "alice", revision: h.store.revision });
    expect(() => h.store.authInfoFromToken("abcdefghijklmnop.1")).toThrow(
      expect.objectContaining({ code: "INVALID_AUTH_TOKEN" }),
    );
  });

  it("expires after the TTL without use, and each use renews it (injected clock)", async () => {
    await setup();
    await h.enableWithRoot();
    const token = await h.store.authenticate("alice", "pw");
    h.nowMs += TTL_MS - 1;
    expect(h.store.authInfoFromToken(token).username, "used 1 ms before expiry").toBe("alice");
    h.nowMs += TTL_MS - 1;
    expect(h.store.authInfoFromToken(token).username, "the use above renewed it").toBe("alice");
    h.nowMs += TTL_MS;
    expect(() => h.store.authInfoFromToken(token), `unused for ${TTL_MS} ms`).toThrow(
      expect.objectContaining({ code: "INVALID_AUTH_TOKEN" }),
    );
  });

  it("a password change or user deletion drops the user's tokens; disable drops all", async () => {
    await setup();
    await h.addUser("bob", "pw");
    await h.enableWithRoot();
    const a = await h.store.authenticate("alice", "pw");
    const b = await h.store.authenticate("bob", "pw");
    const newHash = await h.store.hashPassword("pw2");
    await h.apply((tx, s) => s.userChangePassword(tx, "alice", newHash));
    expect(() => h.store.authInfoFromToken(a)).toThrow(expect.objectContaining({ code: "INVALID_AUTH_TOKEN" }));
    expect(h.store.authInfoFromToken(b).username).toBe("bob");
    await expect(h.store.authenticate("alice", "pw")).rejects.toMatchObject({ code: "AUTH_FAILED" });
    const a2 = await h.store.authenticate("alice", "pw2");
    await h.apply((tx, s) => s.userDelete(tx, "alice"));
    expect(() => h.store.authInfoFromToken(a2)).toThrow(expect.objectContaining({ code: "INVALID_AUTH_TOKEN" }));
    await h.apply((tx, s) => s.disable(tx));
    expect(() => h.store.authInfoFromToken(b)).toThrow(expect.objectContaining({ code: "INVALID_AUTH_TOKEN" }));
  });

  it("a password change during the hash is noticed: the old password does not get a token", async () => {
    await setup();
    await h.enableWithRoot();
    const newHash = await h.store.hashPassword("new");
    const pending = h.store.authenticate("alice", "pw");
    // Applied while the bcrypt of the login runs in the thread pool.
    await h.apply((tx, s) => s.userChangePassword(tx, "alice", newHash));
    await expect(pending).rejects.toMatchObject({ code: "AUTH_FAILED" });
  });
});

describe("SimpleTokenProvider", () => {
  it("uses the given raft index and prefix, and forgets expired tokens (bounded memory)", () => {
    const p = new SimpleTokenProvider({ ttlSeconds: 10 });
    p.enable();
    const prefix = p.genTokenPrefix();
    expect(prefix).toMatch(/^[A-Za-z]{16}$/);
    expect(p.assign("u", { revision: 3, nowMs: 0, index: 42, prefix })).toBe(`${prefix}.42`);
    for (let i = 0; i < 1000; i++) p.assign(`u${i % 7}`, { revision: 3, nowMs: i });
    expect(p.size).toBe(1001);
    p.assign("late", { revision: 3, nowMs: 10_000 + 1000 });
    expect(p.size, "every token unused for 10 s was swept on the next assign").toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// JWT

let keyDir: string;
const files: Record<string, string> = {};
beforeAll(() => {
  keyDir = mkdtempSync(join(tmpdir(), "auth-keys-"));
  const write = (name: string, key: KeyObject, type: "pkcs8" | "spki"): void => {
    const path = join(keyDir, name);
    writeFileSync(path, key.export({ type, format: "pem" }));
    files[name] = path;
  };
  const pairs = {
    rsa: generateKeyPairSync("rsa", { modulusLength: 2048 }),
    rsa2: generateKeyPairSync("rsa", { modulusLength: 2048 }),
    ec256: generateKeyPairSync("ec", { namedCurve: "prime256v1" }),
    ec256b: generateKeyPairSync("ec", { namedCurve: "prime256v1" }),
    ec384: generateKeyPairSync("ec", { namedCurve: "secp384r1" }),
  };
  for (const [name, pair] of Object.entries(pairs)) {
    write(`${name}.key`, pair.privateKey, "pkcs8");
    write(`${name}.pub`, pair.publicKey, "spki");
  }
  files["hmac.secret"] = join(keyDir, "hmac.secret");
  writeFileSync(files["hmac.secret"], "a shared secret of some length");
});
afterAll(() => {
  rmSync(keyDir, { recursive: true, force: true });
});

const f = (name: string): string => {
  const p = files[name];
  if (p === undefined) throw new Error(`no key file ${name}`);
  return p;
};
const jwt = (method: string, priv: string | undefined, pub: string | undefined, ttl = "5m"): TokenProvider => {
  const parts = ["jwt", `sign-method=${method}`, `ttl=${ttl}`];
  if (priv !== undefined) parts.push(`priv-key=${f(priv)}`);
  if (pub !== undefined) parts.push(`pub-key=${f(pub)}`);
  return parseAuthTokenFlag(parts.join(","));
};
const NOW = 1_700_000_000_000;
const at = (nowMs: number, revision = 5) => ({ revision, nowMs });
const part = (token: string, i: number): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split(".")[i] ?? "", "base64url").toString()) as Record<string, unknown>;
/** Re-encodes one part of a token without re-signing it. */
const withPart = (token: string, i: number, obj: unknown): string => {
  const parts = token.split(".");
  parts[i] = Buffer.from(JSON.stringify(obj)).toString("base64url");
  return parts.join(".");
};

describe("JWT tokens", () => {
  for (const [method, key] of [
    ["RS256", "rsa"],
    ["ES256", "ec256"],
    ["PS256", "rsa"],
    ["ES384", "ec384"],
  ] as const) {
    it(`${method}: signs etcd's claims and verifies them`, () => {
      const p = jwt(method, `${key}.key`, `${key}.pub`);
      const token = p.assign("alice", at(NOW, 7));
      expect(part(token, 0)).toEqual({ alg: method, typ: "JWT" });
      expect(part(token, 1)).toEqual({ exp: Math.floor((NOW + 300_000) / 1000), revision: 7, username: "alice" });
      expect(p.info(token, at(NOW + 1000))).toEqual({ username: "alice", revision: 7 });
      if (method === "ES256") expect(Buffer.from(token.split(".")[2] ?? "", "base64url").length, "P1363 r||s").toBe(64);
    });
  }

  it("refuses a tampered payload, a tampered signature, an expired token and garbage", () => {
    const p = jwt("RS256", "rsa.key", "rsa.pub", "10s");
    const token = p.assign("alice", at(NOW));
    expect(
      p.info(withPart(token, 1, { ...part(token, 1), username: "root" }), at(NOW)),
      "payload changed",
    ).toBeUndefined();
    const sig = Buffer.from(token.split(".")[2] ?? "", "base64url");
    sig[10] = (sig[10] ?? 0) ^ 1;
    expect(
      p.info(`${token.split(".").slice(0, 2).join(".")}.${sig.toString("base64url")}`, at(NOW)),
      "signature changed",
    ).toBeUndefined();
    const expSec = Math.floor((NOW + 10_000) / 1000);
    expect(p.info(token, at(expSec * 1000 + 999))?.username, "valid through its exp second").toBe("alice");
    expect(p.info(token, at((expSec + 1) * 1000)), "expired").toBeUndefined();
    for (const junk of ["", "a.b", "a.b.c", "....", `${token}.x`, token.replace(/\./g, "")]) {
      expect(p.info(junk, at(NOW)), JSON.stringify(junk)).toBeUndefined();
    }
  });

  it("refuses a token signed by another key, alg none, and HS256 keyed with the public key", () => {
    const p = jwt("ES256", "ec256.key", "ec256.pub");
    const other = jwt("ES256", "ec256b.key", "ec256b.pub");
    expect(p.info(other.assign("alice", at(NOW)), at(NOW)), "other key").toBeUndefined();
    const token = p.assign("alice", at(NOW));
    const none = `${withPart(token, 0, { alg: "none", typ: "JWT" }).split(".").slice(0, 2).join(".")}.`;
    expect(p.info(none, at(NOW)), "alg none").toBeUndefined();
    const rsa = jwt("RS256", "rsa.key", "rsa.pub");
    const hsHeader = withPart(rsa.assign("alice", at(NOW)), 0, { alg: "HS256", typ: "JWT" })
      .split(".")
      .slice(0, 2)
      .join(".");
    const pubPem = readFileSync(f("rsa.pub"));
    const forged = `${hsHeader}.${createHmac("sha256", pubPem).update(hsHeader).digest("base64url")}`;
    expect(rsa.info(forged, at(NOW)), "algorithm confusion").toBeUndefined();
  });

  it("HS256 uses the priv-key file as the shared secret", () => {
    const p = parseAuthTokenFlag(`jwt,sign-method=HS256,priv-key=${f("hmac.secret")}`);
    const token = p.assign("bob", at(NOW, 2));
    expect(p.info(token, at(NOW))).toEqual({ username: "bob", revision: 2 });
  });

  it("with only a public key it verifies but cannot sign (etcd's verify-only mode)", () => {
    const full = jwt("RS256", "rsa.key", undefined);
    const verifyOnly = jwt("RS256", undefined, "rsa.pub");
    const token = full.assign("alice", at(NOW));
    expect(verifyOnly.info(token, at(NOW))?.username).toBe("alice");
    expect(() => verifyOnly.assign("alice", at(NOW))).toThrow(ERR_VERIFY_ONLY);
    expect(verifyOnly instanceof JwtTokenProvider && verifyOnly.canSign).toBe(false);
  });
});

describe("parseAuthTokenFlag", () => {
  const fails = (value: string, pattern: RegExp): void => {
    let err: unknown;
    try {
      parseAuthTokenFlag(value);
    } catch (e) {
      err = e;
    }
    expect(err instanceof AuthTokenFlagError, `${value} should fail, got ${String(err)}`).toBe(true);
    expect((err as Error).message, value).toMatch(pattern);
  };

  it("builds simple and jwt providers with etcd's defaults", () => {
    const simple = parseAuthTokenFlag("simple", { ttlSeconds: 42 });
    expect(simple instanceof SimpleTokenProvider && simple.ttlMs).toBe(42_000);
    const def = parseAuthTokenFlag("simple");
    expect(def instanceof SimpleTokenProvider && def.ttlMs, "--auth-token-ttl default").toBe(300_000);
    const j = parseAuthTokenFlag(`jwt,pub-key=${f("rsa.pub")},priv-key=${f("rsa.key")},sign-method=RS512`);
    expect(j instanceof JwtTokenProvider && [j.signMethod, j.ttlMs]).toEqual(["RS512", 300_000]);
  });

  it("refuses bad types, malformed, duplicate and unknown options with etcd's message", () => {
    fails("", /^auth: invalid auth options: token type ""/);
    fails("oauth", /^auth: invalid auth options: token type "oauth"/);
    fails("jwt,sign-method", /invalid auth options: option "sign-method" is not key=value/);
    fails("jwt,a=b=c", /invalid auth options: option "a=b=c" is not key=value/);
    fails(
      `jwt,sign-method=RS256,sign-method=RS384,priv-key=${f("rsa.key")}`,
      /invalid auth options: option "sign-method" given twice/,
    );
    fails(
      `jwt,sign-method=RS256,priv-key=${f("rsa.key")},colour=blue`,
      /invalid auth options: unknown jwt option "colour"/,
    );
    fails(`jwt,sign-method=RS256,priv-key=${f("rsa.key")},ttl=soon`, /invalid auth options: ttl "soon"/);
    fails(`jwt,sign-method=RS256,priv-key=${f("rsa.key")},ttl=-5m`, /invalid auth options: ttl "-5m"/);
  });

  it("refuses bad sign methods, missing, unreadable, mismatched and ill-fitting keys", () => {
    fails(`jwt,priv-key=${f("rsa.key")}`, /^auth: invalid auth signature method: sign-method ""/);
    fails(
      `jwt,sign-method=XX256,priv-key=${f("rsa.key")}`,
      /^auth: invalid auth signature method: sign-method "XX256"/,
    );
    fails(`jwt,sign-method=none,priv-key=${f("rsa.key")}`, /invalid auth signature method/);
    fails("jwt,sign-method=RS256", /^auth: missing key data/);
    fails("jwt,sign-method=HS256", /^auth: missing key data/);
    fails(`jwt,sign-method=RS256,priv-key=${join(keyDir, "absent.key")}`, /^auth: cannot read priv-key: .*absent\.key/);
    fails(`jwt,sign-method=RS256,priv-key=${f("hmac.secret")}`, /^auth: failed to parse priv-key/);
    fails(
      `jwt,sign-method=RS256,priv-key=${f("rsa.key")},pub-key=${f("rsa2.pub")}`,
      /^auth: public and private keys don't match/,
    );
    fails(
      `jwt,sign-method=ES256,priv-key=${f("rsa.key")}`,
      /priv-key does not fit sign-method ES256: key is rsa, want ec \(prime256v1\)/,
    );
    fails(
      `jwt,sign-method=ES256,pub-key=${f("ec384.pub")}`,
      /pub-key does not fit sign-method ES256: key is ec \(secp384r1\)/,
    );
    fails(`jwt,sign-method=RS256,priv-key=${f("ec256.key")}`, /priv-key does not fit sign-method RS256/);
  });
});
