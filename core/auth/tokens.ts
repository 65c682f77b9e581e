// Auth tokens, as etcd 3.4's --auth-token: "simple" (a random string held in this member's memory, valid
// for --auth-token-ttl seconds after its last use) or "jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…"
// (signed claims {exp, revision, username}, verified with node:crypto; no state). Clocks are passed in as
// `nowMs` so tests and the server drive expiry; nothing here reads the wall clock or starts a timer.
import {
  constants as cryptoConstants,
  createHmac,
  createPrivateKey,
  createPublicKey,
  randomInt,
  sign as cryptoSign,
  timingSafeEqual,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";
import { readFileSync } from "node:fs";

import { AUTH_TOKEN_TTL_SECONDS } from "../limits.js";
import { parseGoDurationMs } from "../go_values.js";

/** Who a token speaks for, and the auth revision it was issued at (etcd's AuthInfo). */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}

export interface AssignOptions {
  /** The auth store revision the token is issued at. */
  readonly revision: number;
  readonly nowMs: number;
  /** Simple tokens: the raft index of the Authenticate entry (etcd's "<prefix>.<index>"); a counter otherwise. */
  readonly index?: number;
  /** Simple tokens: the random prefix the proposer chose, so every member issues the same token. */
  readonly prefix?: string;
}

export interface InfoOptions {
  /** The store's current auth revision (simple tokens report it, as etcd). */
  readonly revision: number;
  readonly nowMs: number;
}

export interface TokenProvider {
  readonly kind: "simple" | "jwt";
  enable(): void;
  disable(): void;
  assign(username: string, opts: AssignOptions): string;
  /** The token's user, or undefined when the token is unknown, expired, forged or malformed. */
  info(token: string, opts: InfoOptions): AuthInfo | undefined;
  /** Drops the user's tokens (user deleted or password changed); JWTs cannot be recalled, as in etcd. */
  invalidateUser(username: string): void;
  /** A fresh random prefix for a simple token ("" for JWT). */
  genTokenPrefix(): string;
}

/** A bad --auth-token value: etcd's message first, then what was wrong. */
export class AuthTokenFlagError extends Error {
  constructor(
    readonly flagValue: string,
    etcdMessage: string,
    detail: string,
  ) {
    super(`${etcdMessage}: ${detail} (--auth-token ${JSON.stringify(flagValue)})`);
    this.name = "AuthTokenFlagError";
  }
}

// etcd 3.4's auth package messages for token configuration.
const ERR_INVALID_AUTH_OPTS = "auth: invalid auth options";
const ERR_INVALID_AUTH_METHOD = "auth: invalid auth signature method";
const ERR_MISSING_KEY = "auth: missing key data";
const ERR_KEY_MISMATCH = "auth: public and private keys don't match";
export const ERR_VERIFY_ONLY = "auth: token signing attempted with verify-only key";

// ------------------------------------------------------------------------------------------------
// Simple tokens

const SIMPLE_PREFIX_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SIMPLE_PREFIX_LENGTH = 16;
const SIMPLE_TOKEN_RE = /^[A-Za-z]{16}\.\d+$/;

interface SimpleEntry {
  readonly username: string;
  readonly expiresAtMs: number;
}

export class SimpleTokenProvider implements TokenProvider {
  readonly kind = "simple";
  readonly ttlMs: number;
  private enabled = false;
  /** Invariant: iteration order is order of last use, hence of expiry (one TTL for all). */
  private readonly tokens = new Map<string, SimpleEntry>();
  private readonly byUser = new Map<string, Set<string>>();
  private nextIndex = 1;

  constructor(opts: { ttlSeconds: number }) {
    if (!(opts.ttlSeconds > 0) || !Number.isFinite(opts.ttlSeconds)) {
      throw new Error(`simple token: --auth-token-ttl ${opts.ttlSeconds} must be a positive number of seconds`);
    }
    this.ttlMs = opts.ttlSeconds * 1000;
  }

  get size(): number {
    return this.tokens.size;
  }

  enable(): void {
    this.enabled = true;
  }

  disable(): void {
    this.enabled = false;
    this.tokens.clear();
    this.byUser.clear();
  }

  genTokenPrefix(): string {
    let s = "";
    for (let i = 0; i < SIMPLE_PREFIX_LENGTH; i++) s += SIMPLE_PREFIX_LETTERS[randomInt(SIMPLE_PREFIX_LETTERS.length)];
    return s;
  }

  assign(username: string, opts: AssignOptions): string {
    if (!this.enabled) throw new Error("simple token: assign while auth is disabled");
    this.sweep(opts.nowMs);
    const index = opts.index ?? this.nextIndex;
    this.nextIndex = Math.max(this.nextIndex, index) + 1;
    const token = `${opts.prefix ?? this.genTokenPrefix()}.${index}`;
    if (!SIMPLE_TOKEN_RE.test(token)) throw new Error(`simple token: malformed token ${JSON.stringify(token)}`);
    this.forget(token);
    this.tokens.set(token, { username, expiresAtMs: opts.nowMs + this.ttlMs });
    let set = this.byUser.get(username);
    if (set === undefined) this.byUser.set(username, (set = new Set()));
    set.add(token);
    return token;
  }

  info(token: string, opts: InfoOptions): AuthInfo | undefined {
    if (!this.enabled) return undefined;
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    if (opts.nowMs >= entry.expiresAtMs) {
      this.forget(token);
      return undefined;
    }
    // Renewed on use: move to the back of the expiry order with a fresh deadline.
    this.tokens.delete(token);
    this.tokens.set(token, { username: entry.username, expiresAtMs: opts.nowMs + this.ttlMs });
    return { username: entry.username, revision: opts.revision };
  }

  invalidateUser(username: string): void {
    const set = this.byUser.get(username);
    if (set === undefined) return;
    for (const t of set) this.tokens.delete(t);
    this.byUser.delete(username);
  }

  /** Drops expired tokens from the front of the expiry order (amortised O(1) per token). */
  sweep(nowMs: number): void {
    for (const [token, entry] of this.tokens) {
      if (nowMs < entry.expiresAtMs) break;
      this.forget(token);
    }
  }

  private forget(token: string): void {
    const entry = this.tokens.get(token);
    if (entry === undefined) return;
    this.tokens.delete(token);
    const set = this.byUser.get(entry.username);
    set?.delete(token);
    if (set !== undefined && set.size === 0) this.byUser.delete(entry.username);
  }
}

// ------------------------------------------------------------------------------------------------
// JWT

/** The signing methods etcd 3.4 accepts (jwt-go's names), with their hash and key family. */
export const JWT_SIGN_METHODS = {
  RS256: { family: "RS", hash: "sha256", curve: undefined },
  RS384: { family: "RS", hash: "sha384", curve: undefined },
  RS512: { family: "RS", hash: "sha512", curve: undefined },
  PS256: { family: "PS", hash: "sha256", curve: undefined },
  PS384: { family: "PS", hash: "sha384", curve: undefined },
  PS512: { family: "PS", hash: "sha512", curve: undefined },
  ES256: { family: "ES", hash: "sha256", curve: "prime256v1" },
  ES384: { family: "ES", hash: "sha384", curve: "secp384r1" },
  ES512: { family: "ES", hash: "sha512", curve: "secp521r1" },
  HS256: { family: "HS", hash: "sha256", curve: undefined },
  HS384: { family: "HS", hash: "sha384", curve: undefined },
  HS512: { family: "HS", hash: "sha512", curve: undefined },
} as const;
export type JwtSignMethod = keyof typeof JWT_SIGN_METHODS;

export function isJwtSignMethod(s: string): s is JwtSignMethod {
  return Object.hasOwn(JWT_SIGN_METHODS, s);
}

/** Keys of a JWT provider: asymmetric methods take PEM keys; HS* takes the priv-key file's bytes as secret. */
export type JwtKeys =
  | { readonly kind: "asymmetric"; readonly privateKey: KeyObject | undefined; readonly publicKey: KeyObject }
  | { readonly kind: "hmac"; readonly secret: Uint8Array };

export interface JwtOptions {
  readonly signMethod: JwtSignMethod;
  readonly keys: JwtKeys;
  /** Lifetime of an issued token (etcd's ttl option, default 5m). */
  readonly ttlMs: number;
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString("base64url");
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

export class JwtTokenProvider implements TokenProvider {
  readonly kind = "jwt";
  readonly signMethod: JwtSignMethod;
  readonly ttlMs: number;
  private readonly keys: JwtKeys;
  /** The fixed header this provider signs with (jwt-go's field order: alg, typ). */
  private readonly headerB64: string;

  constructor(opts: JwtOptions) {
    if (!(opts.ttlMs > 0)) throw new Error(`jwt: ttl ${opts.ttlMs} ms must be positive`);
    this.signMethod = opts.signMethod;
    this.ttlMs = opts.ttlMs;
    this.keys = opts.keys;
    this.headerB64 = b64url(Buffer.from(JSON.stringify({ alg: opts.signMethod, typ: "JWT" })));
  }

  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}
  genTokenPrefix(): string {
    return "";
  }

  /** Whether this provider can issue tokens (false with only a public key: verify-only, as etcd). */
  get canSign(): boolean {
    return this.keys.kind === "hmac" || this.keys.privateKey !== undefined;
  }

  assign(username: string, opts: AssignOptions): string {
    // etcd: claims {username, revision, exp = now + ttl in Unix seconds}; Go marshals map keys sorted.
    const exp = Math.floor((opts.nowMs + this.ttlMs) / 1000);
    const claims = { exp, revision: opts.revision, username };
    const signingInput = `${this.headerB64}.${b64url(Buffer.from(JSON.stringify(claims)))}`;
    return `${signingInput}.${b64url(this.signBytes(Buffer.from(signingInput)))}`;
  }

  info(token: string, opts: InfoOptions): AuthInfo | undefined {
    const parts = token.split(".");
    if (parts.length !== 3 || !parts.every((p) => B64URL_RE.test(p))) return undefined;
    const [h, c, s] = parts as [string, string, string];
    const header = parseJsonObject(h);
    // The header must name our method: a token may not pick its own algorithm (no "none", no HS-with-pubkey).
    if (header === undefined || header["alg"] !== this.signMethod) return undefined;
    if (!this.verifyBytes(Buffer.from(`${h}.${c}`), Buffer.from(s, "base64url"))) return undefined;
    const claims = parseJsonObject(c);
    if (claims === undefined) return undefined;
    const username = claims["username"];
    const revision = claims["revision"];
    if (
      typeof username !== "string" ||
      typeof revision !== "number" ||
      !Number.isSafeInteger(revision) ||
      revision < 0
    ) {
      return undefined;
    }
    if (!timeClaimsValid(claims, Math.floor(opts.nowMs / 1000))) return undefined;
    return { username, revision };
  }

  private signBytes(data: Buffer): Buffer {
    const m = JWT_SIGN_METHODS[this.signMethod];
    if (this.keys.kind === "hmac") return createHmac(m.hash, this.keys.secret).update(data).digest();
    const key = this.keys.privateKey;
    if (key === undefined) throw new Error(ERR_VERIFY_ONLY);
    if (m.family === "PS") {
      return cryptoSign(m.hash, data, {
        key,
        padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
        saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST,
      });
    }
    if (m.family === "ES") return cryptoSign(m.hash, data, { key, dsaEncoding: "ieee-p1363" });
    return cryptoSign(m.hash, data, key);
  }

  private verifyBytes(data: Buffer, sig: Buffer): boolean {
    const m = JWT_SIGN_METHODS[this.signMethod];
    try {
      if (this.keys.kind === "hmac") {
        const want = createHmac(m.hash, this.keys.secret).update(data).digest();
        return want.length === sig.length && timingSafeEqual(want, sig);
      }
      const key = this.keys.publicKey;
      if (m.family === "PS") {
        return cryptoVerify(
          m.hash,
          data,
          { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO },
          sig,
        );
      }
      if (m.family === "ES") return cryptoVerify(m.hash, data, { key, dsaEncoding: "ieee-p1363" }, sig);
      return cryptoVerify(m.hash, data, key, sig);
    } catch {
      return false; // a signature of the wrong shape is simply not valid
    }
  }
}

function parseJsonObject(b64: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(b64, "base64url").toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** jwt-go's standard checks: exp (valid while now <= exp), nbf and iat (now >= them); absent = not checked. */
function timeClaimsValid(claims: Record<string, unknown>, nowSec: number): boolean {
  const num = (k: string): number | undefined | null => {
    const v = claims[k];
    if (v === undefined) return undefined;
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  };
  const exp = num("exp");
  const nbf = num("nbf");
  const iat = num("iat");
  if (exp === null || nbf === null || iat === null) return false;
  if (exp !== undefined && nowSec > exp) return false;
  if (nbf !== undefined && nowSec < nbf) return false;
  if (iat !== undefined && nowSec < iat) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------
// --auth-token parsing

export interface ParseAuthTokenOptions {
  /** --auth-token-ttl for simple tokens, in seconds (default 300). */
  readonly ttlSeconds?: number;
  /** Reads key files (tests may inject); default fs.readFileSync. */
  readonly readFile?: (path: string) => Uint8Array;
}

const JWT_OPTIONS = new Set(["sign-method", "pub-key", "priv-key", "ttl"]);
/** etcd's default JWT lifetime when ttl is not given. */
export const JWT_DEFAULT_TTL_MS = 5 * 60 * 1000;

/** Parses --auth-token as etcd 3.4: "simple" or "jwt,key=value,…". Throws AuthTokenFlagError. */
export function parseAuthTokenFlag(value: string, opts: ParseAuthTokenOptions = {}): TokenProvider {
  const [type, ...rest] = value.split(",");
  const optMap = new Map<string, string>();
  for (const pair of rest) {
    const kv = pair.split("=");
    if (kv.length !== 2)
      throw new AuthTokenFlagError(value, ERR_INVALID_AUTH_OPTS, `option ${JSON.stringify(pair)} is not key=value`);
    const [k, v] = kv as [string, string];
    if (optMap.has(k))
      throw new AuthTokenFlagError(value, ERR_INVALID_AUTH_OPTS, `option ${JSON.stringify(k)} given twice`);
    optMap.set(k, v);
  }
  if (type === "simple") {
    // etcd ignores options after "simple"; the lifetime comes from --auth-token-ttl.
    return new SimpleTokenProvider({ ttlSeconds: opts.ttlSeconds ?? AUTH_TOKEN_TTL_SECONDS });
  }
  if (type === "jwt") return parseJwtOptions(value, optMap, opts.readFile ?? ((p) => readFileSync(p)));
  throw new AuthTokenFlagError(
    value,
    ERR_INVALID_AUTH_OPTS,
    `token type ${JSON.stringify(type)} is neither "simple" nor "jwt"`,
  );
}

function parseJwtOptions(
  value: string,
  optMap: Map<string, string>,
  readFile: (path: string) => Uint8Array,
): JwtTokenProvider {
  for (const k of optMap.keys()) {
    if (!JWT_OPTIONS.has(k))
      throw new AuthTokenFlagError(value, ERR_INVALID_AUTH_OPTS, `unknown jwt option ${JSON.stringify(k)}`);
  }
  const ttlText = optMap.get("ttl") ?? "";
  const ttlMs = ttlText === "" ? JWT_DEFAULT_TTL_MS : parseGoDurationMs(ttlText);
  if (ttlMs === undefined || !(ttlMs > 0)) {
    throw new AuthTokenFlagError(
      value,
      ERR_INVALID_AUTH_OPTS,
      `ttl ${JSON.stringify(ttlText)} is not a positive duration like "5m" or "300s"`,
    );
  }
  const read = (opt: string): Uint8Array | undefined => {
    const path = optMap.get(opt) ?? "";
    if (path === "") return undefined;
    try {
      return readFile(path);
    } catch (err) {
      throw new AuthTokenFlagError(value, `auth: cannot read ${opt}`, `${path}: ${(err as Error).message}`);
    }
  };
  const pub = read("pub-key");
  const priv = read("priv-key");
  const method = optMap.get("sign-method") ?? "";
  if (!isJwtSignMethod(method)) {
    throw new AuthTokenFlagError(
      value,
      ERR_INVALID_AUTH_METHOD,
      `sign-method ${JSON.stringify(method)} is not one of ${Object.keys(JWT_SIGN_METHODS).join(", ")}`,
    );
  }
  return new JwtTokenProvider({ signMethod: method, keys: jwtKeys(value, method, pub, priv), ttlMs });
}

function jwtKeys(
  value: string,
  method: JwtSignMethod,
  pub: Uint8Array | undefined,
  priv: Uint8Array | undefined,
): JwtKeys {
  const m = JWT_SIGN_METHODS[method];
  if (m.family === "HS") {
    if (priv === undefined || priv.length === 0)
      throw new AuthTokenFlagError(value, ERR_MISSING_KEY, `${method} needs priv-key (the shared secret)`);
    return { kind: "hmac", secret: priv };
  }
  if (pub === undefined && priv === undefined)
    throw new AuthTokenFlagError(value, ERR_MISSING_KEY, `${method} needs pub-key and/or priv-key`);
  const parse = (what: string, f: () => KeyObject): KeyObject => {
    try {
      return f();
    } catch (err) {
      throw new AuthTokenFlagError(value, `auth: failed to parse ${what}`, (err as Error).message);
    }
  };
  const privateKey = priv === undefined ? undefined : parse("priv-key", () => createPrivateKey(Buffer.from(priv)));
  const publicKey = pub === undefined ? undefined : parse("pub-key", () => createPublicKey(Buffer.from(pub)));
  for (const [what, key] of [
    ["priv-key", privateKey],
    ["pub-key", publicKey],
  ] as const) {
    if (key !== undefined) checkKeyFits(value, method, what, key);
  }
  const derived = privateKey === undefined ? undefined : createPublicKey(privateKey);
  if (publicKey !== undefined && derived !== undefined && !spkiEqual(publicKey, derived)) {
    throw new AuthTokenFlagError(value, ERR_KEY_MISMATCH, "pub-key is not the public half of priv-key");
  }
  const verifyKey = publicKey ?? derived;
  if (verifyKey === undefined) throw new AuthTokenFlagError(value, ERR_MISSING_KEY, "no key to verify with");
  return { kind: "asymmetric", privateKey, publicKey: verifyKey };
}

function checkKeyFits(value: string, method: JwtSignMethod, what: string, key: KeyObject): void {
  const m = JWT_SIGN_METHODS[method];
  const type = key.asymmetricKeyType;
  const ok =
    m.family === "ES"
      ? type === "ec" && key.asymmetricKeyDetails?.namedCurve === m.curve
      : m.family === "PS"
        ? type === "rsa" || type === "rsa-pss"
        : type === "rsa";
  if (!ok) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const have = curve === undefined ? String(type) : `${String(type)} (${curve})`;
    const want = m.family === "ES" ? `ec (${String(m.curve)})` : "rsa";
    throw new AuthTokenFlagError(
      value,
      `auth: ${what} does not fit sign-method ${method}`,
      `key is ${have}, want ${want}`,
    );
  }
}

function spkiEqual(a: KeyObject, b: KeyObject): boolean {
  const da = a.export({ type: "spki", format: "der" });
  const db = b.export({ type: "spki", format: "der" });
  return da.length === db.length && timingSafeEqual(da, db);
}
