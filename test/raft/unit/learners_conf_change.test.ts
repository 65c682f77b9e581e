// Proves learners and membership changes: a learner gets every entry but never campaigns and never counts for
// commit or votes; promotion makes it a voter; adding an unreachable learner keeps a 1-member cluster available
// while adding an unreachable voter loses quorum; only one conf change is pending at a time; removal shrinks
// the quorum.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { ConfChangeType, EntryType, MessageType, type ConfChange, type NodeId } from "../../../core/raft/types.js";
import { FixedRng, TestNet, appliedTexts, newTestNode, text } from "./net.js";

function cc(type: ConfChange["type"], nodeId: NodeId): ConfChange {
  return { type, nodeId, context: new Uint8Array(0) };
}

describe("learners", () => {
  it("a learner receives every entry, never campaigns, and is not counted for commit", () => {
    const net = new TestNet([1n, 2n], [3n]);
    net.tickAll(11);
    expect(net.leaders()).toEqual([1n]);
    net.node(1n).raw.propose(text("a"));
    net.settle();
    net.tickAll(1);
    expect(appliedTexts(net.node(3n))).toEqual(["a"]);
    net.isolate(2n);
    net.node(1n).raw.propose(text("b"));
    net.settle();
    expect(net.node(1n).raw.status().hardState.commit, "leader + learner is not a quorum of voters").toBe(2);
    expect(net.node(3n).raw.status().softState.raftState).toBe("StateFollower");
    net.isolate(1n);
    net.tick(3n, 100);
    expect(net.node(3n).raw.status().softState.raftState, "learner never campaigns").toBe("StateFollower");
    expect(net.node(3n).raw.status().hardState.term).toBe(1);
  });

  it("a candidate does not count a learner's vote", () => {
    const s = MemoryStorage.fromConfState({ voters: [1n, 2n, 3n], learners: [4n] });
    const raw = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      rng: new FixedRng(0),
      preVote: false,
    });
    raw.campaign();
    expect(
      raw.ready().messages.map((m) => m.to),
      "votes asked from voters only",
    ).toEqual([2n, 3n]);
    raw.step(newMessage({ type: MessageType.VoteResp, to: 1n, from: 4n, term: 1 }));
    expect(raw.status().softState.raftState, "learner's vote ignored").toBe("StateCandidate");
    raw.step(newMessage({ type: MessageType.VoteResp, to: 1n, from: 2n, term: 1 }));
    expect(raw.status().softState.raftState).toBe("StateLeader");
  });

  it("promoting a learner makes it a voter that counts for quorum", () => {
    const net = new TestNet([1n, 2n], [3n]);
    net.tickAll(11);
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.AddNode, 3n));
    net.settle();
    net.tickAll(1);
    for (const n of net.nodes.values())
      expect(n.confState, `node ${n.id}`).toEqual({ voters: [1n, 2n, 3n], learners: [] });
    net.isolate(2n);
    net.node(1n).raw.propose(text("with 3's ack"));
    net.settle();
    expect(appliedTexts(net.node(1n)), "1 and 3 are a quorum of 3 voters").toEqual(["with 3's ack"]);
  });
});

describe("conf changes", () => {
  it("adding an unreachable learner to a 1-member cluster keeps it available", () => {
    const net = new TestNet([1n]);
    net.node(1n).raw.campaign();
    net.settle();
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 2n));
    net.settle();
    net.node(1n).raw.propose(text("still writable"));
    net.settle();
    expect(net.node(1n).confState).toEqual({ voters: [1n], learners: [2n] });
    expect(appliedTexts(net.node(1n))).toEqual(["still writable"]);
  });

  it("adding an unreachable voter to a 1-member cluster loses quorum", () => {
    const net = new TestNet([1n]);
    net.node(1n).raw.campaign();
    net.settle();
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.AddNode, 2n));
    net.settle();
    net.node(1n).raw.propose(text("stuck"));
    net.settle();
    expect(net.node(1n).confState).toEqual({ voters: [1n, 2n], learners: [] });
    expect(appliedTexts(net.node(1n)), "needs 2 of 2 now").toEqual([]);
    expect(
      net.undeliverable.some((m) => m.to === 2n && m.type === "MsgApp"),
      "the leader tries to reach 2",
    ).toBe(true);
  });

  it("a second conf change proposed while one is pending becomes an empty normal entry", () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.tickAll(11);
    net.isolate(3n);
    net.cutLink(1n, 2n); // nothing commits while we propose twice
    const leader = net.node(1n);
    leader.raw.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4n));
    leader.raw.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5n));
    net.settle();
    const tail = leader.storage.entries(2, leader.storage.lastIndex() + 1, 1e9);
    expect(tail.map((e) => [e.type, e.data.length > 0])).toEqual([
      [EntryType.ConfChange, true],
      [EntryType.Normal, false],
    ]);
    net.heal();
    net.tickAll(2);
    expect(leader.confState.learners).toEqual([4n]);
    leader.raw.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5n));
    net.settle();
    expect(leader.confState.learners, "after the first applied, the next is accepted").toEqual([4n, 5n]);
  });

  it("removing a voter shrinks the quorum; a removed leader steps down", () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.tickAll(11);
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.RemoveNode, 3n));
    net.settle();
    net.tickAll(1);
    expect(net.node(1n).confState.voters).toEqual([1n, 2n]);
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.RemoveNode, 1n));
    net.settle();
    net.tickAll(1);
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateFollower");
    net.nodes.delete(1n);
    net.nodes.delete(3n);
    net.tick(2n, 20);
    expect(net.leaders(), "the single remaining voter elects itself").toEqual([2n]);
  });

  it("a leader demoted to learner stops leading and a voter takes over", () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.tickAll(11);
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 1n));
    net.settle();
    expect(net.node(1n).confState).toEqual({ voters: [2n, 3n], learners: [1n] });
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateFollower");
    net.tickAll(15);
    expect(net.leaders()).toHaveLength(1);
    expect(net.leaders()).not.toContain(1n);
  });

  it("a member joining with the configuration before its own addition learns the rest from the leader's log", () => {
    const net = new TestNet([1n]);
    net.node(1n).raw.campaign();
    net.settle();
    net.node(1n).raw.propose(text("before join"));
    net.node(1n).raw.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 2n));
    net.settle();
    net.add(newTestNode(2n, MemoryStorage.fromConfState({ voters: [1n], learners: [] })));
    net.tickAll(2);
    expect(appliedTexts(net.node(2n))).toEqual(["before join"]);
    expect(net.node(2n).confState).toEqual({ voters: [1n], learners: [2n] });
  });
});
