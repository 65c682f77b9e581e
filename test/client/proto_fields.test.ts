// Proves core/api/proto's field numbers against real etcd 3.4 by behaviour: each request field below changes
// etcd's answer only if etcd decodes it at the number we wrote (sort order/target, min/max revisions, count and
// keys only, ignore_value, watch filters, lease leases, member list, alarms, HashKV, auth users/roles with
// key-range permissions, status). Raw grpc-js calls on the loaded services; one etcd child process.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEtcdProto, type ServiceName } from "../../core/api/proto/load.js";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";

let etcd: EtcdProcess;
const clients = new Map<ServiceName, grpc.Client>();

beforeAll(async () => {
  etcd = new EtcdProcess();
  await etcd.start();
  const { services } = loadEtcdProto();
  for (const name of ["KV", "Watch", "Lease", "Cluster", "Maintenance", "Auth"] as const) {
    clients.set(name, new services[name](etcd.endpoints()[0]!, grpc.credentials.createInsecure()));
  }
});

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await etcd?.stop();
});

/** Raw proto-loader objects: the test reads fields by their .proto names. */
// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf objects of every message type are walked generically
type Any = any;

function call(service: ServiceName, method: string, req: object): Promise<Any> {
  const c = clients.get(service) as unknown as Record<
    string,
    (r: object, cb: (e: Error | null, res: Any) => void) => void
  >;
  return new Promise((resolve, reject) => c[method]!.call(c, req, (e, res) => (e !== null ? reject(e) : resolve(res))));
}

const keys = (res: Any): string[] => (res.kvs as Any[]).map((kv) => kv.key.toString());

describe("KV fields", () => {
  it("Range honours sort, mod-revision bounds, count_only, keys_only and serializable", async () => {
    const revs: number[] = [];
    for (const k of ["a", "b", "c"])
      revs.push(
        Number((await call("KV", "Put", { key: Buffer.from(`/f/${k}`), value: Buffer.from(k) })).header.revision),
      );
    await call("KV", "Put", { key: Buffer.from("/f/a"), value: Buffer.from("a2") });
    const range = { key: Buffer.from("/f/"), range_end: Buffer.from("/f0") };
    expect(keys(await call("KV", "Range", { ...range, sort_order: "DESCEND", sort_target: "KEY" }))).toEqual([
      "/f/c",
      "/f/b",
      "/f/a",
    ]);
    expect(keys(await call("KV", "Range", { ...range, sort_order: "ASCEND", sort_target: "MOD" }))).toEqual([
      "/f/b",
      "/f/c",
      "/f/a",
    ]);
    expect(keys(await call("KV", "Range", { ...range, min_mod_revision: revs[2] }))).toEqual(["/f/a", "/f/c"]);
    expect(keys(await call("KV", "Range", { ...range, max_mod_revision: revs[1] }))).toEqual(["/f/b"]);
    expect(keys(await call("KV", "Range", { ...range, min_create_revision: revs[1] }))).toEqual(["/f/b", "/f/c"]);
    expect(keys(await call("KV", "Range", { ...range, max_create_revision: revs[0] }))).toEqual(["/f/a"]);
    const counted = await call("KV", "Range", { ...range, count_only: true });
    expect([counted.kvs.length, counted.count]).toEqual([0, "3"]);
    const keysOnly = await call("KV", "Range", { ...range, keys_only: true, serializable: true });
    expect(keysOnly.kvs.map((kv: Any) => kv.value.length)).toEqual([0, 0, 0]);
    const old = await call("KV", "Range", { key: Buffer.from("/f/a"), revision: revs[0] });
    expect(old.kvs[0].value.toString()).toBe("a");
  });

  it("Put honours ignore_value and prev_kv; DeleteRange returns prev_kvs", async () => {
    await call("KV", "Put", { key: Buffer.from("/iv"), value: Buffer.from("keep") });
    const r = await call("KV", "Put", { key: Buffer.from("/iv"), ignore_value: true, prev_kv: true });
    expect(r.prev_kv.value.toString()).toBe("keep");
    expect((await call("KV", "Range", { key: Buffer.from("/iv") })).kvs[0].version).toBe("2");
    const d = await call("KV", "DeleteRange", { key: Buffer.from("/iv"), prev_kv: true });
    expect([d.deleted, d.prev_kvs[0].value.toString()]).toEqual(["1", "keep"]);
  });

  it("Txn compares on VALUE and VERSION and returns the chosen branch", async () => {
    await call("KV", "Put", { key: Buffer.from("/t"), value: Buffer.from("x") });
    const txn = await call("KV", "Txn", {
      compare: [
        { key: Buffer.from("/t"), target: "VALUE", result: "EQUAL", value: Buffer.from("x") },
        { key: Buffer.from("/t"), target: "VERSION", result: "GREATER", version: 0 },
      ],
      success: [{ request_put: { key: Buffer.from("/t"), value: Buffer.from("y") } }],
      failure: [],
    });
    expect([txn.succeeded, txn.responses[0].response]).toEqual([true, "response_put"]);
  });
});

describe("Watch fields", () => {
  it("filters NOPUT: only the delete arrives", async () => {
    const c = clients.get("Watch") as unknown as { Watch(): grpc.ClientDuplexStream<object, Any> };
    const stream = c.Watch();
    const got: Any[] = [];
    const done = new Promise<void>((resolve) =>
      stream.on("data", (res: Any) => {
        got.push(res);
        if (res.events.length > 0) resolve();
      }),
    );
    stream.on("error", () => undefined);
    const created = new Promise<void>((resolve) => stream.once("data", () => resolve()));
    stream.write({ create_request: { key: Buffer.from("/wf"), filters: ["NOPUT"], prev_kv: true } });
    await created;
    await call("KV", "Put", { key: Buffer.from("/wf"), value: Buffer.from("v") });
    await call("KV", "DeleteRange", { key: Buffer.from("/wf") });
    await done;
    stream.cancel();
    const events = got.flatMap((r) => r.events);
    expect(events.map((e: Any) => e.type)).toEqual(["DELETE"]);
    expect(events[0].prev_kv.value.toString()).toBe("v");
    expect(got[0].created).toBe(true);
  });
});

describe("Lease, Cluster, Maintenance and Auth fields", () => {
  it("LeaseGrant with a chosen ID shows up in LeaseLeases and LeaseTimeToLive", async () => {
    const g = await call("Lease", "LeaseGrant", { TTL: 60, ID: "4242" });
    expect([g.ID, g.TTL]).toEqual(["4242", "60"]);
    expect((await call("Lease", "LeaseLeases", {})).leases.map((l: Any) => l.ID)).toContain("4242");
    expect((await call("Lease", "LeaseTimeToLive", { ID: "4242" })).grantedTTL).toBe("60");
  });

  it("MemberList, Alarm, HashKV and Status answer with their fields set", async () => {
    const members = await call("Cluster", "MemberList", {});
    expect(members.members.length).toBe(1);
    expect(members.members[0].name).toBe("bench");
    expect(members.members[0].clientURLs).toEqual([`http://${etcd.endpoints()[0]}`]);
    expect(members.members[0].isLearner).toBe(false);
    expect((await call("Maintenance", "Alarm", { action: "GET" })).alarms).toEqual([]);
    const h = await call("Maintenance", "HashKV", { revision: 0 });
    expect(h.hash > 0).toBe(true);
    const st = await call("Maintenance", "Status", {});
    expect([st.leader, st.isLearner, Number(st.dbSize) > 0, Number(st.raftAppliedIndex) > 0]).toEqual([
      members.members[0].ID,
      false,
      true,
      true,
    ]);
  });

  it("Auth users and roles with key-range permissions round-trip (auth left disabled)", async () => {
    await call("Auth", "UserAdd", { name: "u1", password: "pw", options: { no_password: false } });
    await call("Auth", "RoleAdd", { name: "r1" });
    await call("Auth", "RoleGrantPermission", {
      name: "r1",
      perm: { permType: "READWRITE", key: Buffer.from("/a"), range_end: Buffer.from("/b") },
    });
    await call("Auth", "UserGrantRole", { user: "u1", role: "r1" });
    expect((await call("Auth", "UserGet", { name: "u1" })).roles).toEqual(["r1"]);
    const role = await call("Auth", "RoleGet", { role: "r1" });
    expect([role.perm[0].permType, role.perm[0].key.toString(), role.perm[0].range_end.toString()]).toEqual([
      "READWRITE",
      "/a",
      "/b",
    ]);
    expect((await call("Auth", "UserList", {})).users).toEqual(["u1"]);
    expect((await call("Auth", "RoleList", {})).roles).toEqual(["r1"]);
    await call("Auth", "RoleRevokePermission", { role: "r1", key: Buffer.from("/a"), range_end: Buffer.from("/b") });
    expect((await call("Auth", "RoleGet", { role: "r1" })).perm).toEqual([]);
    const err = await call("Auth", "Authenticate", { name: "u1", password: "pw" }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/authentication is not enabled/);
  });
});
