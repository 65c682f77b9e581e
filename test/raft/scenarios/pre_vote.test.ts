// Spec: a follower cut off from a healthy 3-member cluster for many election timeouts rejoins without raising
// the cluster's term or deposing the leader when pre-vote is on; with pre-vote off (check-quorum on in both)
// its inflated term deposes the leader. Both shown on the same seeds.
import { describe, expect, it } from "vitest";
import { cluster, ELECTION_TICKS } from "./impl.js";

function isolateAndRejoin(
  seed: number,
  preVote: boolean,
): {
  termBefore: number;
  termAfter: number;
  leaderBefore: bigint;
  leaderAfter: bigint | undefined;
  isolatedTerm: number;
} {
  const c = cluster({ seed, n: 3, preVote, checkQuorum: true });
  const leaderBefore = c.waitForLeader(5 * ELECTION_TICKS);
  c.runTicks(5);
  const termBefore = c.maxTerm();
  const follower = c.ids().find((id) => id !== leaderBefore) as bigint;
  c.net.isolate(follower, c.ids());
  c.runTicks(6 * ELECTION_TICKS);
  const isolatedTerm = c.node(follower).term;
  c.net.heal();
  c.runTicks(6 * ELECTION_TICKS);
  return { termBefore, termAfter: c.maxTerm(), leaderBefore, leaderAfter: c.stableLeader(), isolatedTerm };
}

describe("a partitioned follower rejoins", () => {
  it("with pre-vote on: no new term, same leader (10 seeds)", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = isolateAndRejoin(seed, true);
      expect(r.isolatedTerm, `seed=${seed}: isolated follower's term`).toBe(r.termBefore);
      expect(r.termAfter, `seed=${seed}: cluster term after rejoin`).toBe(r.termBefore);
      expect(r.leaderAfter, `seed=${seed}: leader after rejoin`).toBe(r.leaderBefore);
    }
  });

  it("with pre-vote off: its raised term forces a new election (10 seeds)", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = isolateAndRejoin(seed, false);
      expect(r.isolatedTerm, `seed=${seed}: isolated follower campaigned`).toBeGreaterThan(r.termBefore);
      expect(r.termAfter, `seed=${seed}: cluster term after rejoin`).toBeGreaterThan(r.termBefore);
    }
  });
});
