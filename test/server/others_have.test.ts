// Proves othersHave, the bound below which a member may drop applied entries from its in-memory Raft log: a lone
// member may drop all, a leader only what its slowest other member (voter or learner) has acknowledged, a
// follower nothing.
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../core/raft/memory_storage.js";
import { RawNode } from "../../core/raft/raw_node.js";
import { newMessage } from "../../core/raft/raft.js";
import { MessageType, type NodeId } from "../../core/raft/types.js";
import { othersHave } from "../../core/server/raft_node.js";
import { FixedRng } from "../raft/unit/net.js";

function node(id: NodeId, voters: NodeId[], learners: NodeId[] = []): { raw: RawNode; storage: MemoryStorage } {
  const storage = MemoryStorage.fromConfState({ voters, learners });
  const raw = new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, rng: new FixedRng(0), preVote: false });
  return { raw, storage };
}

/** Node 1 elected by node 2's vote, its Ready persisted and drained. */
function leader(voters: NodeId[], learners: NodeId[] = []): RawNode {
  const { raw, storage } = node(1n, voters, learners);
  raw.campaign();
  const term = raw.raft.term;
  raw.step(newMessage({ type: MessageType.VoteResp, to: 1n, from: 2n, term }));
  expect(raw.raft.state).toBe("StateLeader");
  const rd = raw.ready();
  storage.append(rd.entries);
  raw.advance(rd);
  return raw;
}

const ack = (raw: RawNode, from: NodeId, index: number): void =>
  raw.step(newMessage({ type: MessageType.AppResp, to: 1n, from, term: raw.raft.term, index }));

describe("othersHave", () => {
  it("is unbounded for the only member", () => {
    const { raw } = node(1n, [1n]);
    raw.campaign();
    expect(othersHave(raw.raft)).toBe(Infinity);
  });

  it("is the lowest match among the leader's followers and learners", () => {
    const raw = leader([1n, 2n, 3n], [4n]);
    expect(othersHave(raw.raft), "nothing acknowledged yet").toBe(0);
    // The new leader's empty entry is the last one in its log.
    const last = raw.raft.raftLog.lastIndex();
    expect(last).toBe(1);
    ack(raw, 2n, last);
    ack(raw, 3n, last);
    expect(othersHave(raw.raft), "the learner has acknowledged nothing").toBe(0);
    ack(raw, 4n, last);
    expect(othersHave(raw.raft)).toBe(last);
  });

  it("is unknown on a follower", () => {
    const { raw } = node(2n, [1n, 2n, 3n]);
    raw.step(newMessage({ type: MessageType.Heartbeat, to: 2n, from: 1n, term: 1 }));
    expect(raw.raft.state).toBe("StateFollower");
    expect(othersHave(raw.raft)).toBeUndefined();
  });
});
