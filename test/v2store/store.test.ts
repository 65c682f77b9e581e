// Proves the v2 store's etcd 3.4 semantics case by case: set/get/create/update, in-order keys, compare-and-swap
// and compare-and-delete with their error causes, directories (listing, sorted, recursive, hidden keys, delete
// rules), TTLs (ttl reported, expiry at a SYNC time, refresh), the event history of 1,000 and its 401 error,
// watchers (one-shot, recursive, directory deletion), and that persisted records rebuild the same tree, which then
// expires keys of equal expiry in the same order as the store that wrote them.
import { describe, expect, it } from "vitest";
import { applyV2, eventJson, V2Error, V2Store, type V2Event } from "../../core/v2store/index.js";

const SEC = 1_000_000_000n;
const T0 = BigInt(Date.UTC(2030, 0, 1)) * 1_000_000n;

function store(now = { t: T0 }): V2Store {
  return new V2Store(() => now.t);
}

function v2err(f: () => unknown): V2Error {
  try {
    f();
  } catch (err) {
    if (err instanceof V2Error) return err;
    throw err;
  }
  throw new Error("expected a V2Error");
}

const none = { expireNs: 0n };

describe("keys", () => {
  it("set, get, and set again answer etcd's events", () => {
    const s = store();
    const e1 = s.set("/foo", false, "bar", none);
    expect(eventJson(e1)).toEqual({
      action: "set",
      node: { key: "/foo", value: "bar", modifiedIndex: 1, createdIndex: 1 },
    });
    const e2 = s.set("foo", false, "baz", none);
    expect(eventJson(e2)).toEqual({
      action: "set",
      node: { key: "/foo", value: "baz", modifiedIndex: 2, createdIndex: 2 },
      prevNode: { key: "/foo", value: "bar", modifiedIndex: 1, createdIndex: 1 },
    });
    expect(eventJson(s.get("/foo", false, false))).toEqual({
      action: "get",
      node: { key: "/foo", value: "baz", modifiedIndex: 2, createdIndex: 2 },
    });
    expect(s.get("/foo", false, false).etcdIndex).toBe(2);
    s.get("/", true, false);
    expect(s.reads).toEqual({ get: 2, getRecursive: 1 });
  });

  it("a missing key is error 100 with the path as cause and the store index", () => {
    const s = store();
    s.set("/a", false, "1", none);
    const err = v2err(() => s.get("/nope/x", false, false));
    expect(err.toJSON()).toEqual({ errorCode: 100, message: "Key not found", cause: "/nope", index: 1 });
    expect(err.status).toBe(404);
  });

  it("a file in the path is error 104; the root is read only (107)", () => {
    const s = store();
    s.set("/f", false, "1", none);
    expect(v2err(() => s.set("/f/g", false, "x", none)).toJSON()).toMatchObject({ errorCode: 104, cause: "/f" });
    expect(v2err(() => s.set("/", false, "x", none)).toJSON()).toMatchObject({ errorCode: 107, cause: "/" });
    expect(v2err(() => s.delete("/", true, true)).errorCode).toBe(107);
  });

  it("create refuses an existing key (105); update needs one (100)", () => {
    const s = store();
    s.create("/k", false, "v", false, none);
    expect(v2err(() => s.create("/k", false, "w", false, none)).toJSON()).toEqual({
      errorCode: 105,
      message: "Key already exists",
      cause: "/k",
      index: 1,
    });
    expect(v2err(() => s.update("/x", "w", none)).errorCode).toBe(100);
    const u = s.update("/k", "w", none);
    expect(eventJson(u)).toEqual({
      action: "update",
      node: { key: "/k", value: "w", modifiedIndex: 2, createdIndex: 1 },
      prevNode: { key: "/k", value: "v", modifiedIndex: 1, createdIndex: 1 },
    });
  });

  it("POST makes in-order keys named by the 20-digit index", () => {
    const s = store();
    s.set("/other", false, "x", none);
    const e = applyV2(s, { method: "POST", path: "/queue", value: "job" });
    expect(e?.node.key).toBe("/queue/00000000000000000002");
    expect(e?.action).toBe("create");
  });
});

describe("compare and swap / delete", () => {
  it("compares value and index and reports etcd's causes", () => {
    const s = store();
    s.set("/c", false, "one", none);
    expect(v2err(() => s.compareAndSwap("/c", "two", 0, "x", none)).toJSON()).toEqual({
      errorCode: 101,
      message: "Compare failed",
      cause: "[two != one]",
      index: 1,
    });
    expect(v2err(() => s.compareAndSwap("/c", "", 7, "x", none)).cause).toBe("[7 != 1]");
    expect(v2err(() => s.compareAndSwap("/c", "two", 7, "x", none)).cause).toBe("[two != one] [7 != 1]");
    expect(v2err(() => s.compareAndSwap("/c", "two", 0, "x", none)).status).toBe(412);
    const ok = applyV2(s, { method: "PUT", path: "/c", value: "two", prevValue: "one" });
    expect(ok?.action).toBe("compareAndSwap");
    expect(ok?.node).toEqual({ key: "/c", value: "two", modifiedIndex: 2, createdIndex: 1 });
    expect(s.stats.compareAndSwapFail).toBe(4);
    expect(s.stats.compareAndSwapSuccess).toBe(1);
  });

  it("compare-and-delete removes only on a match", () => {
    const s = store();
    s.set("/d", false, "v", none);
    expect(v2err(() => applyV2(s, { method: "DELETE", path: "/d", prevIndex: 9 })).errorCode).toBe(101);
    const e = applyV2(s, { method: "DELETE", path: "/d", prevValue: "v" });
    expect(eventJson(e as V2Event)).toEqual({
      action: "compareAndDelete",
      node: { key: "/d", modifiedIndex: 2, createdIndex: 1 },
      prevNode: { key: "/d", value: "v", modifiedIndex: 1, createdIndex: 1 },
    });
    expect(v2err(() => s.get("/d", false, false)).errorCode).toBe(100);
  });

  it("prevExist=false creates, prevExist=true updates", () => {
    const s = store();
    expect(v2err(() => applyV2(s, { method: "PUT", path: "/p", value: "1", prevExist: true })).errorCode).toBe(100);
    expect(applyV2(s, { method: "PUT", path: "/p", value: "1", prevExist: false })?.action).toBe("create");
    expect(v2err(() => applyV2(s, { method: "PUT", path: "/p", value: "2", prevExist: false })).errorCode).toBe(105);
    expect(applyV2(s, { method: "PUT", path: "/p", value: "2", prevExist: true })?.action).toBe("update");
    expect(applyV2(s, { method: "PUT", path: "/p", value: "3", prevExist: true, prevValue: "2" })?.action).toBe(
      "compareAndSwap",
    );
  });
});

describe("directories", () => {
  it("lists children (hidden ones left out), sorted and recursive on request", () => {
    const s = store();
    s.set("/dir/b", false, "2", none);
    s.set("/dir/a", false, "1", none);
    s.set("/dir/_hidden", false, "h", none);
    s.set("/dir/sub/c", false, "3", none);
    const flat = s.get("/dir", false, true);
    expect(flat.node.nodes?.map((n) => n.key)).toEqual(["/dir/a", "/dir/b", "/dir/sub"]);
    expect(flat.node.nodes?.[2]).toEqual({ key: "/dir/sub", dir: true, modifiedIndex: 4, createdIndex: 4 });
    const deep = s.get("/dir", true, true);
    expect(deep.node.nodes?.[2]?.nodes).toEqual([{ key: "/dir/sub/c", value: "3", modifiedIndex: 4, createdIndex: 4 }]);
    expect(deep.node).toMatchObject({ key: "/dir", dir: true, modifiedIndex: 1, createdIndex: 1 });
    expect(s.get("/dir/_hidden", false, false).node.value).toBe("h");
    expect(eventJson(s.get("/", false, false)).node).toEqual({
      dir: true,
      nodes: [{ key: "/dir", dir: true, modifiedIndex: 1, createdIndex: 1 }],
    });
  });

  it("deleting a directory needs dir=true, and recursive when not empty", () => {
    const s = store();
    s.set("/e", true, "", none);
    s.set("/full/x", false, "1", none);
    expect(v2err(() => s.delete("/e", false, false)).toJSON()).toMatchObject({ errorCode: 102, cause: "/e" });
    expect(s.delete("/e", true, false).node).toEqual({ key: "/e", dir: true, modifiedIndex: 3, createdIndex: 1 });
    expect(v2err(() => s.delete("/full", true, false)).toJSON()).toMatchObject({
      errorCode: 108,
      message: "Directory not empty",
      cause: "/full",
    });
    s.delete("/full", false, true);
    expect(v2err(() => s.get("/full/x", false, false)).errorCode).toBe(100);
    s.set("/full2", true, "", none);
    expect(v2err(() => s.set("/full2", false, "1", none)).errorCode).toBe(102);
  });
});

describe("TTL", () => {
  it("reports expiration and a rounded-up ttl, and expires at the SYNC time", () => {
    const now = { t: T0 };
    const s = store(now);
    const e = s.set("/t", false, "v", { expireNs: T0 + 5n * SEC });
    expect(e.node).toEqual({
      key: "/t",
      value: "v",
      expiration: "2030-01-01T00:00:05Z",
      ttl: 5,
      modifiedIndex: 1,
      createdIndex: 1,
    });
    now.t = T0 + 2n * SEC + 1n;
    expect(s.get("/t", false, false).node.ttl).toBe(3);
    expect(s.hasTtlKeys).toBe(true);
    applyV2(s, { method: "SYNC", path: "/", timeNs: T0 + 4n * SEC });
    expect(s.get("/t", false, false).node.value).toBe("v");
    applyV2(s, { method: "SYNC", path: "/", timeNs: T0 + 5n * SEC });
    expect(v2err(() => s.get("/t", false, false)).errorCode).toBe(100);
    expect(s.stats.expireCount).toBe(1);
    expect(s.hasTtlKeys).toBe(false);
    expect(s.index).toBe(2);
  });

  it("refresh keeps the value, is not reported to watchers, and an update without ttl makes a key permanent", () => {
    const s = store();
    s.set("/r", false, "keep", { expireNs: T0 + 5n * SEC });
    const seen: V2Event[] = [];
    s.watch("/r", false, false, 0, (e) => seen.push(e));
    const r = s.set("/r", false, "", { expireNs: T0 + 50n * SEC, refresh: true });
    expect(r.refresh).toBe(true);
    expect(r.node.value).toBe("keep");
    expect(seen).toEqual([]);
    s.update("/r", "keep", none);
    expect(s.hasTtlKeys).toBe(false);
    expect(seen.map((e) => e.action)).toEqual(["update"]);
    expect(v2err(() => s.set("/missing", false, "", { expireNs: T0, refresh: true })).errorCode).toBe(100);
  });
});

describe("watch", () => {
  it("answers from history at a waitIndex, or waits for the next matching event", () => {
    const s = store();
    s.set("/w", false, "1", none);
    s.set("/w", false, "2", none);
    const past = s.watch("/w", false, false, 1, () => undefined);
    expect(past.event?.node.value).toBe("1");
    expect(past.event?.etcdIndex).toBe(2);
    const seen: V2Event[] = [];
    s.watch("/w", false, false, 0, (e) => seen.push(e));
    s.set("/other", false, "x", none);
    s.set("/w", false, "3", none);
    s.set("/w", false, "4", none);
    expect(seen.map((e) => e.node.value)).toEqual(["3"]);
  });

  it("recursive watchers see keys below; a directory delete reaches watchers of keys inside it", () => {
    const s = store();
    s.set("/d/k", false, "1", none);
    const rec: V2Event[] = [];
    const inner: V2Event[] = [];
    s.watch("/d", true, true, 0, (e) => rec.push(e));
    s.watch("/d/k", false, false, 0, (e) => inner.push(e));
    s.set("/d/j", false, "2", none);
    s.set("/d/_h", false, "h", none);
    s.delete("/d", true, true);
    // A stream watcher on the deleted directory hears the delete twice (as the removed path and as its key), as in etcd.
    expect(rec.map((e) => `${e.action} ${e.node.key}`)).toEqual(["set /d/j", "delete /d", "delete /d"]);
    expect(inner.map((e) => e.action)).toEqual(["delete"]);
    expect(s.watcherCount).toBe(1);
  });

  it("a watcher whose consumer throws is dropped and the write still applies", () => {
    const s = store();
    s.watch("/x", false, true, 0, () => {
      throw new Error("connection gone");
    });
    expect(s.set("/x", false, "1", none).action).toBe("set");
    expect(s.watcherCount).toBe(0);
    expect(s.get("/x", false, false).node.value).toBe("1");
  });

  it("keeps 1,000 events: an older waitIndex is error 401", () => {
    const s = store();
    for (let i = 0; i < 1005; i++) s.set("/h", false, String(i), none);
    const err = v2err(() => s.watch("/h", false, false, 3, () => undefined));
    expect(err.toJSON()).toEqual({
      errorCode: 401,
      message: "The event in requested index is outdated and cleared",
      cause: "the requested history has been cleared [6/3]",
      index: 1005,
    });
    expect(s.watch("/h", false, false, 6, () => undefined).event?.node.value).toBe("5");
  });
});

describe("persistence", () => {
  it("the records a write leaves rebuild the same tree", () => {
    const s = store();
    const saved = new Map<string, ReturnType<V2Store["takeDirty"]>[number]["record"]>();
    const flush = (): void => {
      for (const { path, record } of s.takeDirty()) {
        if (record === undefined) saved.delete(path);
        else saved.set(path, record);
      }
    };
    s.set("/a/b/c", false, "1", none);
    s.set("/a/x", false, "2", { expireNs: T0 + 9n * SEC });
    s.set("/gone/y", false, "3", none);
    flush();
    s.delete("/gone", true, true);
    s.update("/a/b/c", "4", none);
    flush();
    expect([...saved.keys()].sort()).toEqual(["/a", "/a/b", "/a/b/c", "/a/x"]);
    const r = store();
    r.load(
      s.index,
      [...saved].map(([path, record]) => ({ path, record: record! })),
    );
    expect(r.get("/", true, true)).toEqual(s.get("/", true, true));
    expect(r.index).toBe(s.index);
    expect(r.hasTtlKeys).toBe(true);
  });

  it("a rebuilt tree expires keys of equal expiry in the same order as the store that wrote them", () => {
    const s = store();
    const at = { expireNs: T0 + 5n * SEC };
    for (const p of ["/m", "/z", "/a"]) s.set(p, false, p, at);
    const records = s.takeDirty().map(({ path, record }) => ({ path, record: record! }));
    const r = store();
    r.load(s.index, records.reverse());
    const order = (st: V2Store): string[] => st.deleteExpired(T0 + 6n * SEC).map((e) => e.node.key ?? "");
    expect(order(r)).toEqual(["/a", "/m", "/z"]);
    expect(order(s)).toEqual(["/a", "/m", "/z"]);
  });
});
