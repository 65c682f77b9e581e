// Proves ReadIndex (thesis §6.4, ReadOnlySafe): the leader answers only after a heartbeat round confirms it is
// still leader, only once it committed an entry in its term, with its commit index at the time of the request;
// followers forward and get the answer; a single voter answers at once; a deposed leader cannot answer.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { EntryType, MessageType, type NodeId, type Ready } from "../../../core/raft/types.js";
import { FixedRng, TestNet, decode, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

describe("read index", () => {
  it("the leader answers after a quorum acknowledges the heartbeat carrying the request context", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(1n).raw.propose(text("w"));
    net.settle();
    const leader = net.node(1n);
    const heartbeats: string[] = [];
    net.filter = (m) => {
      if (m.type === "MsgHeartbeat" && m.context !== undefined) heartbeats.push(decode(m.context));
      return true;
    };
    leader.raw.readIndex(text("r1"));
    net.drain(leader);
    expect(leader.readStates, "not before the acks").toEqual([]);
    net.settle();
    expect(heartbeats).toEqual(["r1", "r1"]);
    expect(leader.readStates.map((r) => [r.index, decode(r.requestCtx)])).toEqual([[2, "r1"]]);
  });

  it("an isolated (deposed) leader never answers a read", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(1n);
    net.node(1n).raw.readIndex(text("stale?"));
    net.tick(1n, 30);
    expect(net.node(1n).readStates).toEqual([]);
  });

  it("a follower forwards the read to the leader and receives the read state", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(3n).raw.readIndex(text("from-3"));
    net.settle();
    expect(net.node(3n).readStates.map((r) => [r.index, decode(r.requestCtx)])).toEqual([[1, "from-3"]]);
    expect(net.node(1n).readStates, "the leader keeps nothing for itself").toEqual([]);
  });

  it("a follower with no known leader drops the read", () => {
    const net = new TestNet(V3);
    net.node(2n).raw.readIndex(text("nobody"));
    net.settle();
    expect(net.node(2n).readStates).toEqual([]);
    expect(net.delivered).toBe(0);
  });

  it("a single voter answers at once", () => {
    const net = new TestNet([1n]);
    net.node(1n).raw.campaign();
    net.settle();
    net.node(1n).raw.readIndex(text("solo"));
    net.settle();
    expect(net.node(1n).readStates.map((r) => r.index)).toEqual([1]);
  });

  it("a new leader holds a read until it has committed an entry of its term, then confirms and answers", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    s.append([{ index: 1, term: 1, type: EntryType.Normal, data: text("old") }]);
    s.setHardState({ term: 1, vote: 0n, commit: 1 });
    const raw = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      rng: new FixedRng(0),
      preVote: false,
    });
    raw.campaign();
    raw.step(newMessage({ type: MessageType.VoteResp, to: 1n, from: 2n, term: 2 }));
    const persist = (rd: Ready): void => {
      s.append(rd.entries);
      if (rd.hardState !== undefined) s.setHardState(rd.hardState);
      raw.advance(rd);
    };
    persist(raw.ready());
    raw.readIndex(text("early"));
    const rd = raw.ready();
    expect(
      rd.messages.filter((m) => m.type === "MsgHeartbeat"),
      "no heartbeat round yet",
    ).toEqual([]);
    expect(rd.readStates).toEqual([]);
    persist(rd);
    raw.step(newMessage({ type: MessageType.AppResp, to: 1n, from: 2n, term: 2, index: 2 })); // commits the term-2 entry
    const hb = raw.ready().messages.filter((m) => m.type === "MsgHeartbeat" && m.context !== undefined);
    expect(hb.map((m) => [m.to, decode(m.context ?? new Uint8Array())])).toEqual([
      [2n, "early"],
      [3n, "early"],
    ]);
    raw.step(newMessage({ type: MessageType.HeartbeatResp, to: 1n, from: 3n, term: 2, context: text("early") }));
    expect(raw.ready().readStates.map((r) => [r.index, decode(r.requestCtx)])).toEqual([[2, "early"]]);
  });

  it("with readOnlyOption leaseBased the leader answers without a heartbeat round", () => {
    const net = new TestNet(V3, [], { readOnlyOption: "leaseBased" });
    net.tickAll(11);
    net.node(1n).raw.readIndex(text("lease"));
    net.drain(net.node(1n));
    expect(net.node(1n).readStates.map((r) => r.index)).toEqual([1]);
  });
});
