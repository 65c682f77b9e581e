// Proves the harness's peer proxy: which links a cut covers (a member isolated, one direction dropped, heal of one
// member, unattributed requests); and that it really cuts raft traffic, for real etcd (HTTP/1.1 peers) and
// etcd-ts (HTTP/2 peers): with only the leader → follower direction dropped, that follower stops hearing
// heartbeats and campaigns (it no longer names that leader), also on connections opened before the proxy knew the
// member ids; with the leader cut off, the other two members elect another leader.
import { afterEach, describe, expect, it } from "vitest";
import { flowOf, PeerLinks } from "../../harness/targets/peer_proxy.js";
import type { EtcdCluster } from "../../harness/targets/etcd_cluster.js";
import { etcdBinaryVersion } from "../../harness/targets/etcd_process.js";
import { makeCluster, type ClusterKind } from "../../harness/targets/make.js";

async function until(what: string, timeoutMs: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("flowOf", () => {
  it("reads etcd's stream GETs as the dialled member sending, everything else as the dialler sending", () => {
    expect(flowOf(1, 2, "/raft/stream/msgappv2/abc", false)).toEqual({ sender: 2, receiver: 1 });
    expect(flowOf(1, 2, "/raft", false)).toEqual({ sender: 1, receiver: 2 });
    expect(flowOf(1, 2, "/raft/stream", true)).toEqual({ sender: 1, receiver: 2 });
  });
});

describe("PeerLinks.isCut", () => {
  const flow = (sender: number | undefined, receiver: number | undefined) => ({ sender, receiver });

  it("cuts every link of an isolated member, both ways, and unattributed requests to it", () => {
    const l = new PeerLinks();
    l.isolate(1);
    expect([flow(0, 1), flow(1, 2), flow(undefined, 1), flow(1, undefined)].map((f) => l.isCut(f))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([flow(0, 2), flow(2, 0), flow(undefined, 0)].map((f) => l.isCut(f))).toEqual([false, false, false]);
  });

  it("drops one direction only, and leaves unattributed requests alone", () => {
    const l = new PeerLinks();
    l.drop(0, 1);
    expect([flow(0, 1), flow(1, 0), flow(undefined, 1), flow(0, undefined)].map((f) => l.isCut(f))).toEqual([
      true,
      false,
      false,
      false,
    ]);
  });

  it("heals one member without reopening the links of another isolated member or a dropped link", () => {
    const l = new PeerLinks();
    l.isolate(0);
    l.isolate(1);
    l.drop(2, 0);
    l.heal(0);
    expect([flow(0, 1), flow(0, 2), flow(2, 0), flow(1, 2)].map((f) => l.isCut(f))).toEqual([true, false, true, true]);
    l.healAll();
    expect([flow(0, 1), flow(2, 0), flow(1, 2)].map((f) => l.isCut(f))).toEqual([false, false, false]);
  });
});

/** agreedLeader waits until every member names the same leader and returns its id. */
async function agreedLeader(c: EtcdCluster): Promise<bigint> {
  let id = 0n;
  await until("every member to follow one leader", 20_000, async () => {
    const leaders = await Promise.all(
      [0, 1, 2].map((i) =>
        c.status(i).then(
          (st) => st.leader,
          () => 0n,
        ),
      ),
    );
    id = leaders[0]!;
    return id !== 0n && leaders.every((x) => x === id);
  });
  return id;
}

const FAST = ["--heartbeat-interval", "100", "--election-timeout", "1000"];

for (const kind of ["etcd-ts", "etcd"] as ClusterKind[]) {
  describe.skipIf(kind === "etcd" && etcdBinaryVersion() === undefined)(`peer proxy cuts links on ${kind}`, () => {
    let cluster: EtcdCluster | undefined;
    let links: PeerLinks | undefined;
    afterEach(async () => {
      await cluster?.stop();
      await links?.close();
    });

    it("drops one direction of one link, then isolates the leader", async () => {
      const l = new PeerLinks();
      links = l;
      const slot = makeCluster(kind, 3, { peerAdvertise: (i, port) => l.listen(i, port), extraArgs: FAST });
      if (slot.target === undefined) throw new Error(slot.reason);
      const c = slot.target;
      cluster = c;
      await c.start();
      // The ids are learnt only now: every peer connection was opened before, and must still be attributed.
      for (let i = 0; i < 3; i++) l.ids.set((await c.status(i)).header.memberId.toString(16), i);
      const leaderId = await agreedLeader(c);
      const leader = l.ids.get(leaderId.toString(16))!;
      const follower = [0, 1, 2].find((i) => i !== leader)!;
      // Cut off from the leader's heartbeats only, the follower campaigns: it no longer names that leader.
      l.drop(leader, follower);
      await until("the follower to stop following", 15_000, async () => (await c.status(follower)).leader !== leaderId);
      l.healAll();
      const next = l.ids.get((await agreedLeader(c)).toString(16))!;
      l.isolate(next);
      const others = [0, 1, 2].filter((i) => i !== next);
      await until("a new leader among the others", 15_000, async () => {
        const st = await c.status(others[0]!).catch(() => undefined);
        return st !== undefined && st.leader !== 0n && l.ids.get(st.leader.toString(16)) !== next;
      });
      l.healAll();
    }, 60_000);
  });
}
