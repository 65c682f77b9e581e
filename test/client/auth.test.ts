// Proves the client's auth against real etcd 3.4 with auth enabled: username/password authenticate on first
// use and the token rides in every call (unary, watch, lease keepalive); a user whose role reads only /ro/
// gets EtcdError PERMISSION_DENIED for a write there and for a read elsewhere; a token the server no longer
// knows (auth disabled and enabled again) is refreshed once and the call succeeds, for unary calls and for a
// watch (etcd cancels it with `invalid auth token`); a wrong password is AUTH_FAILED. Also the user and role
// wrappers (add, get, list, grant, revoke, change password, delete).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { EtcdError } from "../../core/errors.js";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";

let etcd: EtcdProcess;
let root: EtcdClient;
const opened: EtcdClient[] = [];

function client(username: string, password: string): EtcdClient {
  const c = new EtcdClient({ endpoints: etcd.endpoints(), username, password });
  opened.push(c);
  return c;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "OK",
    (e: unknown) => (e instanceof EtcdError ? e.code : `not an EtcdError: ${String(e)}`),
  );
}

beforeAll(async () => {
  etcd = new EtcdProcess();
  await etcd.start();
  const admin = new EtcdClient({ endpoints: etcd.endpoints() });
  await admin.auth.userAdd("root", "rootpw");
  await admin.auth.roleAdd("root");
  await admin.auth.userGrantRole("root", "root");
  await admin.auth.userAdd("reader", "readpw");
  await admin.auth.roleAdd("ro");
  await admin.auth.roleGrantPermission("ro", { permType: "READ", key: "/ro/", prefix: true });
  await admin.auth.userGrantRole("reader", "ro");
  await admin.put("/ro/a", "1");
  await admin.auth.authEnable();
  admin.close();
  root = client("root", "rootpw");
});

afterAll(async () => {
  for (const c of opened) c.close();
  await etcd?.stop();
});

describe("auth", () => {
  it("authenticates on first use; a read-only role is refused writes and other prefixes", async () => {
    const anonymous = new EtcdClient({ endpoints: etcd.endpoints() });
    expect(await codeOf(anonymous.get("/ro/a")), "no token while auth is on").toBe("USER_EMPTY");
    anonymous.close();

    const reader = client("reader", "readpw");
    expect((await reader.get("/ro/a")).kvs[0]?.value.toString()).toBe("1");
    expect(reader.connection.authentications, "one Authenticate for the first call").toBe(1);
    expect(await codeOf(reader.put("/ro/b", "2")), "write under a read-only prefix").toBe("PERMISSION_DENIED");
    expect(await codeOf(reader.get("/other")), "read outside the role's prefix").toBe("PERMISSION_DENIED");
    expect(await codeOf(client("reader", "wrong").get("/ro/a")), "wrong password").toBe("AUTH_FAILED");
    expect(reader.connection.authentications, "still one Authenticate after 3 calls").toBe(1);
  });

  it("sends the token on watch and lease keepalive streams", async () => {
    const w = root.watch("/ro/", { prefix: true });
    await w.created;
    const put = await root.put("/ro/w", "x");
    const batch = await w[Symbol.asyncIterator]().next();
    expect(batch.value?.events[0]?.kv.modRevision, "watch event at the put's revision").toBe(put.header.revision);
    w.cancel();
    const lease = await root.leaseGrant(20);
    const ka = root.leaseKeepAlive(lease.id);
    expect(await ka.first, "keepalive TTL").toBe(20n);
    ka.stop();
    await root.leaseRevoke(lease.id);
  });

  it("refreshes a token the server forgot (auth disabled and re-enabled) once, and the call succeeds", async () => {
    const reader = client("reader", "readpw");
    await reader.get("/ro/a");
    expect(reader.connection.authentications).toBe(1);
    await root.auth.authDisable();
    const admin = new EtcdClient({ endpoints: etcd.endpoints() });
    await admin.auth.authEnable(); // etcd drops every simple token on disable
    admin.close();
    expect((await reader.get("/ro/a")).kvs.length, "read after the token was dropped").toBe(1);
    expect(reader.connection.authentications, "re-authenticated exactly once").toBe(2);
  });

  it("a watch opened with a token the server forgot re-authenticates once; a denied watch ends PERMISSION_DENIED", async () => {
    const reader = client("reader", "readpw");
    await reader.get("/ro/a");
    await root.auth.authDisable();
    const admin = new EtcdClient({ endpoints: etcd.endpoints() });
    await admin.auth.authEnable();
    admin.close();
    const w = reader.watch("/ro/", { prefix: true });
    await w.created;
    expect(reader.connection.authentications, "re-authenticated for the watch").toBe(2);
    const put = await root.put("/ro/watched", "1");
    const next = await w[Symbol.asyncIterator]().next();
    w.cancel();
    expect(next.value?.events[0]?.kv.modRevision, "event after the refresh").toBe(put.header.revision);

    const denied = reader.watch("/other/", { prefix: true });
    expect(await codeOf(denied[Symbol.asyncIterator]().next()), "watch outside the role").toBe("PERMISSION_DENIED");
    expect(reader.connection.authentications, "a real denial is not a reason to re-authenticate").toBe(2);
  });

  it("manages users and roles", async () => {
    const a = root.auth;
    expect((await a.userList()).sort()).toEqual(["reader", "root"]);
    expect((await a.roleList()).sort()).toEqual(["ro", "root"]);
    expect((await a.userGet("reader")).roles).toEqual(["ro"]);
    const perms = (await a.roleGet("ro")).permissions;
    expect(perms.map((p) => [p.permType, p.key.toString(), p.rangeEnd?.toString()])).toEqual([
      ["READ", "/ro/", "/ro0"],
    ]);

    await a.userAdd("temp", "t1");
    await a.roleAdd("rw");
    await a.roleGrantPermission("rw", { permType: "READWRITE", key: "/rw/", prefix: true });
    await a.userGrantRole("temp", "rw");
    const temp = client("temp", "t1");
    await temp.put("/rw/x", "1");
    await a.userChangePassword("temp", "t2");
    expect(await codeOf(client("temp", "t1").get("/rw/x")), "old password").toBe("AUTH_FAILED");
    expect((await client("temp", "t2").get("/rw/x")).kvs.length, "new password").toBe(1);
    await a.roleRevokePermission("rw", "/rw/", { prefix: true });
    expect((await a.roleGet("rw")).permissions.length, "permission revoked").toBe(0);
    await a.userRevokeRole("temp", "rw");
    expect((await a.userGet("temp")).roles).toEqual([]);
    await a.roleDelete("rw");
    await a.userDelete("temp");
    expect(await codeOf(a.userGet("temp")), "deleted user").toBe("USER_NOT_FOUND");
    expect(await codeOf(a.roleGet("rw")), "deleted role").toBe("ROLE_NOT_FOUND");
  });
});
