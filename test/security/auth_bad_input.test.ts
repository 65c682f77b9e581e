// Proves etcd-ts answers bad auth input as real etcd 3.4.23 does, both started alike and driven with the same
// hand-encoded gRPC requests: passwords of 0 bytes (the user logs in with the empty password and only with it)
// and 1 MiB (added, logs in); user and role names with a NUL byte, invalid UTF-8 and 1,900 bytes are added, read
// back and log in, and an empty name is etcd's error; a JWT signed by another key is etcd's "invalid auth token"
// (Unauthenticated) while the server's own token works; both hash with bcrypt, which reads only a password's first
// 72 bytes, so both accept a 1 MiB password's first 72 bytes (or any password sharing them). Not compared here: a 64 KiB name, on which real etcd 3.4 crashes (bbolt
// "key too large") and etcd-ts answers "request is too large" (test/server/auth_tokens.test.ts); invalid UTF-8
// names are listed by etcd-ts with U+FFFD for the bad bytes (etcd lists the bytes), so two such names can collide.
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveEtcd } from "../compat/processes.js";
import { type Kind, type Member, startMember } from "./members.js";
import { RawEtcd, fieldsOf, pb, type RawReply } from "./raw_grpc.js";

const KINDS: readonly Kind[] = ["etcd", "etcd-ts"];
const BIG_PASSWORD = Buffer.alloc(1024 * 1024, "p");
const ODD_NAMES: Readonly<Record<string, Buffer>> = {
  nul: Buffer.from("a\0b"),
  invalidUtf8: Buffer.from([0x61, 0xff, 0xfe]),
  long: Buffer.alloc(1900, "m"),
};

const outcome = (r: RawReply): string => (r.ok ? "ok" : `${r.code}: ${r.details}`);
const AUTH_FAILED = "3: etcdserver: authentication failed, invalid user ID or password";

interface Session {
  readonly m: Member;
  readonly raw: RawEtcd;
  auth(method: string, ...fields: Buffer[]): Promise<string>;
  login(name: Buffer | string, password: Buffer | string): Promise<RawReply>;
}

async function session(kind: Kind, flags: readonly string[]): Promise<Session> {
  const m = await startMember(kind, ["--bcrypt-cost", "4", ...flags]);
  const raw = new RawEtcd(m.endpoint);
  return {
    m,
    raw,
    auth: async (method, ...fields) => outcome(await raw.call("Auth", method, pb.msg(...fields))),
    login: (name, password) => raw.call("Auth", "Authenticate", pb.msg(pb.bytes(1, name), pb.bytes(2, password))),
  };
}

/** root with the root role, then AuthEnable: every step must succeed. */
async function enableWithRoot(s: Session): Promise<void> {
  const steps = [
    await s.auth("RoleAdd", pb.bytes(1, "root")),
    await s.auth("UserAdd", pb.bytes(1, "root"), pb.bytes(2, "rootpw")),
    await s.auth("UserGrantRole", pb.bytes(1, "root"), pb.bytes(2, "root")),
    await s.auth("AuthEnable"),
  ];
  expect(steps, `${s.m.kind}: root and AuthEnable`).toEqual(["ok", "ok", "ok", "ok"]);
}

describe.runIf(haveEtcd())("bad auth input, etcd-ts against real etcd 3.4", () => {
  const sessions = new Map<Kind, Session>();
  const each = async <T>(f: (s: Session) => Promise<T>): Promise<Record<Kind, T>> => {
    const [a, b] = await Promise.all(KINDS.map((k) => f(sessions.get(k)!)));
    return { etcd: a as T, "etcd-ts": b as T };
  };

  beforeAll(async () => {
    for (const k of KINDS) sessions.set(k, await session(k, []));
  }, 60_000);
  afterAll(async () => {
    for (const s of sessions.values()) {
      s.raw.close();
      await s.m.stop();
    }
  });

  it("adds users and roles with odd names and passwords of 0 bytes and 1 MiB, then enables auth", async () => {
    const got = await each(async (s) => {
      const out: Record<string, string> = {
        emptyPassword: await s.auth("UserAdd", pb.bytes(1, "empty"), pb.bytes(2, "")),
        bigPassword: await s.auth("UserAdd", pb.bytes(1, "big"), pb.bytes(2, BIG_PASSWORD)),
        emptyUser: await s.auth("UserAdd", pb.bytes(1, ""), pb.bytes(2, "pw")),
        emptyRole: await s.auth("RoleAdd", pb.bytes(1, "")),
        getEmptyUser: await s.auth("UserGet", pb.bytes(1, "")),
      };
      for (const [k, name] of Object.entries(ODD_NAMES)) {
        out[`userAdd ${k}`] = await s.auth("UserAdd", pb.bytes(1, name), pb.bytes(2, "pw"));
        out[`roleAdd ${k}`] = await s.auth("RoleAdd", pb.bytes(1, name));
        out[`grant ${k}`] = await s.auth("UserGrantRole", pb.bytes(1, name), pb.bytes(2, name));
        out[`userGet ${k}`] = await s.auth("UserGet", pb.bytes(1, name));
        out[`roleGet ${k}`] = await s.auth("RoleGet", pb.bytes(1, name));
      }
      await enableWithRoot(s);
      return out;
    });
    expect(got["etcd-ts"]).toEqual(got.etcd);
    expect(got.etcd.emptyUser).toBe("3: etcdserver: user name is empty");
    expect(got.etcd.emptyRole).toBe("3: etcdserver: role name is empty");
    expect(Object.values(got.etcd).filter((v) => v === "ok").length, "2 passwords + 5 calls × 3 names").toBe(17);
  });

  it("lists the NUL and long names byte for byte", async () => {
    const listed = await each(async (s) => {
      const users = await s.raw.call("Auth", "UserList", Buffer.alloc(0), await token(s));
      expect(users.ok, outcome(users)).toBe(true);
      return (users.ok ? (fieldsOf(users.body).get(2) ?? []) : []).map((b) => b.toString("hex"));
    });
    for (const k of ["nul", "long"] as const) {
      const hex = ODD_NAMES[k]!.toString("hex");
      expect(listed.etcd.includes(hex) && listed["etcd-ts"].includes(hex), `${k} listed by both`).toBe(true);
    }
  });

  it("logs in odd-named users, an empty password (only itself) and 1 MiB (its 72-byte prefix too)", async () => {
    const changedTail = Buffer.from(BIG_PASSWORD);
    changedTail[changedTail.length - 1] = 0x71;
    const got = await each(async (s) => ({
      nul: outcome(await s.login(ODD_NAMES.nul!, "pw")),
      invalidUtf8: outcome(await s.login(ODD_NAMES.invalidUtf8!, "pw")),
      long: outcome(await s.login(ODD_NAMES.long!, "pw")),
      emptyWithEmpty: outcome(await s.login("empty", "")),
      emptyWithOther: outcome(await s.login("empty", "x")),
      big: outcome(await s.login("big", BIG_PASSWORD)),
      bigWrongLastByte: outcome(await s.login("big", changedTail)),
      bigFirst72: outcome(await s.login("big", BIG_PASSWORD.subarray(0, 72))),
    }));
    const want = {
      nul: "ok",
      invalidUtf8: "ok",
      long: "ok",
      emptyWithEmpty: "ok",
      emptyWithOther: AUTH_FAILED,
      big: "ok",
      bigWrongLastByte: "ok",
      bigFirst72: "ok",
    };
    expect(got.etcd).toEqual(want);
    expect(got["etcd-ts"]).toEqual(want);
  });
});

async function token(s: Session): Promise<string> {
  const r = await s.login("root", "rootpw");
  if (!r.ok) throw new Error(`${s.m.kind}: root login: ${outcome(r)}`);
  return fieldsOf(r.body).get(2)?.[0]?.toString("utf8") ?? "";
}

const b64url = (x: string | Buffer): string => Buffer.from(x).toString("base64url");

describe.runIf(haveEtcd())("a JWT signed by another key, etcd-ts against real etcd 3.4", () => {
  const sessions: Session[] = [];
  let forged = "";
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-jwt-"));

  beforeAll(async () => {
    const own = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(join(dir, "jwt.key"), own.privateKey.export({ type: "pkcs1", format: "pem" }));
    writeFileSync(join(dir, "jwt.pub"), own.publicKey.export({ type: "spki", format: "pem" }));
    const flag = `jwt,pub-key=${join(dir, "jwt.pub")},priv-key=${join(dir, "jwt.key")},sign-method=RS256`;
    for (const k of KINDS) sessions.push(await session(k, ["--auth-token", flag]));
    // etcd's claims (username, revision, exp), in the shape its own tokens have, but signed by another key.
    const head = `${b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }))}.${b64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 600, revision: 5, username: "root" }))}`;
    forged = `${head}.${b64url(sign("sha256", Buffer.from(head), other.privateKey))}`;
  }, 60_000);
  afterAll(async () => {
    for (const s of sessions) {
      s.raw.close();
      await s.m.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses it with 'invalid auth token' on both; the server's own token puts", async () => {
    const put = pb.msg(pb.bytes(1, "k"), pb.bytes(2, "v"));
    const got = await Promise.all(
      sessions.map(async (s) => {
        await enableWithRoot(s);
        const own = await token(s);
        return {
          ownShape: own.split(".").length,
          own: outcome(await s.raw.call("KV", "Put", put, own)),
          forged: outcome(await s.raw.call("KV", "Put", put, forged)),
          none: outcome(await s.raw.call("KV", "Put", put)),
        };
      }),
    );
    expect(got[0]).toEqual({
      ownShape: 3,
      own: "ok",
      forged: "16: etcdserver: invalid auth token",
      none: "3: etcdserver: user name is empty",
    });
    expect(got[1], "etcd-ts as etcd").toEqual(got[0]);
  });
});
