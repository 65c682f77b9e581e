// Proves the auth store follows etcd 3.4 on every management path: each error etcd returns (user/role
// exists, not found, empty, role not granted, permission not granted, root rules, enable without root),
// which operations bump the auth revision, that a refused request changes nothing, role deletion taking
// the role from users, and that everything survives closing and reopening the backend.
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { PermType } from "../../core/auth/auth_store.js";
import { isEtcdError, type ErrorCode } from "../../core/errors.js";
import { Harness, enc } from "./helpers.js";

let h: Harness;
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  await h.close();
});

/** Expects an apply step to be refused with `code` and to leave the revision where it was. */
async function refused(code: ErrorCode, fn: Parameters<Harness["apply"]>[0]): Promise<void> {
  const before = h.store.revision;
  const err: unknown = await h.apply(fn).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEtcdError(err, code), `want ${code}, got ${String(err)}`).toBe(true);
  expect(h.store.revision, `revision moved from ${before} on a refused ${code}`).toBe(before);
}

describe("auth enable and the root rules", () => {
  it("a fresh store is disabled at revision 1 with no users or roles", () => {
    expect(h.store.enabled).toBe(false);
    expect(h.store.revision).toBe(1);
    expect(h.store.userList()).toEqual([]);
    expect(h.store.roleList()).toEqual([]);
  });

  it("enable needs the root user, and the root user needs the root role", async () => {
    await refused("ROOT_USER_NOT_EXIST", (tx, s) => s.enable(tx));
    await h.addUser("root", "pw");
    await refused("ROOT_ROLE_NOT_EXIST", (tx, s) => s.enable(tx));
    // The root role may be granted before a "root" role record exists (etcd does not check it).
    await h.apply((tx, s) => s.userGrantRole(tx, "root", "root"));
    expect(h.store.roleList()).toEqual([]);
    const rev = h.store.revision;
    await h.apply((tx, s) => s.enable(tx));
    expect(h.store.enabled).toBe(true);
    expect(h.store.revision, "enable does not bump the revision (etcd)").toBe(rev);
    await h.apply((tx, s) => s.enable(tx));
    expect(h.store.revision, "a second enable is a no-op").toBe(rev);
  });

  it("while enabled, root cannot be deleted, lose the root role, nor can the root role be deleted", async () => {
    await h.apply((tx, s) => s.roleAdd(tx, "root"));
    await h.enableWithRoot();
    await refused("INVALID_AUTH_MGMT", (tx, s) => s.userDelete(tx, "root"));
    await refused("INVALID_AUTH_MGMT", (tx, s) => s.userRevokeRole(tx, "root", "root"));
    await refused("INVALID_AUTH_MGMT", (tx, s) => s.roleDelete(tx, "root"));
    const rev = h.store.revision;
    await h.apply((tx, s) => s.disable(tx));
    expect(h.store.revision, "disable bumps the revision").toBe(rev + 1);
    await h.apply((tx, s) => s.disable(tx));
    expect(h.store.revision, "a second disable is a no-op").toBe(rev + 1);
    await h.apply((tx, s) => s.userRevokeRole(tx, "root", "root"));
    await h.apply((tx, s) => s.roleDelete(tx, "root"));
    await h.apply((tx, s) => s.userDelete(tx, "root"));
    expect(h.store.userList()).toEqual([]);
    expect(h.store.roleList()).toEqual([]);
  });

  it("a user other than root may hold the root role and is admin; others are not", async () => {
    await h.enableWithRoot();
    await h.addUser("ops", "pw", ["root"]);
    await h.apply((tx, s) => s.roleAdd(tx, "r"));
    await h.addUser("dev", "pw", ["r"]);
    expect(h.store.isAdmin("root")).toBe(true);
    expect(h.store.isAdmin("ops")).toBe(true);
    expect(h.store.isAdmin("dev")).toBe(false);
    expect(h.store.isAdmin("nobody")).toBe(false);
  });
});

describe("users", () => {
  it("refuses an empty name, a duplicate, and unknown users on every user operation", async () => {
    const hash = await h.store.hashPassword("pw");
    await refused("USER_EMPTY", (tx, s) => s.userAdd(tx, "", hash, false));
    await h.addUser("alice", "pw");
    await refused("USER_ALREADY_EXIST", (tx, s) => s.userAdd(tx, "alice", hash, false));
    await refused("USER_NOT_FOUND", (tx, s) => s.userDelete(tx, "bob"));
    await refused("USER_NOT_FOUND", (tx, s) => s.userChangePassword(tx, "bob", hash));
    await refused("USER_NOT_FOUND", (tx, s) => s.userGrantRole(tx, "bob", "root"));
    await refused("USER_NOT_FOUND", (tx, s) => s.userRevokeRole(tx, "bob", "r"));
    expect(() => h.store.userGet("bob")).toThrow(expect.objectContaining({ code: "USER_NOT_FOUND" }));
  });

  it("grant needs an existing role, a second grant is a no-op, revoke needs a granted role", async () => {
    await h.addUser("alice", "pw");
    await refused("ROLE_NOT_FOUND", (tx, s) => s.userGrantRole(tx, "alice", "nosuch"));
    await h.apply((tx, s) => {
      s.roleAdd(tx, "b");
      s.roleAdd(tx, "a");
    });
    const rev0 = h.store.revision;
    await h.apply((tx, s) => s.userGrantRole(tx, "alice", "b"));
    await h.apply((tx, s) => s.userGrantRole(tx, "alice", "a"));
    expect(h.store.revision).toBe(rev0 + 2);
    await h.apply((tx, s) => s.userGrantRole(tx, "alice", "a"));
    expect(h.store.revision, "granting a held role bumps nothing").toBe(rev0 + 2);
    expect(h.store.userGet("alice").roles, "roles are kept sorted").toEqual(["a", "b"]);
    await refused("ROLE_NOT_GRANTED", (tx, s) => s.userRevokeRole(tx, "alice", "c"));
    await h.apply((tx, s) => s.userRevokeRole(tx, "alice", "a"));
    expect(h.store.userGet("alice").roles).toEqual(["b"]);
  });

  it("every successful mutation bumps the revision by one", async () => {
    const hash = await h.store.hashPassword("pw");
    const steps: Array<Parameters<Harness["apply"]>[0]> = [
      (tx, s) => s.userAdd(tx, "u", hash, false),
      (tx, s) => s.roleAdd(tx, "r"),
      (tx, s) => s.userGrantRole(tx, "u", "r"),
      (tx, s) =>
        s.roleGrantPermission(tx, "r", { permType: PermType.READ, key: enc("k"), rangeEnd: new Uint8Array(0) }),
      (tx, s) => s.roleRevokePermission(tx, "r", enc("k"), new Uint8Array(0)),
      (tx, s) => s.userChangePassword(tx, "u", hash),
      (tx, s) => s.userRevokeRole(tx, "u", "r"),
      (tx, s) => s.roleDelete(tx, "r"),
      (tx, s) => s.userDelete(tx, "u"),
    ];
    for (const [i, step] of steps.entries()) {
      const before = h.store.revision;
      await h.apply(step);
      expect(h.store.revision, `step ${i}`).toBe(before + 1);
    }
  });

  it("keeps --no-password users and odd names (NUL, spaces, non-ASCII), listed in byte order across reopen", async () => {
    await h.apply((tx, s) => s.userAdd(tx, "zed", undefined, true));
    await h.addUser("Émile", "pw");
    await h.addUser("amy", "pw");
    await h.addUser("a\0b", "pw");
    await h.addUser("with space", "pw");
    await h.addUser("😀", "pw");
    expect(h.store.userGet("zed")).toEqual({ name: "zed", roles: [], noPassword: true });
    const want = ["a\0b", "amy", "with space", "zed", "Émile", "😀"];
    expect(h.store.userList()).toEqual(want);
    await h.reopen();
    expect(h.store.userList(), "after reopen").toEqual(want);
    expect(await h.store.checkPassword("a\0b", "pw")).toBe(true);
    expect(await h.store.checkPassword("a", "pw"), "a name cut at the NUL is another user").toBe(false);
  });

  it("refuses a plain password where a hash is expected, names that are not well-formed, and names over 32 KiB", async () => {
    await expect(h.apply((tx, s) => s.userAdd(tx, "u", "plain-password", false))).rejects.toThrow(/not a hash/);
    await expect(h.apply((tx, s) => s.userAdd(tx, "bad\uD800", undefined, true))).rejects.toThrow(/well-formed/);
    await expect(h.apply((tx, s) => s.roleAdd(tx, "r".repeat(32_769)))).rejects.toMatchObject({
      code: "REQUEST_TOO_LARGE",
      detail: expect.stringMatching(/32769 bytes/) as unknown,
    });
    expect(h.store.userList()).toEqual([]);
    expect(h.store.roleList()).toEqual([]);
    expect(h.store.revision).toBe(1);
  });

  it("keeps user and role names up to 32 KiB (as etcd), past LMDB's key limit, across reopen", async () => {
    const long = "u".repeat(3000);
    const sibling = `${"u".repeat(2999)}v`; // shares the first 2,999 bytes
    const role = "r".repeat(32_768);
    await h.apply((tx, s) => {
      s.roleAdd(tx, role);
      s.roleGrantPermission(tx, role, { permType: PermType.READ, key: enc("k".repeat(5000)), rangeEnd: enc("l") });
    });
    await h.addUser(sibling, "pw");
    await h.addUser(long, "pw", [role]);
    await h.reopen();
    expect(h.store.userList().map((n) => n.length)).toEqual([3000, 3000]);
    expect(h.store.userList()).toEqual([long, sibling]);
    expect(h.store.userGet(long).roles).toEqual([role]);
    expect(h.store.roleGet(role).permissions.map((p) => p.key.length)).toEqual([5000]);
    expect(await h.store.checkPassword(sibling, "pw")).toBe(true);
    await h.apply((tx, s) => s.userDelete(tx, long));
    await h.reopen();
    expect(h.store.userList()).toEqual([sibling]);
  });
});

describe("roles and permissions", () => {
  it("refuses an empty name, a duplicate, unknown roles, and revoking a permission never granted", async () => {
    await refused("ROLE_EMPTY", (tx, s) => s.roleAdd(tx, ""));
    await h.apply((tx, s) => s.roleAdd(tx, "r"));
    await refused("ROLE_ALREADY_EXIST", (tx, s) => s.roleAdd(tx, "r"));
    const perm = { permType: PermType.READ, key: enc("a"), rangeEnd: new Uint8Array(0) };
    await refused("ROLE_NOT_FOUND", (tx, s) => s.roleDelete(tx, "x"));
    await refused("ROLE_NOT_FOUND", (tx, s) => s.roleGrantPermission(tx, "x", perm));
    await refused("ROLE_NOT_FOUND", (tx, s) => s.roleRevokePermission(tx, "x", enc("a"), new Uint8Array(0)));
    await refused("PERMISSION_NOT_GRANTED", (tx, s) => s.roleRevokePermission(tx, "r", enc("a"), new Uint8Array(0)));
    expect(() => h.store.roleGet("x")).toThrow(expect.objectContaining({ code: "ROLE_NOT_FOUND" }));
    // Same key, different range end: a different permission.
    await h.apply((tx, s) => s.roleGrantPermission(tx, "r", perm));
    await refused("PERMISSION_NOT_GRANTED", (tx, s) => s.roleRevokePermission(tx, "r", enc("a"), enc("b")));
  });

  it("a grant on the same key and range end changes its type; permissions stay sorted by key", async () => {
    const none = new Uint8Array(0);
    await h.apply((tx, s) => {
      s.roleAdd(tx, "r");
      s.roleGrantPermission(tx, "r", { permType: PermType.READ, key: enc("b"), rangeEnd: enc("c") });
      s.roleGrantPermission(tx, "r", { permType: PermType.WRITE, key: enc("a"), rangeEnd: none });
      s.roleGrantPermission(tx, "r", { permType: PermType.READWRITE, key: enc("b"), rangeEnd: enc("c") });
    });
    const perms = h.store.roleGet("r").permissions;
    expect(perms.map((p) => [Buffer.from(p.key).toString(), Buffer.from(p.rangeEnd).toString(), p.permType])).toEqual([
      ["a", "", PermType.WRITE],
      ["b", "c", PermType.READWRITE],
    ]);
  });

  it("deleting a role takes it from every user holding it", async () => {
    await h.apply((tx, s) => {
      s.roleAdd(tx, "r1");
      s.roleAdd(tx, "r2");
    });
    await h.addUser("u1", "pw", ["r1", "r2"]);
    await h.addUser("u2", "pw", ["r1"]);
    await h.apply((tx, s) => s.roleDelete(tx, "r1"));
    expect(h.store.userGet("u1").roles).toEqual(["r2"]);
    expect(h.store.userGet("u2").roles).toEqual([]);
    await h.reopen();
    expect(h.store.userGet("u1").roles, "after reopen").toEqual(["r2"]);
  });
});

describe("persistence", () => {
  it("survives reopen: enabled flag, revision, users, roles, permissions, passwords, --no-password", async () => {
    await h.apply((tx, s) => {
      s.roleAdd(tx, "reader");
      s.roleGrantPermission(tx, "reader", { permType: PermType.READ, key: enc("/a/"), rangeEnd: enc("/a0") });
      s.roleGrantPermission(tx, "reader", { permType: PermType.WRITE, key: enc("z"), rangeEnd: Uint8Array.of(0) });
    });
    await h.addUser("alice", "secret", ["reader"]);
    await h.apply((tx, s) => s.userAdd(tx, "svc", undefined, true));
    await h.enableWithRoot();
    const rev = h.store.revision;
    await h.reopen();
    const s = h.store;
    expect(s.enabled).toBe(true);
    expect(s.revision).toBe(rev);
    expect(s.userList()).toEqual(["alice", "root", "svc"]);
    expect(s.userGet("svc").noPassword).toBe(true);
    expect(s.roleGet("reader").permissions).toEqual([
      { permType: PermType.READ, key: enc("/a/"), rangeEnd: enc("/a0") },
      { permType: PermType.WRITE, key: enc("z"), rangeEnd: Uint8Array.of(0) },
    ]);
    expect(await s.checkPassword("alice", "secret")).toBe(true);
    expect(await s.checkPassword("alice", "wrong")).toBe(false);
    expect(s.isRangePermitted("alice", enc("/a/x"), undefined)).toBe(true);
    expect(s.isPutPermitted("alice", enc("zz"))).toBe(true);
    expect(s.isPutPermitted("alice", enc("/a/x"))).toBe(false);
  });

  it("a refused request writes nothing, seen after reopen", async () => {
    await h.addUser("alice", "pw");
    const rev = h.store.revision;
    await refused("USER_ALREADY_EXIST", (tx, s) => s.userAdd(tx, "alice", undefined, true));
    await h.reopen();
    expect(h.store.revision).toBe(rev);
    expect(h.store.userGet("alice").noPassword).toBe(false);
  });

  it("reload() brings memory back to the backend after a batch that failed after an auth mutation", async () => {
    await h.addUser("alice", "pw");
    const rev = h.store.revision;
    await expect(
      h.apply((tx, s) => {
        s.roleAdd(tx, "r");
        throw new Error("a later step of the batch failed");
      }),
    ).rejects.toThrow(/later step/);
    expect(h.store.roleList(), "memory saw the aborted mutation").toEqual(["r"]);
    h.backend.readNow((view) => h.store.reload(view));
    expect(h.store.roleList()).toEqual([]);
    expect(h.store.revision).toBe(rev);
  });
});
