// Spec: membership changes through the log. Adding a learner and promoting it grows the quorum only on
// promotion; removing a follower shrinks the quorum (a 5→4 cluster then needs 3 acks); a leader that removes
// itself is stopped once the change is applied, and the rest elect a new leader and keep committing. Every
// member ends with the same configuration.
import { describe, expect, it } from "vitest";
import { ConfChangeType } from "../../../core/raft/types.js";
import type { Cluster } from "../../sim/cluster.js";
import { cluster, ELECTION_TICKS, ids } from "./impl.js";

const cc = (type: ConfChangeType, id: bigint) => ({ type, nodeId: id, context: new Uint8Array() });

function sameConfigEverywhere(c: Cluster): boolean {
  const live = c.liveIds();
  const first = JSON.stringify(c.node(live[0] as bigint).confState, (_k, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v,
  );
  return live.every(
    (id) =>
      JSON.stringify(c.node(id).confState, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) === first,
  );
}

describe("conf changes", () => {
  it("removing a follower shrinks the quorum: a 4-member cluster commits with 3 members up", () => {
    const c = cluster({ seed: 11, n: 5 });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    const [gone, down] = c.ids().filter((id) => id !== leader) as [bigint, bigint];
    expect(c.proposeConfChange(leader, cc(ConfChangeType.RemoveNode, gone))).toBe(true);
    c.runUntil(
      () => c.liveIds().every((id) => !c.node(id).confState.voters.includes(gone)),
      5 * ELECTION_TICKS,
      "removal applied",
    );
    expect(c.node(gone).alive, "removed member stopped").toBe(false);
    c.crash(down);
    expect(c.propose(leader, "with-3-of-4")).toBe(true);
    c.runUntil(() => c.appliedEverywhere("with-3-of-4"), 5 * ELECTION_TICKS, "commit with 3 of 4");
    expect(sameConfigEverywhere(c)).toBe(true);
  });

  it("a leader that removes itself steps away; the rest elect a leader and keep committing", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n: 5 });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      expect(c.proposeConfChange(leader, cc(ConfChangeType.RemoveNode, leader))).toBe(true);
      // The old leader is stopped once it applies its removal, maybe before followers learn the commit; the new
      // leader commits the removal in its own term and applies it then.
      const removedEverywhere = () => c.liveIds().every((id) => !c.node(id).confState.voters.includes(leader));
      c.runUntil(
        () => c.stableLeader() !== undefined && removedEverywhere(),
        10 * ELECTION_TICKS,
        "new leader, removal applied",
      );
      const next = c.stableLeader() as bigint;
      expect(next).not.toBe(leader);
      expect(c.node(next).confState.voters.length, `seed=${seed}: voters after removal`).toBe(4);
      expect(c.propose(next, "after-self-removal")).toBe(true);
      c.runUntil(() => c.appliedEverywhere("after-self-removal"), 5 * ELECTION_TICKS, "commit after self-removal");
      expect(sameConfigEverywhere(c), `seed=${seed}: one configuration`).toBe(true);
    }
  });

  it("a learner added and promoted counts for quorum only after promotion", () => {
    const c = cluster({ seed: 12, voters: ids(1, 2, 3), checkQuorum: false });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    expect(c.proposeConfChange(leader, cc(ConfChangeType.AddLearnerNode, 4n))).toBe(true);
    c.startJoiner(4n, leader);
    c.runUntil(() => c.node(4n).confState.learners.includes(4n), 5 * ELECTION_TICKS, "learner known");
    expect(c.proposeConfChange(leader, cc(ConfChangeType.AddNode, 4n))).toBe(true);
    c.runUntil(
      () => c.liveIds().every((id) => c.node(id).confState.voters.includes(4n)),
      5 * ELECTION_TICKS,
      "promoted",
    );
    const others = ids(1, 2, 3).filter((id) => id !== leader);
    c.crash(others[0] as bigint);
    expect(c.propose(leader, "3-of-4")).toBe(true);
    c.runUntil(() => c.appliedEverywhere("3-of-4"), 5 * ELECTION_TICKS, "commit with the promoted member's ack");
    c.crash(others[1] as bigint);
    const commit = c.node(leader).commit;
    c.propose(leader, "2-of-4");
    c.runTicks(5 * ELECTION_TICKS);
    expect(c.node(leader).commit, "2 of 4 is no quorum").toBe(commit);
  });
});
