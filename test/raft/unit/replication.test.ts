// Proves log replication: entries commit only by a quorum of voters and only in the leader's term, followers
// with divergent logs are repaired (fast backtracking with reject hints), MsgApp respects maxSizePerMsgBytes,
// the in-flight window bounds pipelining, progress moves probe → replicate, and unreachable peers go to probe.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { EntryType, MessageType, type Entry, type NodeId } from "../../../core/raft/types.js";
import { FixedRng, TestNet, appliedTexts, newTestNode, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

function ent(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: text(`${index}@${term}`) };
}

describe("replication", () => {
  it("replicates proposals to every member in order, also those forwarded by followers", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(1n).raw.propose(text("a"));
    net.node(3n).raw.propose(text("b"));
    net.node(1n).raw.propose(text("c"));
    net.settle();
    net.tickAll(1);
    for (const n of net.nodes.values())
      expect(appliedTexts(n), `node ${n.id}: the forwarded one arrives last`).toEqual(["a", "c", "b"]);
  });

  it("commits with a quorum: one follower down is fine, two down stops commit", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(3n);
    net.node(1n).raw.propose(text("x"));
    net.settle();
    expect(net.node(1n).raw.status().hardState.commit, "2 of 3").toBe(2);
    net.isolate(2n);
    net.node(1n).raw.propose(text("y"));
    net.settle();
    expect(net.node(1n).raw.status().hardState.commit, "1 of 3 cannot commit").toBe(2);
  });

  it("a follower with a divergent uncommitted suffix is repaired by the leader's log", () => {
    const cs = { voters: V3, learners: [] };
    // Node 3 was a leader of term 2 that appended entries 2..4 nobody else got.
    const s3 = MemoryStorage.fromConfState(cs);
    s3.append([ent(1, 1), ent(2, 2), ent(3, 2), ent(4, 2)]);
    s3.setHardState({ term: 2, vote: 3n, commit: 1 });
    const s1 = MemoryStorage.fromConfState(cs);
    s1.append([ent(1, 1), ent(2, 3), ent(3, 3)]);
    s1.setHardState({ term: 3, vote: 1n, commit: 1 });
    const s2 = MemoryStorage.fromConfState(cs);
    s2.append([ent(1, 1), ent(2, 3)]);
    s2.setHardState({ term: 3, vote: 1n, commit: 1 });
    const net = new TestNet([]);
    for (const [id, s] of [
      [1n, s1],
      [2n, s2],
      [3n, s3],
    ] as const)
      net.add(newTestNode(id, s));
    net.node(1n).raw.campaign();
    net.settle();
    expect(net.leaders()).toEqual([1n]);
    net.node(1n).raw.propose(text("after"));
    net.settle();
    net.tickAll(1);
    const terms = (s: MemoryStorage): number[] => Array.from({ length: s.lastIndex() }, (_, i) => s.term(i + 1));
    expect(terms(s3), "node 3 log replaced").toEqual(terms(s1));
    expect(s3.entries(2, 3, 1e9)[0]?.term, "entry 2 now from term 3").toBe(3);
  });

  it("a rejection carries a hint that skips a whole divergent term", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 2), ent(6, 2)]);
    s.setHardState({ term: 2, vote: NONE_ID, commit: 2 });
    const raw = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0) });
    // Leader of term 4 probes at (8, term 3): we lack 7 and 8; our entries of term 2 at ≤ 6 are all ≤ 3.
    raw.step(newMessage({ type: MessageType.App, to: 2n, from: 1n, term: 4, index: 8, logTerm: 3, commit: 2 }));
    const m = raw.ready().messages[0];
    expect([m?.type, m?.reject, m?.rejectHint, m?.logTerm]).toEqual(["MsgAppResp", true, 6, 2]);
    // Probed at (6, 3): entries 3..6 are term 2 (< 3) so hint is 6 with term 2 — leader can jump straight there.
    raw.step(newMessage({ type: MessageType.App, to: 2n, from: 1n, term: 4, index: 6, logTerm: 3, commit: 2 }));
    const m2 = raw.ready().messages[0];
    expect([m2?.reject, m2?.rejectHint, m2?.logTerm]).toEqual([true, 6, 2]);
  });

  it("splits entries into MsgApps of at most maxSizePerMsgBytes (at least one entry each)", () => {
    const net = new TestNet(V3, [], { maxSizePerMsgBytes: 1000 });
    net.tickAll(11);
    net.isolate(2n);
    net.isolate(3n);
    const leader = net.node(1n).raw;
    for (let i = 0; i < 20; i++) leader.propose(new Uint8Array(300));
    net.settle();
    net.heal();
    const apps: number[] = [];
    net.filter = (m) => {
      if (m.type === "MsgApp" && m.to === 2n && m.entries.length > 0)
        apps.push(m.entries.reduce((a, e) => a + e.data.length, 0));
      return true;
    };
    net.tickAll(3);
    expect(apps.length, "several messages").toBeGreaterThan(3);
    for (const bytes of apps) expect(bytes, "payload per MsgApp").toBeLessThanOrEqual(1000);
    expect(net.node(2n).raw.status().hardState.commit).toBe(21);
  });

  it("never has more than maxInflightMsgs MsgApps in flight to a follower in replicate state", () => {
    const net = new TestNet(V3, [], { maxInflightMsgs: 3 });
    net.tickAll(11);
    const leader = net.node(1n).raw;
    net.filter = (m) => m.to !== 2n; // follower 2 never answers
    for (let i = 0; i < 10; i++) leader.propose(text(`p${i}`));
    const sent = leader.ready().messages.filter((m) => m.type === "MsgApp" && m.to === 2n).length;
    expect(sent, "window of 3").toBe(3);
    expect(leader.status().progress?.get(2n)?.state).toBe("StateReplicate");
  });

  it("a follower reported unreachable goes from replicate back to probe", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    const leader = net.node(1n).raw;
    expect(leader.status().progress?.get(3n)?.state).toBe("StateReplicate");
    leader.reportUnreachable(3n);
    expect(leader.status().progress?.get(3n)?.state).toBe("StateProbe");
    leader.propose(text("probe me"));
    net.settle();
    expect(leader.status().progress?.get(3n)?.state, "back to replicate after an answer").toBe("StateReplicate");
  });

  it("drops proposals beyond maxUncommittedEntriesBytes until entries commit", () => {
    const net = new TestNet(V3, [], { maxUncommittedEntriesBytes: 1000 });
    net.tickAll(11);
    net.isolate(2n);
    net.isolate(3n);
    const leader = net.node(1n).raw;
    for (let i = 0; i < 2; i++) leader.propose(new Uint8Array(400));
    expect(() => leader.propose(new Uint8Array(400)), "800 + 400 > 1000").toThrowError(/too many uncommitted/);
    net.settle();
    net.heal();
    net.tickAll(2);
    expect(leader.status().hardState.commit).toBe(3);
    leader.propose(new Uint8Array(400));
    leader.propose(new Uint8Array(400));
    net.settle();
    expect(leader.status().hardState.commit, "accepted again once committed").toBe(5);
  });

  it("does not commit an entry of an earlier term by counting replicas (Raft §5.4.2)", () => {
    const cs = { voters: V3, learners: [] };
    const s1 = MemoryStorage.fromConfState(cs);
    s1.append([ent(1, 1), ent(2, 2)]);
    s1.setHardState({ term: 2, vote: 1n, commit: 1 });
    const raw = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s1,
      rng: new FixedRng(0),
      preVote: false,
    });
    raw.campaign();
    raw.step(newMessage({ type: MessageType.VoteResp, to: 1n, from: 2n, term: 3 }));
    expect(raw.status().softState.raftState).toBe("StateLeader");
    // Follower 2 acknowledges index 2 (term 2) only: not committed, since term 2 ≠ current term 3.
    raw.step(newMessage({ type: MessageType.AppResp, to: 1n, from: 2n, term: 3, index: 2 }));
    expect(raw.status().hardState.commit).toBe(1);
    raw.step(newMessage({ type: MessageType.AppResp, to: 1n, from: 2n, term: 3, index: 3 }));
    expect(raw.status().hardState.commit, "the term-3 entry commits, and 2 with it").toBe(3);
  });
});

const NONE_ID = 0n;
