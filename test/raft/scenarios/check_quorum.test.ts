// Spec: with check-quorum, a leader cut off from the quorum steps down within one full election timeout after
// it last heard from a quorum (it checks every election timeout, so ≤ 2 timeouts after the cut), while the
// majority elects a new leader; without check-quorum the cut-off leader keeps believing it leads.
import { describe, expect, it } from "vitest";
import { cluster, ELECTION_TICKS } from "./impl.js";

describe("check-quorum", () => {
  it.each([3, 5])("a %i-member leader cut off from the quorum steps down within 2 election timeouts", (n) => {
    for (let seed = 1; seed <= 10; seed++) {
      const c = cluster({ seed, n, checkQuorum: true });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      c.runTicks(3);
      c.net.isolate(leader, c.ids());
      const took = c.runUntil(
        () => !c.node(leader).isLeader(),
        2 * ELECTION_TICKS + 1,
        `isolated leader ${leader} steps down`,
      );
      expect(took, `seed=${seed}: ticks to step down`).toBeLessThanOrEqual(2 * ELECTION_TICKS + 1);
      c.runUntil(() => c.leaders().some((l) => l.id !== leader), 5 * ELECTION_TICKS, "majority elects a new leader");
    }
  });

  it("without check-quorum, the cut-off leader stays leader (so reads must not trust it)", () => {
    const c = cluster({ seed: 1, n: 3, checkQuorum: false });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    c.net.isolate(leader, c.ids());
    c.runTicks(10 * ELECTION_TICKS);
    expect(c.node(leader).isLeader()).toBe(true);
  });
});
