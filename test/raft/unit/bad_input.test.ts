// Proves bad input is refused or ignored as etcd's raft does and never corrupts the log: local message types
// and responses from unknown members are rejected with codes, malformed or out-of-range MsgApp/heartbeat/
// MsgAppResp are ignored or answered with a rejection, proposals without a leader throw PROPOSAL_DROPPED, and
// invariant violations throw with the numbers in the message.

import { describe, expect, it } from "vitest";
import { RaftError } from "../../../core/raft/errors.js";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { EntryType, MessageType, type Entry, type NodeId } from "../../../core/raft/types.js";
import { FixedRng, TestNet, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof RaftError ? e.code : `not a RaftError: ${String(e)}`;
  }
  return undefined;
}

function follower(): { raw: RawNode; s: MemoryStorage } {
  const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
  s.append([1, 2, 3].map((i): Entry => ({ index: i, term: 1, type: EntryType.Normal, data: text(`e${i}`) })));
  s.setHardState({ term: 1, vote: 1n, commit: 2 });
  const raw = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0), applied: 2 });
  return { raw, s };
}

describe("bad input", () => {
  it("rejects local-only message types from step()", () => {
    const { raw } = follower();
    for (const type of [
      MessageType.Hup,
      MessageType.Beat,
      MessageType.CheckQuorum,
      MessageType.SnapStatus,
      MessageType.Unreachable,
    ]) {
      expect(
        codeOf(() => raw.step(newMessage({ type, to: 2n, from: 1n }))),
        type,
      ).toBe("STEP_LOCAL_MSG");
    }
  });

  it("rejects a response from a member not in the configuration", () => {
    const { raw } = follower();
    expect(codeOf(() => raw.step(newMessage({ type: MessageType.AppResp, to: 2n, from: 9n, term: 1, index: 3 })))).toBe(
      "STEP_PEER_NOT_FOUND",
    );
  });

  it("ignores a MsgApp whose entries are not contiguous, and rejects one beyond the log; the log is unchanged", () => {
    const { raw, s } = follower();
    const gap = [{ index: 5, term: 1, type: EntryType.Normal, data: text("x") }] as const;
    raw.step(
      newMessage({ type: MessageType.App, to: 2n, from: 1n, term: 1, index: 3, logTerm: 1, entries: gap, commit: 3 }),
    );
    expect(raw.hasReady() ? raw.ready().messages : [], "no answer to a malformed MsgApp").toEqual([]);
    raw.step(newMessage({ type: MessageType.App, to: 2n, from: 1n, term: 1, index: 50, logTerm: 1, commit: 50 }));
    const rd = raw.ready();
    expect(rd.messages.map((m) => [m.type, m.reject, m.rejectHint])).toEqual([["MsgAppResp", true, 3]]);
    expect(rd.entries).toEqual([]);
    expect(raw.status().hardState.commit, "commit untouched").toBe(2);
    expect(s.lastIndex()).toBe(3);
  });

  it("ignores messages whose indexes or terms are not non-negative integers", () => {
    const { raw, s } = follower();
    for (const bad of [
      { index: -1 },
      { index: Number.NaN },
      { term: 1.5 },
      { commit: Number.POSITIVE_INFINITY },
      { logTerm: -3 },
    ]) {
      raw.step(
        newMessage({ type: MessageType.App, to: 2n, from: 1n, term: 1, index: 3, logTerm: 1, commit: 3, ...bad }),
      );
      expect(raw.hasReady() ? raw.ready().messages : [], JSON.stringify(bad)).toEqual([]);
    }
    expect([s.lastIndex(), raw.status().hardState.commit, raw.status().hardState.term]).toEqual([3, 2, 1]);
  });

  it("ignores peer messages at term 0 other than proposals and reads (a term-0 vote must not count)", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    const raw = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      rng: new FixedRng(0),
      preVote: false,
    });
    raw.campaign();
    raw.step(newMessage({ type: MessageType.VoteResp, to: 1n, from: 2n, term: 0 }));
    expect(raw.status().softState.raftState).toBe("StateCandidate");
    raw.step(newMessage({ type: MessageType.Vote, to: 1n, from: 3n, term: 0 }));
    expect(raw.ready().messages.filter((m) => m.type === "MsgVoteResp")).toEqual([]);
  });

  it("ignores a heartbeat commit beyond the log", () => {
    const { raw } = follower();
    raw.step(newMessage({ type: MessageType.Heartbeat, to: 2n, from: 1n, term: 1, commit: 99 }));
    expect(raw.status().hardState.commit).toBe(2);
    expect(raw.ready().messages.map((m) => m.type)).toEqual(["MsgHeartbeatResp"]);
  });

  it("a leader ignores a MsgAppResp acknowledging entries it never had", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    const leader = net.node(1n).raw;
    leader.step(newMessage({ type: MessageType.AppResp, to: 1n, from: 2n, term: 1, index: 1000 }));
    leader.step(newMessage({ type: MessageType.AppResp, to: 1n, from: 3n, term: 1, index: 1000 }));
    expect(leader.status().hardState.commit).toBe(1);
    expect(leader.status().progress?.get(2n)?.match).toBe(1);
    leader.propose(text("ok"));
    net.settle();
    expect(leader.status().hardState.commit).toBe(2);
  });

  it("proposals without a leader, or with forwarding disabled, throw PROPOSAL_DROPPED", () => {
    const { raw } = follower();
    expect(codeOf(() => raw.propose(text("x")))).toBe("PROPOSAL_DROPPED");
    const net = new TestNet(V3, [], { disableProposalForwarding: true });
    net.tickAll(11);
    expect(codeOf(() => net.node(2n).raw.propose(text("x")))).toBe("PROPOSAL_DROPPED");
    expect(
      codeOf(() => net.node(1n).raw.propose(text("x"))),
      "the leader itself takes it",
    ).toBeUndefined();
  });

  it("a forwarded proposal that cannot be taken is dropped silently (the transport must not crash)", () => {
    const { raw } = follower();
    const prop = newMessage({
      type: MessageType.Prop,
      to: 2n,
      from: 3n,
      entries: [{ index: 0, term: 0, type: EntryType.Normal, data: text("p") }],
    });
    expect(codeOf(() => raw.step(prop))).toBeUndefined();
    expect(raw.hasReady() ? raw.ready().messages : []).toEqual([]);
  });

  it("a leader ignores an empty MsgProp forwarded by a peer", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    const leader = net.node(1n).raw;
    expect(codeOf(() => leader.step(newMessage({ type: MessageType.Prop, to: 1n, from: 2n })))).toBeUndefined();
    expect(net.node(1n).storage.lastIndex() + (leader.hasReady() ? leader.ready().entries.length : 0)).toBe(1);
  });

  it("a hard state whose commit is beyond the log fails loudly with the numbers", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    s.setHardState({ term: 1, vote: 0n, commit: 5 });
    expect(
      () => new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0) }),
    ).toThrowError(/commit\(5\) out of range \[0, 0\]/);
  });

  it("applied beyond commit on restart fails loudly with the numbers", () => {
    const { s } = follower();
    expect(
      () => new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0), applied: 3 }),
    ).toThrowError(/applied\(3\) is out of range \[prevApplied\(0\), committed\(2\)\]/);
  });

  it("refuses invalid configurations", () => {
    const s = MemoryStorage.fromConfState({ voters: V3, learners: [] });
    expect(
      () => new RawNode({ id: 0n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0) }),
    ).toThrowError(/none as id/);
    expect(
      () => new RawNode({ id: 1n, electionTick: 1, heartbeatTick: 1, storage: s, rng: new FixedRng(0) }),
    ).toThrowError(/election tick\(1\)/);
  });
});
