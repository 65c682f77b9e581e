// Proves the cluster harness's fault and membership seams on real etcd 3.4 (3 members, loopback): the peer proxy
// really cuts a follower off (it loses its leader while the other two keep committing writes) and heal() brings
// it back (it names the leader again and serves a linearizable read of a write made while it was cut off);
// the role-change log lines give its term; a member announced through MemberAdd --learner joins through
// prepareJoin/startJoin with --initial-cluster-state existing and reports itself a learner.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import { EtcdCluster } from "../../harness/targets/etcd_cluster.js";

let cluster: EtcdCluster;

beforeAll(async () => {
  cluster = new EtcdCluster(3, { faults: "proxy", extraArgs: ["--pre-vote=true"] });
  await cluster.start();
});
afterAll(async () => {
  await cluster.stop();
});

/** until polls `probe` every 50 ms until it returns true; fails after `ms` with `what`. */
async function until(what: string, ms: number, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

describe("EtcdCluster peer proxy", () => {
  it("isolates a follower and heals it", async () => {
    const leader = await cluster.leaderIndex();
    expect(leader, "a leader among 3").toBeGreaterThanOrEqual(0);
    const victim = (leader + 1) % 3,
      other = (leader + 2) % 3;
    await cluster.isolate(victim);
    await until(`m${victim} loses its leader`, 15_000, () =>
      cluster.status(victim).then(
        (st) => st.leader === 0n,
        () => false,
      ),
    );
    const writer = new EtcdClient({ endpoints: [cluster.endpoint(other)], callTimeoutMs: 5_000 });
    try {
      const put = await writer.put("/faults/while-cut", "v1");
      expect(put.header.revision, "the other two still commit").toBeGreaterThan(1n);
      expect(cluster.loggedTerm(victim), "the cut-off member logged a role change (pre-candidate)").toBeGreaterThan(0);
      await cluster.heal(victim);
      await until(`m${victim} names a leader again`, 15_000, () =>
        cluster.status(victim).then(
          (st) => st.leader !== 0n,
          () => false,
        ),
      );
      const reader = new EtcdClient({ endpoints: [cluster.endpoint(victim)], callTimeoutMs: 5_000 });
      try {
        const got = await reader.get("/faults/while-cut");
        expect(got.kvs[0]?.value.toString(), "the healed member reads the write made while it was cut off").toBe("v1");
      } finally {
        reader.close();
      }
    } finally {
      writer.close();
    }
  }, 45_000);

  it("joins a learner announced through MemberAdd", async () => {
    const admin = new EtcdClient({ endpoints: cluster.endpoints(), callTimeoutMs: 5_000 });
    try {
      const { index, peerUrl } = await cluster.prepareJoin();
      expect(index, "the 4th member slot").toBe(3);
      let added: bigint | undefined;
      // etcd refuses every add with `unhealthy cluster` until its voters have been connected for 5 s: a definite
      // refusal, so only that one is sent again.
      await until("MemberAdd --learner accepted", 20_000, () =>
        admin.cluster.memberAdd([peerUrl], { isLearner: true }).then(
          (r) => {
            added = r.member.id;
            return true;
          },
          (err: unknown) => {
            if (errorCode(err) === "UNHEALTHY") return false;
            throw err;
          },
        ),
      );
      await cluster.startJoin(index);
      const st = await cluster.status(index);
      expect(st.isLearner, "the joined member is a learner").toBe(true);
      expect(st.header.memberId, "the id MemberAdd returned").toBe(added);
    } finally {
      admin.close();
    }
  }, 45_000);
});
