// Proves core/client works against real etcd 3.4 over the wire: KV (range, put, delete, txn, compact) with
// bigint revisions, the byte-level Range summary agreeing with the decoded Range, watch (prev_kv, resume from
// a revision, COMPACTED), leases (grant, keepalive, revoke, LEASE_NOT_FOUND), status, server errors mapped
// to core/errors.ts codes, bad options refused, and round-robin failover past a dead endpoint (a write that
// was never sent moves on too). One etcd child process for the file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient, parseEndpoint, type WatchBatch } from "../../core/client/index.js";
import { loadEtcdProto, type SERVICE_NAMES } from "../../core/api/proto/load.js";
import { EtcdError } from "../../core/errors.js";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";
import { freePort } from "../../harness/targets/launcher.js";

let etcd: EtcdProcess;
let client: EtcdClient;

beforeAll(async () => {
  etcd = new EtcdProcess();
  await etcd.start();
  client = new EtcdClient({ endpoints: etcd.endpoints() });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

describe("protos", () => {
  it("load all six services with etcd's method names", () => {
    const { services } = loadEtcdProto();
    const methods = (n: (typeof SERVICE_NAMES)[number]) => Object.keys(services[n].service).sort();
    expect(methods("KV")).toEqual(["Compact", "DeleteRange", "Put", "Range", "Txn"]);
    expect(methods("Watch")).toEqual(["Watch"]);
    expect(methods("Lease")).toEqual(["LeaseGrant", "LeaseKeepAlive", "LeaseLeases", "LeaseRevoke", "LeaseTimeToLive"]);
    expect(methods("Maintenance").length, "Maintenance methods").toBe(7);
    expect(methods("Cluster").length, "Cluster methods").toBe(5);
    expect(methods("Auth").length, "Auth methods").toBe(16);
  });
});

describe("endpoints", () => {
  it("parses etcd's endpoint forms and rejects malformed ones", () => {
    expect(parseEndpoint("127.0.0.1:2379").target).toBe("127.0.0.1:2379");
    expect(parseEndpoint("http://localhost:2379/").target).toBe("localhost:2379");
    expect(parseEndpoint("https://h:1").secure).toBe(true);
    expect(parseEndpoint("unix:///run/e.sock").target).toBe("unix:/run/e.sock");
    for (const bad of ["", "ftp://h:1", "h", "h:99999", "http://"]) expect(() => parseEndpoint(bad), bad).toThrow();
    expect(() => new EtcdClient({ endpoints: [] })).toThrow(/empty/);
  });

  it("rejects bad options, saying which and the value passed", () => {
    const endpoints = ["127.0.0.1:2379"];
    expect(() => new EtcdClient({ endpoints, dialTimeoutMs: -1 })).toThrow(/dialTimeoutMs.*-1/);
    expect(() => new EtcdClient({ endpoints, keepAliveTimeMs: 0 })).toThrow(/keepAliveTimeMs.*0/);
    expect(() => new EtcdClient({ endpoints, autoSyncIntervalMs: Number.NaN })).toThrow(/autoSyncIntervalMs.*NaN/);
    expect(() => new EtcdClient({ endpoints, username: "u" })).toThrow(/username and password/);
    expect(() => new EtcdClient({ endpoints, tls: { cert: "x" } })).toThrow(/tls.cert and tls.key/);
  });
});

describe("kv", () => {
  it("puts, gets, ranges a prefix and deletes with revisions as bigint", async () => {
    const p1 = await client.put("/kv/a", "1");
    const p2 = await client.put("/kv/b", "2", { prevKv: true });
    expect(p2.header.revision, "revision grows by one per put").toBe(p1.header.revision + 1n);
    expect(p2.prevKv).toBeUndefined();
    const again = await client.put("/kv/a", "1b", { prevKv: true });
    expect(again.prevKv?.value.toString()).toBe("1");
    const one = await client.get("/kv/a");
    expect(one.kvs[0]?.version, "two puts → version 2").toBe(2n);
    expect(one.kvs[0]?.createRevision).toBe(p1.header.revision);
    const all = await client.get("/kv/", { prefix: true });
    expect(all.kvs.map((kv) => kv.key.toString())).toEqual(["/kv/a", "/kv/b"]);
    const page = await client.get("/kv/", { prefix: true, limit: 1 });
    expect([page.kvs.length, page.more, page.count]).toEqual([1, true, 2n]);
    const del = await client.deleteRange("/kv/", { prefix: true, prevKv: true });
    expect(del.deleted).toBe(2n);
    expect(del.prevKvs.length).toBe(2);
  });

  it("summarises a Range from its bytes exactly as the decoded Range reads", async () => {
    for (let i = 0; i < 50; i++) await client.put(`/sum/${String(i).padStart(3, "0")}`, "x".repeat(100 + i));
    const full = await client.get("/sum/", { prefix: true, limit: 20 });
    const sum = await client.rangeSummary("/sum/", { prefix: true, limit: 20 });
    expect(sum.kvCount).toBe(20);
    expect(sum.more).toBe(true);
    expect(sum.count).toBe(50n);
    expect(sum.revision).toBe(full.header.revision);
    expect(sum.lastKey?.toString()).toBe(full.kvs[19]?.key.toString());
    expect(sum.bytes, "encoded size covers the values").toBeGreaterThan(20 * 100);
  });

  it("runs kube-apiserver's create Txn: the second create fails its compare and reads the existing object", async () => {
    const create = (v: string) =>
      client.txn({
        compare: [{ key: "/txn/x", target: "MOD", result: "EQUAL", value: 0n }],
        success: [{ put: { key: "/txn/x", value: v } }],
        failure: [{ range: { key: "/txn/x" } }],
      });
    const first = await create("v1");
    expect(first.succeeded).toBe(true);
    const second = await create("v2");
    expect(second.succeeded).toBe(false);
    const r = second.responses[0];
    expect(r !== undefined && "range" in r ? r.range.kvs[0]?.value.toString() : "none").toBe("v1");
  });

  it("maps a read below the compacted revision to EtcdError COMPACTED", async () => {
    const a = await client.put("/cmp/k", "1");
    await client.put("/cmp/k", "2");
    const b = await client.put("/cmp/k", "3");
    await client.compact(b.header.revision, { physical: true });
    const err = await client.get("/cmp/k", { revision: a.header.revision }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdError);
    expect((err as EtcdError).code).toBe("COMPACTED");
  });
});

async function take(it: AsyncIterator<WatchBatch>, n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done === true) break;
    for (const e of r.value.events)
      out.push(`${e.type} ${e.kv.key.toString()}=${e.kv.value.toString()} prev=${e.prevKv?.value.toString() ?? "-"}`);
  }
  return out;
}

describe("watch", () => {
  it("delivers puts and deletes with prev_kv, and replays history from a start revision", async () => {
    const w = client.watch("/w/", { prefix: true, prevKv: true });
    const createdRev = await w.created;
    const first = await client.put("/w/a", "1");
    await client.put("/w/a", "2");
    await client.deleteRange("/w/a");
    const it = w[Symbol.asyncIterator]();
    expect(await take(it, 3)).toEqual(["PUT /w/a=1 prev=-", "PUT /w/a=2 prev=1", "DELETE /w/a= prev=2"]);
    w.cancel();
    expect(first.header.revision).toBe(createdRev + 1n);
    const replay = client.watch("/w/", { prefix: true, startRevision: first.header.revision + 1n });
    expect(await take(replay[Symbol.asyncIterator](), 2)).toEqual(["PUT /w/a=2 prev=-", "DELETE /w/a= prev=-"]);
    replay.cancel();
  });

  it("delivers a large event (a 1.4 MiB value, near etcd's 1.5 MiB request limit) intact", async () => {
    const value = Buffer.alloc(1400 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
    const put = await client.put("/big/v", value);
    const w = client.watch("/big/v", { startRevision: put.header.revision });
    const next = await w[Symbol.asyncIterator]().next();
    w.cancel();
    expect(next.value?.events[0]?.kv.value.equals(value), `${value.length} bytes back`).toBe(true);
  });

  it("ends with COMPACTED when asked for a compacted revision", async () => {
    const a = await client.put("/wc/k", "1");
    const b = await client.put("/wc/k", "2");
    await client.compact(b.header.revision, { physical: true });
    const w = client.watch("/wc/k", { startRevision: a.header.revision });
    const err = await w[Symbol.asyncIterator]()
      .next()
      .catch((e: unknown) => e);
    expect((err as EtcdError).code).toBe("COMPACTED");
  });
});

describe("lease", () => {
  it("grants, keeps alive, attaches keys, and revoke deletes them", async () => {
    const g = await client.leaseGrant(30);
    expect(g.ttlSeconds).toBe(30n);
    expect(g.id > 0n, `lease id ${g.id} is positive`).toBe(true);
    expect(await client.leases(), "the lease is listed").toContain(g.id);
    await client.put("/lease/k", "v", { lease: g.id });
    const ka = client.leaseKeepAlive(g.id);
    expect(await ka.first).toBe(30n);
    ka.stop();
    const ttl = await client.leaseTimeToLive(g.id, true);
    expect(ttl.keys.map((k) => k.toString())).toEqual(["/lease/k"]);
    await client.leaseRevoke(g.id);
    expect((await client.get("/lease/k")).kvs.length).toBe(0);
    const err = await client.leaseRevoke(g.id).catch((e: unknown) => e);
    expect((err as EtcdError).code).toBe("LEASE_NOT_FOUND");
  });
});

describe("maintenance and failover", () => {
  it("reports status with the server version", async () => {
    const st = await client.status();
    expect(st.version).toMatch(/^3\.4\./);
    expect(st.leader).toBe(st.header.memberId);
  });

  it("moves round-robin past a dead endpoint: a read, and a write that was never sent, go to the next one", async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const c = new EtcdClient({ endpoints: [dead, ...etcd.endpoints()], callTimeoutMs: 5_000 });
    try {
      const r = await c.get("/nothing");
      expect(r.kvs.length).toBe(0);
      expect(c.connection.currentEndpoint()).toBe(etcd.endpoints()[0]);

      // No connection to the dead endpoint was ever made, so the Put cannot have reached a server there.
      const w = new EtcdClient({ endpoints: [dead, ...etcd.endpoints()], callTimeoutMs: 5_000 });
      expect((await w.put("/fo", "1")).header.revision > 0n).toBe(true);
      expect(w.connection.currentEndpoint()).toBe(etcd.endpoints()[0]);
      w.close();
    } finally {
      c.close();
    }
  });
});
