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
