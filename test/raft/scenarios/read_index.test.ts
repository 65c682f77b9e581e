// Spec: ReadIndex (ReadOnlySafe) answers only after the leader confirmed its leadership with a quorum's
// heartbeat acks for that request, with an index ≥ the commit index at request time; and a deposed leader,
// partitioned from the majority that moved on, never hands out a read index (so cannot serve a stale read).
import { describe, expect, it } from "vitest";
import { cluster, ELECTION_TICKS } from "./impl.js";

describe("ReadIndex", () => {
  it("returns only after the leader heard a quorum's heartbeat acks following the request", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n: 3, checkQuorum: false });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      c.propose(leader, "w0");
      c.runUntil(() => c.appliedEverywhere("w0"), 5 * ELECTION_TICKS, "w0 applied");
      const acks: number[] = [];
      c.net.intercept((m) => {
        if (m.to === leader && m.type === "MsgHeartbeatResp") acks.push(c.nowUnits);
        return undefined;
      });
      for (const id of c.ids()) if (id !== leader) c.net.cutOneWay(id, leader);
      const commitAtRequest = c.node(leader).commit;
      const requestedAt = c.nowUnits;
      c.readIndex(leader, "r1");
      c.runTicks(3 * ELECTION_TICKS);
      expect(c.reads.filter((r) => r.ctx === "r1").length, `seed=${seed}: read served without quorum acks`).toBe(0);
      c.net.heal();
      c.runUntil(() => c.reads.some((r) => r.ctx === "r1"), 3 * ELECTION_TICKS, "read served after heal");
      const read = c.reads.find((r) => r.ctx === "r1")!;
      expect(read.index, `seed=${seed}: read index vs commit at request`).toBeGreaterThanOrEqual(commitAtRequest);
      expect(read.node).toBe(leader);
      const acksBetween = acks.filter((t) => t > requestedAt && t <= read.atUnits).length;
      expect(acksBetween, `seed=${seed}: heartbeat acks between request and answer`).toBeGreaterThan(0);
    }
  });

  it("a deposed, partitioned leader never serves a read; the answer after healing is not stale", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n: 3, checkQuorum: false });
      const old = c.waitForLeader(5 * ELECTION_TICKS);
      const rest = c.ids().filter((id) => id !== old);
      c.net.isolate(old, c.ids());
      c.runUntil(() => rest.some((id) => c.node(id).isLeader()), 6 * ELECTION_TICKS, "majority elects");
      const fresh = rest.find((id) => c.node(id).isLeader()) as bigint;
      c.propose(fresh, "new-write");
      c.runUntil(() => c.appliedEverywhere("new-write", rest), 5 * ELECTION_TICKS, "new write committed by majority");
      const newCommit = c.node(fresh).commit;
      expect(c.node(old).isLeader(), "old leader still believes it leads (no check-quorum)").toBe(true);
      c.readIndex(old, "stale?");
      c.runTicks(5 * ELECTION_TICKS);
      expect(c.reads.filter((r) => r.ctx === "stale?").length, `seed=${seed}: deposed leader served a read`).toBe(0);
      c.net.heal();
      c.runTicks(5 * ELECTION_TICKS);
      for (const r of c.reads.filter((x) => x.ctx === "stale?")) {
        expect(r.index, `seed=${seed}: read index after heal`).toBeGreaterThanOrEqual(newCommit);
      }
    }
  });

  it("a follower's read is forwarded to the leader and answered with an index ≥ the leader's commit", () => {
    const c = cluster({ seed: 9, n: 3 });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    c.propose(leader, "w");
    c.runUntil(() => c.appliedEverywhere("w"), 5 * ELECTION_TICKS, "w applied");
    const follower = c.ids().find((id) => id !== leader) as bigint;
    const commit = c.node(leader).commit;
    c.readIndex(follower, "f1");
    c.runUntil(() => c.reads.some((r) => r.ctx === "f1"), 3 * ELECTION_TICKS, "follower read served");
    const r = c.reads.find((x) => x.ctx === "f1")!;
    expect(r.node).toBe(follower);
    expect(r.index).toBeGreaterThanOrEqual(commit);
  });
});
