// Proves restart from storage: a member rebuilt from its persisted HardState, configuration and log (with its
// applied index) keeps its term and vote, does not re-deliver applied entries, and rejoins without an election
// when the restart tick rule leaves room for the leader's heartbeat; conf changes applied before the crash are
// part of the restarted configuration.

import { describe, expect, it } from "vitest";
import { initialTickAdvance } from "../../../core/raft/tick_policy.js";
import { ConfChangeType, type NodeId } from "../../../core/raft/types.js";
import { TestNet, appliedTexts, newTestNode, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

describe("restart", () => {
  it("a restarted follower resumes from its storage and catches up without a new term", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    for (const w of ["a", "b"]) net.node(1n).raw.propose(text(w));
    net.settle();
    net.tickAll(1);
    const old = net.node(3n);
    const applied = old.applied[old.applied.length - 1]?.index ?? 0;
    const before = old.raw.status().hardState;
    net.nodes.delete(3n); // crash
    net.node(1n).raw.propose(text("while down"));
    net.settle();
    const restarted = newTestNode(3n, old.storage, { applied });
    expect(restarted.raw.status().hardState, "term, vote and commit come back").toEqual(before);
    const adv = initialTickAdvance({ clusterSize: 3, electionTicks: 10, activePeers: 2, mode: "etcd34" });
    restarted.raw.advanceTicks(adv as number);
    net.add(restarted);
    net.tickAll(3);
    expect(appliedTexts(restarted), "only the entry it had not applied").toEqual(["while down"]);
    expect(net.leaders()).toEqual([1n]);
    expect(Math.max(...[...net.nodes.values()].map((n) => n.raw.status().hardState.term))).toBe(1);
  });

  it("conf changes applied before the crash (after the snapshot) are part of the restarted configuration", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(1n).raw.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4n, context: new Uint8Array(0) });
    net.settle();
    net.tickAll(1);
    const old = net.node(2n);
    expect(old.confState.learners).toEqual([4n]);
    const applied = old.raw.status().applied;
    // The application says it applied everything (e.g. its backend's consistent index); no snapshot was taken.
    const restarted = newTestNode(2n, old.storage, { applied });
    expect(restarted.raw.status().confState).toEqual({ voters: V3, learners: [4n] });
    const fromSnapshotOnly = newTestNode(2n, old.storage, { applied: 0 });
    expect(fromSnapshotOnly.raw.status().confState, "applied 0: the application re-applies it").toEqual({
      voters: V3,
      learners: [],
    });
  });

  it("a restarted leader comes back as a follower and the cluster keeps one leader per term", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(1n).raw.propose(text("x"));
    net.settle();
    const old = net.node(1n);
    net.nodes.delete(1n);
    net.tickAll(25); // 2 or 3 elect a new leader
    const [lead] = net.leaders();
    expect(lead).toBeDefined();
    const restarted = newTestNode(1n, old.storage, { applied: old.raw.status().applied });
    net.add(restarted);
    net.tickAll(3);
    expect(restarted.raw.status().softState.raftState).toBe("StateFollower");
    expect(restarted.raw.status().softState.lead).toBe(lead);
    const oldApplied = old.raw.status().applied;
    expect(appliedTexts(restarted), "x was applied before the crash: not handed out again").toEqual([]);
    expect(
      restarted.applied.map((e) => e.index),
      "only the new leader's empty entry",
    ).toEqual([oldApplied + 1]);
  });
});
