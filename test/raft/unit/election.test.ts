// Proves leader election: a follower that times out becomes leader with a quorum, one leader per term, votes
// are granted once per term and only to up-to-date logs, the randomized timeout stays in [e, 2e), and a
// candidate without quorum does not win.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { MessageType, type NodeId } from "../../../core/raft/types.js";
import { FixedRng, TestNet, TestRng, newTestNode, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

describe("election", () => {
  it("the first node to time out becomes leader of term 1 and commits its empty entry", () => {
    const net = new TestNet(V3, [], { preVote: false });
    net.tickAll(11); // node 1's randomized timeout is 10 + 1
    expect(net.leaders(), "one leader").toEqual([1n]);
    for (const n of net.nodes.values()) {
      const st = n.raw.status();
      expect(st.hardState.term, `node ${n.id} term`).toBe(1);
      expect(st.hardState.commit, `node ${n.id} commit`).toBe(1);
      expect(st.softState.lead, `node ${n.id} lead`).toBe(1n);
    }
  });

  it("with pre-vote the winner still starts term 1 (pre-vote does not raise terms)", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    expect(net.leaders()).toEqual([1n]);
    expect(net.node(2n).raw.status().hardState.term).toBe(1);
  });

  it("a candidate cut off from the others does not win, and keeps campaigning in higher terms", () => {
    const net = new TestNet(V3, [], { preVote: false });
    net.isolate(1n);
    net.tick(1n, 11);
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateCandidate");
    net.tick(1n, 22);
    expect(net.node(1n).raw.status().hardState.term, "re-campaigned at least once").toBeGreaterThanOrEqual(2);
    expect(net.leaders()).toEqual([]);
  });

  it("elects exactly one leader per term over many seeds with random timeouts", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new TestRng(seed);
      const net = new TestNet(V3, [], { rng, preVote: seed % 2 === 0 });
      const leadersByTerm = new Map<number, Set<NodeId>>();
      for (let t = 0; t < 60; t++) {
        net.tickAll(1);
        for (const n of net.nodes.values()) {
          const st = n.raw.status();
          if (st.softState.raftState !== "StateLeader") continue;
          const set = leadersByTerm.get(st.hardState.term) ?? new Set();
          set.add(n.id);
          leadersByTerm.set(st.hardState.term, set);
        }
      }
      expect(leadersByTerm.size, `seed=${seed}: some leader`).toBeGreaterThan(0);
      for (const [term, set] of leadersByTerm) expect(set.size, `seed=${seed} term ${term}`).toBe(1);
    }
  });

  it("grants one vote per term: a second candidate in the same term is rejected", () => {
    const storage = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    const raw = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      rng: new FixedRng(0),
      preVote: false,
    });
    raw.step(newMessage({ type: MessageType.Vote, to: 1n, from: 2n, term: 5, index: 0, logTerm: 0 }));
    raw.step(newMessage({ type: MessageType.Vote, to: 1n, from: 3n, term: 5, index: 0, logTerm: 0 }));
    const msgs = raw.ready().messages;
    expect(msgs.map((m) => [m.to, m.type, m.reject])).toEqual([
      [2n, "MsgVoteResp", false],
      [3n, "MsgVoteResp", true],
    ]);
    expect(raw.status().hardState.vote).toBe(2n);
  });

  it("rejects a candidate whose log is behind (Raft §5.4.1)", () => {
    const net = new TestNet(V3, [], { preVote: false });
    net.tickAll(11);
    net.node(1n).raw.propose(text("a"));
    net.settle();
    // Node 3 has lost its log (fresh storage), asks for votes with an empty log at a higher term.
    const fresh = newTestNode(3n, MemoryStorage.fromConfState({ voters: V3, learners: [] }), { preVote: false });
    fresh.raw.advanceTicks(0);
    net.nodes.set(3n, fresh);
    net.tick(3n, 13);
    const st3 = fresh.raw.status();
    expect(st3.softState.raftState, "node 3 cannot win").not.toBe("StateLeader");
    expect(net.node(2n).raw.status().hardState.vote, "node 2 did not vote for 3").not.toBe(3n);
  });

  it("draws the randomized election timeout within [electionTick, 2*electionTick)", () => {
    const storage = MemoryStorage.fromConfState({ voters: [1n], learners: [] });
    const seen = new Set<number>();
    for (let seed = 1; seed <= 50; seed++) {
      const raw = new RawNode({ id: 1n, electionTick: 5, heartbeatTick: 1, storage, rng: new TestRng(seed) });
      let ticks = 0;
      while (raw.status().softState.raftState !== "StateLeader") {
        raw.tick();
        ticks++;
        expect(ticks, `seed=${seed}`).toBeLessThan(10);
      }
      expect(ticks, `seed=${seed}: ticks to elect`).toBeGreaterThanOrEqual(5);
      seen.add(ticks);
    }
    expect(seen.size, "timeouts vary").toBeGreaterThan(1);
  });

  it("a single voter elects itself at once and commits proposals alone", () => {
    const net = new TestNet([1n]);
    net.node(1n).raw.campaign();
    net.settle();
    net.node(1n).raw.propose(text("solo"));
    net.settle();
    expect(net.node(1n).raw.status().hardState.commit).toBe(2);
  });

  it("a leader of a stale term steps down when it hears a higher term", () => {
    const net = new TestNet(V3, [], { preVote: false, checkQuorum: false });
    net.tickAll(11);
    net.isolate(1n);
    net.tick(2n, 12);
    expect(net.node(2n).raw.status().softState.raftState, "node 2 leads").toBe("StateLeader");
    net.heal();
    net.tick(2n, 1); // heartbeat at the higher term reaches node 1
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateFollower");
    expect(net.leaders()).toEqual([2n]);
  });
});
