// Proves the server's auth across restarts and permission changes, as etcd 3.4: users, roles and the enabled flag
// go through Raft and survive a restart; a simple token lives in one member's memory, so after a restart it is an
// invalid token and the client authenticates again; a JWT survives the restart (verified by key, no state); a
// permission granted or revoked applies to the very next request made with an existing token (a JWT issued before
// the change is refused as of an old auth revision, so clients re-authenticate); and a write's permissions are
// checked again when its entry applies.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PermType } from "../../core/auth/auth_store.js";
import { JwtTokenProvider, SimpleTokenProvider, type TokenProvider } from "../../core/auth/tokens.js";
import { isEtcdError, type ErrorCode } from "../../core/errors.js";
import type { AuthInfo } from "../../core/auth/auth_store.js";
import { EtcdServer } from "../../core/server/etcd_server.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const dirs: string[] = [];
const servers: EtcdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-auth-"));
  dirs.push(dir);
  return dir;
}

async function start(dataDir: string, tokenProvider: TokenProvider): Promise<EtcdServer> {
  const s = await EtcdServer.start({
    name: "n1",
    dataDir,
    memberId: 0x3f87d1e9930d82d9n,
    clusterId: 0xc053a5fbc1c5ad1en,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
    authTokenProvider: tokenProvider,
    bcryptCost: 4,
  });
  servers.push(s);
  await s.whenLeader();
  return s;
}

async function stop(s: EtcdServer): Promise<void> {
  servers.splice(servers.indexOf(s), 1);
  await s.stop();
}

/** root (root role) and alice (role "reader": read on a/ prefix), then auth enabled, as an operator would. */
async function setUp(s: EtcdServer): Promise<void> {
  const a = s.auth;
  await a.userAdd(undefined, "root", "rootpw", false);
  await a.change(undefined, { op: "userGrantRole", name: "root", role: "root" });
  await a.userAdd(undefined, "alice", "alicepw", false);
  await a.change(undefined, { op: "roleAdd", name: "reader" });
  await a.change(undefined, {
    op: "roleGrantPermission",
    name: "reader",
    perm: { permType: PermType.READ, key: enc("a/"), rangeEnd: enc("a0") },
  });
  await a.change(undefined, { op: "userGrantRole", name: "alice", role: "reader" });
  await a.change(undefined, { op: "enable" });
}

function errorCode(f: () => unknown): ErrorCode | "none" {
  try {
    f();
    return "none";
  } catch (err) {
    if (isEtcdError(err)) return err.code;
    throw err;
  }
}

/** What a Range on `key` with this token meets: "none" when permitted, else etcd's error code. */
function rangeWith(s: EtcdServer, token: string, key: string): ErrorCode | "none" {
  return errorCode(() => {
    const info: AuthInfo | undefined = s.auth.infoFromToken(token);
    s.auth.checkRange(info, { key: enc(key) });
  });
}

function jwtProvider(): TokenProvider {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return new JwtTokenProvider({
    signMethod: "ES256",
    keys: { kind: "asymmetric", privateKey, publicKey },
    ttlMs: 300_000,
  });
}

describe("server auth across restarts", () => {
  it("keeps users, roles and the enabled flag; a simple token is invalid after a restart and a new login works", async () => {
    const dir = newDir();
    let s = await start(dir, new SimpleTokenProvider({ ttlSeconds: 300 }));
    await setUp(s);
    const token = await s.auth.authenticate("alice", "alicepw");
    expect(token, `simple token ${token}`).toMatch(/^[A-Za-z]{16}\.\d+$/);
    expect(rangeWith(s, token, "a/x")).toBe("none");
    await stop(s);

    s = await start(dir, new SimpleTokenProvider({ ttlSeconds: 300 }));
    expect(s.auth.enabled).toBe(true);
    expect(s.auth.store.userList()).toEqual(["alice", "root"]);
    expect(s.auth.store.roleGet("reader").permissions.length, "reader's permissions after restart").toBe(1);
    expect(rangeWith(s, token, "a/x"), "the old simple token after a restart").toBe("INVALID_AUTH_TOKEN");
    const again = await s.auth.authenticate("alice", "alicepw");
    expect(again).not.toBe(token);
    expect(rangeWith(s, again, "a/x")).toBe("none");
    expect(rangeWith(s, again, "b/x")).toBe("PERMISSION_DENIED");
    await expect(s.auth.authenticate("alice", "wrong")).rejects.toMatchObject({ code: "AUTH_FAILED" });
  });

  it("a JWT issued before a restart is still valid after it", async () => {
    const dir = newDir();
    const provider = jwtProvider();
    let s = await start(dir, provider);
    await setUp(s);
    const token = await s.auth.authenticate("alice", "alicepw");
    expect(token.split(".").length, "a JWT has three parts").toBe(3);
    await stop(s);
    s = await start(dir, provider);
    expect(rangeWith(s, token, "a/x"), "the JWT after a restart").toBe("none");
    expect(rangeWith(s, token, "b/x")).toBe("PERMISSION_DENIED");
  });
});

describe("permission changes and existing tokens", () => {
  it("a grant and a revoke apply to the next request made with the same simple token", async () => {
    const s = await start(newDir(), new SimpleTokenProvider({ ttlSeconds: 300 }));
    await setUp(s);
    const rootToken = await s.auth.authenticate("root", "rootpw");
    const root = s.auth.infoFromToken(rootToken);
    const token = await s.auth.authenticate("alice", "alicepw");
    expect(rangeWith(s, token, "b/x")).toBe("PERMISSION_DENIED");
    await s.auth.change(root, {
      op: "roleGrantPermission",
      name: "reader",
      perm: { permType: PermType.READ, key: enc("b/x"), rangeEnd: new Uint8Array(0) },
    });
    expect(rangeWith(s, token, "b/x"), "after the grant").toBe("none");
    await s.auth.change(root, { op: "userRevokeRole", name: "alice", role: "reader" });
    expect(rangeWith(s, token, "a/x"), "after the role is revoked").toBe("PERMISSION_DENIED");
    await s.auth.change(root, { op: "userDelete", name: "alice" });
    expect(rangeWith(s, token, "a/x"), "after the user is deleted").toBe("INVALID_AUTH_TOKEN");
  });

  it("a JWT from before a permission change is refused as of an old auth revision; a new one sees the change", async () => {
    const s = await start(newDir(), jwtProvider());
    await setUp(s);
    const root = s.auth.infoFromToken(await s.auth.authenticate("root", "rootpw"));
    const token = await s.auth.authenticate("alice", "alicepw");
    expect(rangeWith(s, token, "a/x")).toBe("none");
    await s.auth.change(root, { op: "roleRevokePermission", name: "reader", key: enc("a/"), rangeEnd: enc("a0") });
    expect(rangeWith(s, token, "a/x"), "the old JWT after the revoke").toBe("AUTH_OLD_REVISION");
    const fresh = await s.auth.authenticate("alice", "alicepw");
    expect(rangeWith(s, fresh, "a/x"), "a new JWT after the revoke").toBe("PERMISSION_DENIED");
  });

  it("checks a write's permissions again when it applies (a change between the check and the apply wins)", async () => {
    const s = await start(newDir(), jwtProvider());
    await setUp(s);
    const root = s.auth.infoFromToken(await s.auth.authenticate("root", "rootpw"));
    await s.auth.change(root, {
      op: "roleGrantPermission",
      name: "reader",
      perm: { permType: PermType.READWRITE, key: enc("a/"), rangeEnd: enc("a0") },
    });
    const checked = s.auth.infoFromToken(await s.auth.authenticate("alice", "alicepw"));
    expect(
      (await s.put({ key: enc("a/1"), value: enc("v") }, checked)).response.revision,
      "permitted at apply",
    ).toBeGreaterThan(0);
    // The request was checked with `checked`; then the permission goes before its entry applies.
    await s.auth.change(root, { op: "roleRevokePermission", name: "reader", key: enc("a/"), rangeEnd: enc("a0") });
    await expect(s.put({ key: enc("a/2"), value: enc("v") }, checked)).rejects.toMatchObject({
      code: "AUTH_OLD_REVISION",
    });
    const fresh = s.auth.infoFromToken(await s.auth.authenticate("alice", "alicepw"));
    await expect(
      s.txn({ compare: [], success: [{ put: { key: enc("a/3"), value: enc("v") } }], failure: [] }, fresh),
    ).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    const left = await s.range({ key: enc("a/"), rangeEnd: enc("a0") });
    expect(left.response.kvs.length, "only the write permitted at apply is there").toBe(1);
  });

  it("refuses a 64 KiB user or role name with 'request is too large', on the proposer and at apply, and keeps running", async () => {
    const dir = newDir();
    const s = await start(dir, new SimpleTokenProvider({ ttlSeconds: 300 }));
    const huge = "u".repeat(64 * 1024);
    await expect(s.auth.userAdd(undefined, huge, "pw", false)).rejects.toMatchObject({ code: "REQUEST_TOO_LARGE" });
    // An entry that reached the log anyway (an older member proposed it) fails alike on every member, no crash.
    const applied = await s.propose({ auth: { op: "roleAdd", name: huge } });
    expect(isEtcdError(applied, "REQUEST_TOO_LARGE"), String(applied)).toBe(true);
    await stop(s);
    const again = await start(dir, new SimpleTokenProvider({ ttlSeconds: 300 }));
    expect(again.auth.store.roleList()).toEqual([]);
    expect((await again.put({ key: enc("k"), value: enc("v") })).response.revision).toBeGreaterThan(1);
  });

  it("a non-root user may not change auth, and a request without a token is refused while auth is enabled", async () => {
    const s = await start(newDir(), new SimpleTokenProvider({ ttlSeconds: 300 }));
    await setUp(s);
    const alice = s.auth.infoFromToken(await s.auth.authenticate("alice", "alicepw"));
    await expect(s.auth.change(alice, { op: "roleAdd", name: "mine" })).rejects.toMatchObject({
      code: "PERMISSION_DENIED",
    });
    expect(s.auth.store.roleList()).toEqual(["reader"]);
    expect(errorCode(() => s.auth.checkPut(undefined, { key: enc("a/x"), value: enc("v") }))).toBe("USER_EMPTY");
    expect(errorCode(() => s.auth.checkMaintenance(alice))).toBe("AUTH_PERMISSION_DENIED_RAW");
  });
});
