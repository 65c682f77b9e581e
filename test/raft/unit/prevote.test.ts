// Proves pre-vote (thesis §9.6): a pre-candidate asks at term+1 without raising its own term, a node grants a
// pre-vote only to an up-to-date log and only outside its leader lease, a partitioned follower that rejoins
// neither raises the cluster's term nor deposes the leader (and without pre-vote it does).

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { MessageType, type NodeId } from "../../../core/raft/types.js";
import { FixedRng, TestNet, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

function rejoinScenario(preVote: boolean): { term: number; leaders: NodeId[] } {
  const net = new TestNet(V3, [], { preVote });
  net.tickAll(11);
  expect(net.leaders()).toEqual([1n]);
  net.isolate(3n);
  // Node 3 times out repeatedly on its own while 1 and 2 keep working.
  for (let i = 0; i < 50; i++) {
    net.tickAll(1);
  }
  net.node(1n).raw.propose(text("while partitioned"));
  net.settle();
  net.heal();
  net.tickAll(3);
  return {
    term: Math.max(...[...net.nodes.values()].map((n) => n.raw.status().hardState.term)),
    leaders: net.leaders(),
  };
}

describe("pre-vote", () => {
  it("a partitioned follower rejoins: no new term, the leader stays", () => {
    const r = rejoinScenario(true);
    expect(r.term, "term unchanged").toBe(1);
    expect(r.leaders).toEqual([1n]);
  });

  it("without pre-vote the rejoining follower's higher term deposes the leader", () => {
    const r = rejoinScenario(false);
    expect(r.term, "term raised by the partitioned node").toBeGreaterThan(1);
    expect(r.leaders, "old leader of term 1 is gone").not.toContain(1n);
  });

  it("a pre-candidate sends MsgPreVote at term+1 and keeps its own term", () => {
    const storage = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    const raw = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, rng: new FixedRng(0) });
    raw.campaign();
    const rd = raw.ready();
    expect(rd.softState?.raftState).toBe("StatePreCandidate");
    expect(rd.messages.map((m) => [m.type, m.term, m.to])).toEqual([
      ["MsgPreVote", 1, 2n],
      ["MsgPreVote", 1, 3n],
    ]);
    expect(raw.status().hardState.term, "own term still 0").toBe(0);
    raw.advance(rd);
    raw.step(newMessage({ type: MessageType.PreVoteResp, to: 1n, from: 2n, term: 1 }));
    const rd2 = raw.ready();
    expect(rd2.softState?.raftState, "quorum of pre-votes → real candidate").toBe("StateCandidate");
    expect(rd2.messages.map((m) => [m.type, m.term])).toEqual([
      ["MsgVote", 1],
      ["MsgVote", 1],
    ]);
  });

  it("a follower in its leader lease ignores a pre-vote; outside the lease it grants one without changing term", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    const f = net.node(2n).raw;
    f.step(newMessage({ type: MessageType.PreVote, to: 2n, from: 3n, term: 2, index: 5, logTerm: 1 }));
    net.drain(net.node(2n));
    expect(net.queue.length, "no answer in lease").toBe(0);
    for (let i = 0; i < 10; i++) f.tick(); // lease over (nothing delivered from the leader)
    const answers: string[] = [];
    f.step(newMessage({ type: MessageType.PreVote, to: 2n, from: 3n, term: 2, index: 5, logTerm: 1 }));
    for (const m of f.ready().messages) answers.push(`${m.type}:${m.term}:${m.reject}`);
    expect(answers).toEqual(["MsgPreVoteResp:2:false"]);
    expect(f.status().hardState.term, "pre-vote does not change the voter's term").toBe(1);
  });

  it("rejects a pre-vote from a log that is behind", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(1n).raw.propose(text("x"));
    net.settle();
    const f = net.node(2n).raw;
    for (let i = 0; i < 10; i++) f.tick();
    f.step(newMessage({ type: MessageType.PreVote, to: 2n, from: 3n, term: 2, index: 1, logTerm: 1 }));
    const m = f.ready().messages.find((x) => x.type === "MsgPreVoteResp");
    expect(m?.reject, "log (1,1) is behind (2,1)").toBe(true);
  });

  it("a member at term 0 seeded from a snapshot rejects a stale pre-vote silently (no term-0 message)", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    s.applySnapshot({ metadata: { index: 7, term: 3, confState: { voters: V3, learners: [] } }, data: text("sm") });
    s.setHardState({ term: 0, vote: 0n, commit: 7 });
    const raw = new RawNode({
      id: 2n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      rng: new FixedRng(0),
      applied: 7,
    });
    raw.step(newMessage({ type: MessageType.PreVote, to: 2n, from: 3n, term: 1, index: 0, logTerm: 0 }));
    expect(raw.hasReady() ? raw.ready().messages : []).toEqual([]);
    raw.step(newMessage({ type: MessageType.PreVote, to: 2n, from: 1n, term: 1, index: 7, logTerm: 3 }));
    expect(raw.ready().messages.map((m) => [m.type, m.term, m.reject])).toEqual([["MsgPreVoteResp", 1, false]]);
  });

  it("a stale pre-candidate learns the higher term from the rejection and follows", () => {
    const storage = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    const raw = new RawNode({ id: 3n, electionTick: 10, heartbeatTick: 1, storage, rng: new FixedRng(0) });
    raw.campaign();
    raw.advance(raw.ready());
    // A node at term 7 answers a pre-vote for term 1 with a rejection at its own term.
    raw.step(newMessage({ type: MessageType.PreVoteResp, to: 3n, from: 1n, term: 7, reject: true }));
    const st = raw.status();
    expect(st.hardState.term).toBe(7);
    expect(st.softState.raftState).toBe("StateFollower");
  });
});
