// Proves RawNode.takeForwards hands over exactly a follower's forwarded proposals and read requests ahead of the
// next Ready, leaves the messages that must wait for persistence (append acks) in it, and takes nothing from a
// leader or a follower without a leader.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { EntryType, MessageType, type Entry, type NodeId } from "../../../core/raft/types.js";
import { FixedRng, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

function node(id: NodeId): RawNode {
  const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
  s.append([1, 2].map((i): Entry => ({ index: i, term: 1, type: EntryType.Normal, data: text(`e${i}`) })));
  s.setHardState({ term: 1, vote: 1n, commit: 2 });
  return new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0), applied: 2 });
}

/** Node 2 as a follower of node 1 at term 1, its Ready drained. */
function follower(): RawNode {
  const raw = node(2n);
  raw.step(newMessage({ type: MessageType.Heartbeat, to: 2n, from: 1n, term: 1, commit: 2 }));
  raw.advance(raw.ready());
  return raw;
}

describe("takeForwards", () => {
  it("takes a follower's proposal and read request, and leaves its append ack for the Ready", () => {
    const raw = follower();
    const entry: Entry = { index: 3, term: 1, type: EntryType.Normal, data: text("e3") };
    raw.step(newMessage({ type: MessageType.App, to: 2n, from: 1n, term: 1, index: 2, logTerm: 1, entries: [entry] }));
    raw.proposeBatch([text("p1"), text("p2")]);
    raw.readIndex(text("ctx"));
    const forwards = raw.takeForwards();
    expect(forwards.map((m) => [m.type, m.to, m.from])).toEqual([
      [MessageType.Prop, 1n, 2n],
      [MessageType.ReadIndex, 1n, 2n],
    ]);
    expect(forwards[0]?.entries.map((e) => Buffer.from(e.data).toString())).toEqual(["p1", "p2"]);
    const rd = raw.ready();
    expect(rd.messages.map((m) => [m.type, m.index])).toEqual([[MessageType.AppResp, 3]]);
    expect(rd.entries.map((e) => e.index)).toEqual([3]);
    expect(raw.takeForwards()).toEqual([]);
  });

  it("takes nothing from a leader, whose proposals go into its own log", () => {
    const s = MemoryStorage.fromConfState({ voters: [1n], learners: [] });
    const raw = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0) });
    raw.campaign();
    expect(raw.raft.state).toBe("StateLeader");
    raw.proposeBatch([text("p")]);
    expect(raw.takeForwards()).toEqual([]);
    expect(raw.ready().entries.map((e) => Buffer.from(e.data).toString())).toContain("p");
  });
});
