// Proves the client's round-robin failover against a 3-member cluster, real etcd 3.4 and etcd-ts alike, in rounds
// until every member was killed once (leader or not; at most 6): kill -9 the member the client is connected to,
// then the next read succeeds by moving to the next endpoint; a create fails at most once (UNAVAILABLE, never
// retried by the client because it may have been applied) and is then sent again by the test; every create is
// applied exactly once; one watch, open through all the kills, resumes on another member each time from the last
// revision it saw + 1, so it sees every event once, in order; the killed member is restarted before the next
// round. Before that, a frozen member (SIGSTOP: the TCP connection stays open, nothing answers) is detected by the
// gRPC keepalive options and its watch moves on too. Writes are guarded creates (cluster_writes.ts): a server may
// answer "request timed out" under load, and such a write is sent again without any chance of applying it twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import type { EtcdCluster } from "../../harness/targets/etcd_cluster.js";
import { CLUSTER_KINDS, makeCluster } from "../../harness/targets/make.js";
import { createOnce, waitWritable } from "./cluster_writes.js";

async function followerIndex(eps: readonly string[]): Promise<number> {
  const statuses = await Promise.all(
    eps.map(async (e) => {
      const c = new EtcdClient({ endpoints: [e] });
      const st = await c.status();
      c.close();
      return st;
    }),
  );
  return statuses.findIndex((st) => st.header.memberId !== st.leader);
}

for (const kind of CLUSTER_KINDS) {
  describe(`${kind}, 3 members`, () => {
    let cluster: EtcdCluster;

    beforeAll(async () => {
      const slot = makeCluster(kind, 3);
      if (slot.target === undefined) throw new Error(`${slot.name} cannot run: ${slot.reason}`);
      cluster = slot.target;
      await cluster.start();
      await waitWritable(cluster.endpoints());
    });

    afterAll(async () => {
      await cluster?.stop();
    });

    describe("keepalive", () => {
      it("a frozen member is found dead by the keepalive ping: the watch moves to the next endpoint", async () => {
        const eps = cluster.endpoints();
        const f = await followerIndex(eps);
        expect(f, "a follower exists").toBeGreaterThanOrEqual(0);
        const others = eps.filter((_, i) => i !== f);
        // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time), so 6 s; 1 s to answer one.
        const client = new EtcdClient({
          endpoints: [eps[f]!, ...others],
          keepAliveTimeMs: 6_000,
          keepAliveTimeoutMs: 1_000,
        });
        const writer = new EtcdClient({ endpoints: others });
        try {
          const w = client.watch("/ka/", { prefix: true });
          await w.created;
          expect(client.connection.currentEndpoint()).toBe(eps[f]);
          void cluster.kill(f, "SIGSTOP"); // resolves only when the member exits; it is continued below
          const failures = await createOnce(writer, "/ka/x");
          const written = (await writer.get("/ka/x")).kvs[0];
          expect(written?.version, `created once (${failures.length} ambiguous sends)`).toBe(1n);
          const next = await w[Symbol.asyncIterator]().next();
          expect(next.value?.events[0]?.kv.modRevision, "the put reached the watch through another member").toBe(
            written?.modRevision,
          );
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
        await waitWritable(eps);
      });
    });

    describe("round-robin failover on a 3-member cluster", () => {
      it("kill -9 each member in turn: reads move on, writes apply once, one watch loses and repeats nothing", async () => {
        const eps = cluster.endpoints();
        const client = new EtcdClient({ endpoints: eps, callTimeoutMs: 10_000 });
        let keys = 0;
        try {
          for (let i = 0; i < 5; i++) await createOnce(client, `/fo/k${keys++}`);
          const w = client.watch("/fo/", { prefix: true, startRevision: 1n });
          await w.created;
          const victims = new Set<string>();
          // Until each member was the connected one once (the client may pass a member while one is restarting).
          for (let round = 0; victims.size < 3 && round < 6; round++) {
            const victim = client.connection.currentEndpoint();
            victims.add(victim);
            await cluster.kill(eps.indexOf(victim));
            expect(
              (await client.get("/fo/", { prefix: true, countOnly: true })).count,
              `round ${round}: read after the kill`,
            ).toBe(BigInt(keys));
            expect(client.connection.currentEndpoint(), `round ${round}: moved off ${victim}`).not.toBe(victim);
            const failures: string[] = [];
            for (let i = 0; i < 5; i++)
              failures.push(...(await createOnce(client, `/fo/k${keys++}`)).map((f) => f.code));
            expect(
              failures.length,
              `round ${round}: create failures after the kill: ${failures.join(",")}`,
            ).toBeLessThanOrEqual(1);
            await cluster.restart(eps.indexOf(victim));
            await waitWritable(eps); // the restarted member has caught up far enough to commit through
          }
          expect(victims.size, `killed ${[...victims].join(", ")}`).toBe(3);
          const all = await client.get("/fo/", { prefix: true });
          expect(
            all.kvs.map((kv) => kv.version),
            "each create applied once",
          ).toEqual(Array(keys).fill(1n));

          const expected = all.kvs.map((kv) => kv.modRevision).sort((a, b) => (a < b ? -1 : 1));
          const revs: bigint[] = [];
          for await (const batch of w) {
            for (const e of batch.events) revs.push(e.kv.modRevision);
            if (revs[revs.length - 1]! >= expected[expected.length - 1]!) break;
          }
          w.cancel();
          expect(revs, `every create's event once, in order, through ${victims.size}+ kills`).toEqual(expected);
        } finally {
          client.close();
        }
      });
    });
  });
}
