// Spec: leadership transfer to an up-to-date follower succeeds quickly (MsgTimeoutNow: the target campaigns at
// once); a transfer to a learner is refused — no transfer starts and the leader and term stay.
import { describe, expect, it } from "vitest";
import { cluster, ELECTION_TICKS, ids } from "./impl.js";

describe("leader transfer", () => {
  it("to an up-to-date follower succeeds within an election timeout", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const c = cluster({ seed, n: 3 });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      c.propose(leader, "x");
      c.runUntil(() => c.appliedEverywhere("x"), 5 * ELECTION_TICKS, "x applied");
      const target = c.ids().find((id) => id !== leader) as bigint;
      const term = c.maxTerm();
      c.transferLeader(leader, target);
      const took = c.runUntil(() => c.stableLeader() === target, ELECTION_TICKS, `transfer to ${target}`);
      expect(took, `seed=${seed}: ticks to transfer`).toBeLessThanOrEqual(ELECTION_TICKS);
      expect(c.maxTerm(), `seed=${seed}: exactly one new term`).toBe(term + 1);
    }
  });

  it("to a lagging follower: the leader first catches it up, then hands over", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n: 3 });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      const target = c.ids().find((id) => id !== leader) as bigint;
      c.crash(target);
      for (let i = 0; i < 20; i++) c.propose(leader, `lag${i}`);
      c.runUntil(() => c.node(leader).sm.items.includes("lag19"), 5 * ELECTION_TICKS, "leader applied");
      c.restart(target, { tickMode: "etcd34" });
      const commitAtTransfer = c.node(leader).commit;
      expect(c.node(target).storage.lastIndex(), `seed=${seed}: target lags`).toBeLessThan(commitAtTransfer);
      c.transferLeader(leader, target);
      c.runUntil(() => c.stableLeader() === target, 2 * ELECTION_TICKS, `transfer to lagging ${target}`);
      expect(
        c.node(target).storage.lastIndex(),
        `seed=${seed}: new leader holds every committed entry`,
      ).toBeGreaterThanOrEqual(commitAtTransfer);
    }
  });

  it("to a crashed follower is abandoned after an election timeout; the leader keeps leading", () => {
    const c = cluster({ seed: 3, n: 3 });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    const target = c.ids().find((id) => id !== leader) as bigint;
    c.crash(target);
    c.transferLeader(leader, target);
    expect(c.node(leader).raw?.status().leadTransferee, "transfer in progress").toBe(target);
    expect(c.propose(leader, "during-transfer"), "proposals are dropped during a transfer").toBe(false);
    c.runTicks(2 * ELECTION_TICKS);
    expect(c.node(leader).raw?.status().leadTransferee, "transfer abandoned").toBe(0n);
    expect(c.node(leader).isLeader()).toBe(true);
    expect(c.propose(leader, "after-abort")).toBe(true);
    c.runUntil(() => c.appliedEverywhere("after-abort"), 3 * ELECTION_TICKS, "proposal after abort applied");
  });

  it("to a learner is refused", () => {
    const c = cluster({ seed: 2, voters: ids(1, 2, 3), learners: ids(4) });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    const term = c.maxTerm();
    c.transferLeader(leader, 4n);
    expect(c.node(leader).raw?.status().leadTransferee, "no transfer in progress").toBe(0n);
    c.runTicks(3 * ELECTION_TICKS);
    expect(c.stableLeader()).toBe(leader);
    expect(c.maxTerm()).toBe(term);
    expect(c.propose(leader, "still-accepting"), "proposals are not blocked by a refused transfer").toBe(true);
  });
});
