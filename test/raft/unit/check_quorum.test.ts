// Proves check-quorum (thesis §6.2): a leader that has not heard from a quorum of voters within an election
// timeout steps down; one that hears from a quorum stays; followers in lease ignore (non-forced) votes, and a
// stale leader hearing a lower-term message answers so the sender learns the term.

import { describe, expect, it } from "vitest";
import { newMessage } from "../../../core/raft/raft.js";
import { MessageType, type NodeId } from "../../../core/raft/types.js";
import { TestNet } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];
const V5: NodeId[] = [1n, 2n, 3n, 4n, 5n];

describe("check-quorum", () => {
  it("a leader cut off from the quorum steps down within an election timeout", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(1n);
    let ticks = 0;
    while (net.node(1n).raw.status().softState.raftState === "StateLeader") {
      net.tick(1n);
      ticks++;
      expect(ticks, "steps down in time").toBeLessThanOrEqual(2 * 10);
    }
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateFollower");
  });

  it("a leader of 5 that still hears from 2 followers (a quorum with itself) stays", () => {
    const net = new TestNet(V5);
    net.tickAll(11);
    expect(net.leaders()).toEqual([1n]);
    net.cutLink(1n, 4n);
    net.cutLink(1n, 5n);
    net.tick(1n, 30);
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateLeader");
    net.cutLink(1n, 3n);
    net.tick(1n, 30);
    expect(net.node(1n).raw.status().softState.raftState, "only 2 of 5 left").toBe("StateFollower");
  });

  it("without check-quorum an isolated leader keeps believing it leads", () => {
    const net = new TestNet(V3, [], { checkQuorum: false });
    net.tickAll(11);
    net.isolate(1n);
    net.tick(1n, 50);
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateLeader");
  });

  it("a follower in lease ignores a higher-term MsgVote: no term change, no answer", () => {
    const net = new TestNet(V3, [], { preVote: false });
    net.tickAll(11);
    const f = net.node(2n);
    f.raw.step(newMessage({ type: MessageType.Vote, to: 2n, from: 3n, term: 9, index: 9, logTerm: 9 }));
    net.drain(f);
    expect(f.raw.status().hardState.term).toBe(1);
    expect(net.queue.length).toBe(0);
  });

  it("a node with a higher term answers a stale leader's heartbeat, and the stale leader steps down", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    const f = net.node(2n);
    f.raw.step(newMessage({ type: MessageType.App, to: 2n, from: 3n, term: 5, index: 1, logTerm: 1, commit: 1 }));
    net.drain(f);
    net.queue.length = 0;
    expect(f.raw.status().hardState.term).toBe(5);
    net.tick(1n); // heartbeat at term 1 → MsgAppResp at term 5
    expect(net.node(1n).raw.status().softState.raftState).toBe("StateFollower");
    expect(net.node(1n).raw.status().hardState.term).toBe(5);
  });
});
