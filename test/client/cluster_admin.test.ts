// Proves the member and maintenance wrappers against one real 3-member etcd 3.4 cluster: member list, add (a
// learner that never starts), promote refused (LEARNER_NOT_READY), update, remove; alarms listed, blocking
// writes (NO_SPACE) and disarmed; defragment; hash and hashKV (equal on every member); a snapshot streamed
// in chunks whose sha256 trailer matches its bytes; move-leader; endpoints synced from MemberList, by hand and
// by the autoSyncIntervalMs timer.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { EtcdError } from "../../core/errors.js";
import { EtcdCluster } from "../../harness/targets/etcd_cluster.js";
import { freePort } from "../../harness/targets/launcher.js";

let cluster: EtcdCluster;
let client: EtcdClient;
const opened: EtcdClient[] = [];

function clientFor(endpoint: string, opts: { autoSyncIntervalMs?: number } = {}): EtcdClient {
  const c = new EtcdClient({ endpoints: [endpoint], ...opts });
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
  cluster = new EtcdCluster(3);
  await cluster.start();
  client = new EtcdClient({ endpoints: cluster.endpoints() });
  opened.push(client);
});

afterAll(async () => {
  for (const c of opened) c.close();
  await cluster?.stop();
});

describe("maintenance", () => {
  it("lists an alarm, which blocks writes with NO_SPACE, and disarms it", async () => {
    const memberId = (await client.status()).header.memberId;
    expect(await client.maintenance.alarmList()).toEqual([]);
    await client.connection.unary("Maintenance", "Alarm", {
      action: "ACTIVATE",
      memberID: memberId.toString(),
      alarm: "NOSPACE",
    });
    expect(await client.maintenance.alarmList()).toEqual([{ memberId, alarm: "NOSPACE" }]);
    expect(await codeOf(client.put("/alarm/k", "v")), "put while NOSPACE is raised").toBe("NO_SPACE");
    expect(await client.maintenance.alarmDisarm()).toEqual([{ memberId, alarm: "NOSPACE" }]);
    expect(await client.maintenance.alarmList()).toEqual([]);
    expect((await client.put("/alarm/k", "v")).header.revision > 0n, "put after the disarm").toBe(true);
  });

  it("defragments (the file shrinks after a compaction freed its pages), and hashKV agrees on every member", async () => {
    const big = "x".repeat(16 * 1024);
    for (let i = 0; i < 128; i++) await client.put(`/garbage/${i}`, big);
    await client.deleteRange("/garbage/", { prefix: true });
    const rev = (await client.put("/hash/last", "y")).header.revision;
    await client.compact(rev, { physical: true });
    const one = clientFor(cluster.endpoints()[0]!);
    const before = (await one.status()).dbSize;
    await one.maintenance.defragment();
    const after = (await one.status()).dbSize;
    expect(after * 2n < before, `db size ${before} → ${after} after freeing 2 MiB and defragmenting`).toBe(true);
    const hashRev = (await client.put("/hash/after", "z")).header.revision; // hashKV needs a revision above the compaction
    const hashes = await Promise.all(
      cluster.endpoints().map(async (ep) => {
        const c = clientFor(ep);
        await c.get("/hash/after"); // linearizable: this member has applied hashRev
        return (await c.maintenance.hashKV(hashRev)).hash;
      }),
    );
    expect(new Set(hashes).size, `hashKV at ${hashRev} on 3 members: ${hashes.join(",")}`).toBe(1);
    expect(typeof (await client.maintenance.hash()).hash).toBe("number");
  });

  it("streams a snapshot in chunks ending with the sha256 of the database", async () => {
    const one = clientFor(cluster.endpoints()[0]!);
    const chunks: Buffer[] = [];
    let lastRemaining = -1n;
    for await (const chunk of one.maintenance.snapshot()) {
      chunks.push(chunk.blob);
      lastRemaining = chunk.remainingBytes;
    }
    const all = Buffer.concat(chunks);
    expect(lastRemaining, "last chunk has nothing remaining").toBe(0n);
    expect(chunks.length, `chunks of ${all.length} bytes`).toBeGreaterThan(1);
    const db = all.subarray(0, all.length - 32);
    expect(
      createHash("sha256")
        .update(db)
        .digest()
        .equals(all.subarray(all.length - 32)),
      "sha256 trailer",
    ).toBe(true);
  });

  it("moves the leader to a follower", async () => {
    const eps = cluster.endpoints();
    const statuses = await Promise.all(eps.map((ep) => clientFor(ep).status()));
    const leaderId = statuses[0]!.leader;
    const leaderAt = statuses.findIndex((s) => s.header.memberId === leaderId);
    const target = statuses.find((s) => s.header.memberId !== leaderId)!.header.memberId;
    await clientFor(eps[leaderAt]!).maintenance.moveLeader(target);
    expect((await clientFor(eps[leaderAt]!).status()).leader, "leader after move-leader").toBe(target);
  });
});

describe("endpoint sync", () => {
  it("replaces one endpoint with every member's client URL, by hand and on the autoSync timer", async () => {
    const [first] = cluster.endpoints();
    const manual = clientFor(first!);
    const synced = await manual.syncEndpoints();
    expect(synced.length, synced.join(",")).toBe(3);
    expect(synced, "the connected endpoint kept as given").toContain(first);
    expect(
      synced.filter((e) => e !== first).every((e) => e.startsWith("http://127.0.0.1:")),
      synced.join(","),
    ).toBe(true);
    expect(manual.connection.currentEndpoint(), "the connected endpoint stays current").toBe(first);

    const timed = clientFor(first!, { autoSyncIntervalMs: 100 });
    expect(timed.connection.endpointCount).toBe(1);
    await vi.waitFor(() => expect(timed.connection.endpointCount, "endpoints after auto-sync").toBe(3), {
      timeout: 10_000,
      interval: 50,
    });
  });
});

/**
 * untilHealthy repeats a membership change that etcd refuses with UNHEALTHY: etcd 3.4 accepts one only after
 * every voter has been connected for 5 s (its strict reconfiguration check), and this cluster just started.
 */
async function untilHealthy<T>(change: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await change();
    } catch (err) {
      if (!(err instanceof EtcdError && err.code === "UNHEALTHY") || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe("members", () => {
  it("lists, adds a learner, refuses to promote it unstarted, updates and removes it", async () => {
    const before = await client.cluster.memberList();
    expect(before.members.map((m) => m.name).sort()).toEqual(["m0", "m1", "m2"]);
    expect(before.members.flatMap((m) => m.clientUrls).length, "one client URL each").toBe(3);

    const peer = `http://127.0.0.1:${await freePort()}`;
    const added = await untilHealthy(() => client.cluster.memberAdd([peer], { isLearner: true }));
    expect([added.member.isLearner, added.member.name, added.member.peerUrls]).toEqual([true, "", [peer]]);
    expect(added.members.length, "4 members after the add").toBe(4);
    expect(await codeOf(client.cluster.memberPromote(added.member.id)), "promote a learner that never started").toBe(
      "LEARNER_NOT_READY",
    );

    const moved = `http://127.0.0.1:${await freePort()}`;
    await client.cluster.memberUpdate(added.member.id, [moved]);
    const updated = (await client.cluster.memberList()).members.find((m) => m.id === added.member.id);
    expect(updated?.peerUrls).toEqual([moved]);

    const after = await client.cluster.memberRemove(added.member.id);
    expect(after.members.length, "3 members after the remove").toBe(3);
    expect(await codeOf(client.cluster.memberRemove(added.member.id)), "remove it twice").toBe("MEMBER_NOT_FOUND");
  });
});
