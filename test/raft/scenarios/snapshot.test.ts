// Spec: a follower that falls behind a compacted log is caught up by a snapshot (not by entries the leader no
// longer has), ends with the same state machine, and then follows by normal replication again.
import { describe, expect, it } from "vitest";
import { cluster, ELECTION_TICKS } from "./impl.js";

describe("a lagging follower behind a compacted log", () => {
  it("is caught up by snapshot", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n: 3, snapshotEvery: 5, keepAfterCompact: 0 });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      const lagger = c.ids().find((id) => id !== leader) as bigint;
      const snaps: number[] = [];
      c.net.intercept((m) => {
        if (m.type === "MsgSnap" && m.to === lagger) snaps.push(m.snapshot?.metadata.index ?? -1);
        return undefined;
      });
      c.crash(lagger);
      const lagLast = c.node(lagger).storage.lastIndex();
      for (let i = 0; i < 40; i++) c.propose(leader, `e${i}`);
      c.runUntil(() => c.node(leader).sm.items.includes("e39"), 5 * ELECTION_TICKS, "leader applied");
      expect(c.node(leader).storage.firstIndex(), `seed=${seed}: leader compacted past the lagger`).toBeGreaterThan(
        lagLast + 1,
      );
      c.restart(lagger, { tickMode: "etcd34" });
      c.runUntil(() => c.appliedEverywhere("e39"), 10 * ELECTION_TICKS, "lagger caught up");
      expect(snaps.length, `seed=${seed}: snapshots sent to the lagger`).toBeGreaterThan(0);
      expect(c.node(lagger).sm.items).toEqual(c.node(leader).sm.items);
      c.propose(leader, "after-snapshot");
      c.runUntil(() => c.appliedEverywhere("after-snapshot"), 5 * ELECTION_TICKS, "replication resumes");
    }
  });
});
