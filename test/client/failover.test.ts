// Proves the client's round-robin failover against a real 3-member etcd 3.4 cluster: the client is connected
// to a follower, which is killed with SIGKILL. The next read succeeds by moving to the next endpoint; a write
// fails at most once (UNAVAILABLE, never retried by the client because it may have been applied) and then
// succeeds; every write is applied exactly once; the watch resumes on another member from the last revision
// it saw + 1, so it sees every event once, in order. Before that, a frozen member (SIGSTOP: the TCP connection
// stays open, nothing answers) is detected by the gRPC keepalive options and its watch moves on too.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientCallError, EtcdClient } from "../../core/client/index.js";
import { EtcdCluster } from "../../harness/targets/etcd_cluster.js";

let cluster: EtcdCluster;

beforeAll(async () => {
  cluster = new EtcdCluster(3);
  await cluster.start();
});

afterAll(async () => {
  await cluster?.stop();
});

async function followerIndex(eps: readonly string[]): Promise<number> {
  const statuses = await Promise.all(eps.map(async (e) => {
    const c = new EtcdClient({ endpoints: [e] });
    const st = await c.status();
    c.close();
    return st;
  }));
  return statuses.findIndex((st) => st.header.memberId !== st.leader);
}

describe("keepalive", () => {
  it("a frozen member is found dead by the keepalive ping: the watch moves to the next endpoint", async () => {
    const eps = cluster.endpoints();
    const f = await followerIndex(eps);
    expect(f, "a follower exists").toBeGreaterThanOrEqual(0);
    const others = eps.filter((_, i) => i !== f);
    // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time), so 6 s; 1 s to answer one.
    const client = new EtcdClient({ endpoints: [eps[f]!, ...others], keepAliveTimeMs: 6_000, keepAliveTimeoutMs: 1_000 });
    const writer = new EtcdClient({ endpoints: others });
    try {
      const w = client.watch("/ka/", { prefix: true });
      await w.created;
      expect(client.connection.currentEndpoint()).toBe(eps[f]);
      void cluster.kill(f, "SIGSTOP"); // resolves only when the member exits; it is continued below
      const put = await writer.put("/ka/x", "1");
      const next = await w[Symbol.asyncIterator]().next();
      expect(next.value?.events[0]?.kv.modRevision, "the put reached the watch through another member").toBe(put.header.revision);
      expect(client.connection.currentEndpoint(), "moved off the frozen member").not.toBe(eps[f]);
      w.cancel();
    } finally {
      void cluster.kill(f, "SIGCONT");
      client.close();
      writer.close();
    }
    const back = new EtcdClient({ endpoints: [eps[f]!] });
    expect((await back.get("/ka/x")).kvs.length, "the member serves again after SIGCONT").toBe(1);
    back.close();
  });
});

describe("round-robin failover on a 3-member cluster", () => {
  it("kill -9 the member the client uses: reads move on, writes apply once, the watch loses nothing", async () => {
    const eps = cluster.endpoints();
    const probe = new EtcdClient({ endpoints: eps });
    const leader = (await probe.status()).leader;
    const statuses = await Promise.all(eps.map((e) => new EtcdClient({ endpoints: [e] })).map(async (c) => {
      const s = await c.status();
      c.close();
      return s.header.memberId;
    }));
    probe.close();
    const victim = statuses.findIndex((id) => id !== leader);
    expect(victim, "a follower exists").toBeGreaterThanOrEqual(0);
    const order = [eps[victim]!, ...eps.filter((_, i) => i !== victim)];
    const client = new EtcdClient({ endpoints: order, callTimeoutMs: 10_000 });
    try {
      const create = (k: string) => client.txn({
        compare: [{ key: k, target: "MOD", result: "EQUAL", value: 0n }],
        success: [{ put: { key: k, value: k } }],
      });
      for (let i = 0; i < 5; i++) expect((await create(`/fo/k${i}`)).succeeded).toBe(true);
      const w = client.watch("/fo/", { prefix: true, startRevision: 1n });
      await w.created;
      expect(client.connection.currentEndpoint()).toBe(eps[victim]);

      await cluster.kill(victim);
      expect((await client.get("/fo/", { prefix: true, countOnly: true })).count, "read after the kill").toBe(5n);
      expect(client.connection.currentEndpoint()).not.toBe(eps[victim]);

      const failures: string[] = [];
      for (let i = 5; i < 15; i++) {
        const k = `/fo/k${i}`;
        try {
          expect((await create(k)).succeeded).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(ClientCallError);
          failures.push((err as ClientCallError).code);
          expect((await create(k)).succeeded, `${k} second attempt`).toBe(true);
        }
      }
      expect(failures.length, `write failures after the kill: ${failures.join(",")}`).toBeLessThanOrEqual(1);
      const all = await client.get("/fo/", { prefix: true });
      expect(all.kvs.map((kv) => kv.version), "each write applied once").toEqual(Array(15).fill(1n));

      const seen: string[] = [];
      const revs: bigint[] = [];
      for await (const batch of w) {
        for (const e of batch.events) {
          seen.push(e.kv.key.toString());
          revs.push(e.kv.modRevision);
        }
        if (seen.length >= 15) break;
      }
      w.cancel();
      expect(seen.sort()).toEqual(all.kvs.map((kv) => kv.key.toString()).sort());
      for (let i = 1; i < revs.length; i++) expect(revs[i]! > revs[i - 1]!, `event ${i} after ${i - 1}`).toBe(true);
    } finally {
      client.close();
    }
  });
});
