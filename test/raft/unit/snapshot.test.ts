// Proves snapshots: a follower behind the leader's compacted log is caught up by MsgSnap and then by entries;
// the leader waits in snapshot state until the snapshot lands or is reported failed; a stale snapshot is
// ignored; a node restarted from a snapshot resumes from it.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { MessageType, type NodeId, type Snapshot } from "../../../core/raft/types.js";
import { FixedRng, TestNet, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

function compactLeader(net: TestNet, id: NodeId): Snapshot {
  const n = net.node(id);
  const applied = n.raw.status().applied;
  const snap = n.storage.createSnapshot(applied, n.confState, text(`state@${applied}`));
  n.storage.compact(applied);
  return snap;
}

describe("snapshot", () => {
  it("a lagging follower behind a compacted log is caught up by snapshot, then by entries", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(3n);
    for (let i = 0; i < 10; i++) net.node(1n).raw.propose(text(`e${i}`));
    net.settle();
    const snap = compactLeader(net, 1n);
    expect(snap.metadata.index).toBe(11);
    net.node(1n).raw.propose(text("after snapshot"));
    net.settle();
    const snaps: Snapshot[] = [];
    net.filter = (m) => {
      if (m.type === "MsgSnap" && m.snapshot !== undefined) snaps.push(m.snapshot);
      return true;
    };
    net.heal();
    net.tickAll(3);
    expect(
      snaps.map((s) => s.metadata.index),
      "one snapshot sent",
    ).toEqual([11]);
    const n3 = net.node(3n);
    expect(n3.storage.snapshot().metadata.index).toBe(11);
    expect(n3.storage.lastIndex()).toBe(12);
    expect(n3.raw.status().hardState.commit).toBe(12);
    expect(
      n3.applied.map((e) => e.index),
      "the leader's first entry, then only the one after the snapshot",
    ).toEqual([1, 12]);
    expect(net.node(1n).raw.status().progress?.get(3n)?.state).toBe("StateReplicate");
  });

  it("the leader pauses in snapshot state until reportSnapshot, and probes again after a failure", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(3n);
    for (let i = 0; i < 3; i++) net.node(1n).raw.propose(text(`e${i}`));
    net.settle();
    compactLeader(net, 1n);
    net.heal();
    net.filter = (m) => m.type !== "MsgSnap"; // the snapshot is lost in transit
    net.tickAll(2);
    const leader = net.node(1n).raw;
    expect(leader.status().progress?.get(3n)?.state).toBe("StateSnapshot");
    leader.reportSnapshot(3n, "failure");
    expect(leader.status().progress?.get(3n)?.state).toBe("StateProbe");
    net.filter = undefined;
    net.tickAll(3);
    expect(net.node(3n).raw.status().hardState.commit).toBe(4);
  });

  it("a follower ignores a snapshot older than its commit index and answers with its commit", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    s.append([1, 2, 3].map((i) => ({ index: i, term: 1, type: 0 as const, data: text(`${i}`) })));
    s.setHardState({ term: 1, vote: 1n, commit: 3 });
    const raw = new RawNode({
      id: 2n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      rng: new FixedRng(0),
      applied: 3,
    });
    const old: Snapshot = {
      metadata: { index: 2, term: 1, confState: { voters: V3, learners: [] } },
      data: text("old"),
    };
    raw.step(newMessage({ type: MessageType.Snap, to: 2n, from: 1n, term: 1, snapshot: old }));
    const rd = raw.ready();
    expect(rd.snapshot, "not installed").toBeUndefined();
    expect(rd.messages.map((m) => [m.type, m.index])).toEqual([["MsgAppResp", 3]]);
  });

  it("restarts from a snapshot plus log: commit, applied and configuration come back", () => {
    const cs = { voters: [1n, 2n], learners: [3n] };
    const s = MemoryStorage.fromConfState({ voters: [1n], learners: [] });
    s.applySnapshot({ metadata: { index: 10, term: 2, confState: cs }, data: text("sm") });
    s.append([
      { index: 11, term: 2, type: 0, data: text("a") },
      { index: 12, term: 3, type: 0, data: text("b") },
    ]);
    s.setHardState({ term: 3, vote: 1n, commit: 12 });
    const raw = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      rng: new FixedRng(0),
      applied: 11,
    });
    const st = raw.status();
    expect(st.confState).toEqual(cs);
    expect([st.hardState.term, st.hardState.commit, st.applied]).toEqual([3, 12, 11]);
    const rd = raw.ready();
    expect(
      rd.committedEntries.map((e) => e.index),
      "only the unapplied entry",
    ).toEqual([12]);
  });
});
