// Spec: a 3- and a 5-member cluster elect exactly one leader per term, and elect one within a bounded number of
// ticks, at start and after each leader crash (checked on 50 seeds each; the safety checkers run after every
// simulated event).
import { describe, expect, it } from "vitest";
import type { Cluster } from "../../sim/cluster.js";
import { cluster, ELECTION_TICKS } from "./impl.js";

/** Randomized timeout < 2×election, one pre-vote round and one vote round: 4 election timeouts is generous. */
const ELECTION_BOUND_TICKS = 4 * ELECTION_TICKS;

function leadersPerTerm(c: Cluster): Map<number, Set<bigint>> {
  const m = new Map<number, Set<bigint>>();
  for (const n of c.leaders()) m.set(n.term, (m.get(n.term) ?? new Set()).add(n.id));
  return m;
}

function runWatchingLeaders(c: Cluster, ticks: number): void {
  for (let u = 0; u < ticks * c.cfg.unitsPerTick; u++) {
    c.stepUnit();
    for (const [term, set] of leadersPerTerm(c)) {
      expect(set.size, `seed=${c.seed} term ${term} has ${set.size} leaders at t=${c.nowUnits}`).toBeLessThanOrEqual(1);
    }
  }
}

describe.each([3, 5])("a %i-member cluster", (n) => {
  it(`elects one leader within ${ELECTION_BOUND_TICKS} ticks, again after each leader crash, never two in a term`, () => {
    let worst = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const c = cluster({ seed, n });
      worst = Math.max(
        worst,
        c.runUntil(() => c.stableLeader() !== undefined, ELECTION_BOUND_TICKS, "first leader"),
      );
      let term = c.maxTerm();
      for (let round = 0; round < 2; round++) {
        const old = c.stableLeader() as bigint;
        c.crash(old);
        const took = c.runUntil(
          () => c.stableLeader() !== undefined,
          ELECTION_BOUND_TICKS + 2 * ELECTION_TICKS,
          "leader after crash",
        );
        const now = c.stableLeader() as bigint;
        expect(now, `seed=${seed}: crashed leader ${old} cannot lead`).not.toBe(old);
        expect(c.maxTerm(), `seed=${seed}: new leader's term`).toBeGreaterThan(term);
        term = c.maxTerm();
        worst = Math.max(worst, took);
        c.restart(old, { tickMode: "etcd34" });
        runWatchingLeaders(c, 3 * ELECTION_TICKS);
        expect(c.stableLeader(), `seed=${seed}: leader stable after restart of ${old}`).toBe(now);
      }
    }
    expect(worst).toBeLessThanOrEqual(ELECTION_BOUND_TICKS + 2 * ELECTION_TICKS);
  });

  it("has exactly one leader per term under message loss and delay (election safety, 20 seeds × 250 ticks)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = cluster({ seed, n, faults: { dropRate: 0.2, dupRate: 0.1, minDelayUnits: 1, maxDelayUnits: 25 } });
      runWatchingLeaders(c, 250);
      expect(c.checker.maxLeaderTerm(), `seed=${seed}: someone led`).toBeGreaterThan(0);
    }
  });
});
