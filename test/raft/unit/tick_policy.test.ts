// Proves the restart tick rule (etcd 3.4): single member → electionTicks-1; multi-member → wait for a reachable
// peer, then electionTicks-2, or 0 once the bounded wait expires; etcd 3.3 mode → always electionTicks-1. And
// on a live RawNode: advancing electionTicks-2 leaves a follower that the next heartbeat keeps from campaigning.

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { newMessage } from "../../../core/raft/raft.js";
import { TICK_ADVANCE_POLL_MS, TICK_ADVANCE_WAIT_MS, initialTickAdvance } from "../../../core/raft/tick_policy.js";
import { MessageType } from "../../../core/raft/types.js";
import { FixedRng } from "./net.js";

describe("initialTickAdvance", () => {
  it("single-member cluster fast-forwards to one tick before its election", () => {
    expect(initialTickAdvance({ clusterSize: 1, electionTicks: 10, activePeers: 0, mode: "etcd34" })).toBe(9);
  });

  it("multi-member waits for a peer, then leaves two ticks for the heartbeat", () => {
    expect(initialTickAdvance({ clusterSize: 3, electionTicks: 10, activePeers: 0, mode: "etcd34" })).toBe("wait");
    expect(initialTickAdvance({ clusterSize: 3, electionTicks: 10, activePeers: 1, mode: "etcd34" })).toBe(8);
    expect(initialTickAdvance({ clusterSize: 5, electionTicks: 10, activePeers: 4, mode: "etcd34" })).toBe(8);
  });

  it("gives up fast-forwarding when the bounded wait expires with no peer", () => {
    expect(
      initialTickAdvance({ clusterSize: 3, electionTicks: 10, activePeers: 0, mode: "etcd34", waitExpired: true }),
    ).toBe(0);
    expect(TICK_ADVANCE_WAIT_MS, "etcd's 5 s").toBe(5000);
    expect(TICK_ADVANCE_WAIT_MS % TICK_ADVANCE_POLL_MS).toBe(0);
  });

  it("etcd 3.3 mode always fast-forwards to electionTicks-1", () => {
    for (const clusterSize of [1, 3, 5]) {
      for (const activePeers of [0, 2]) {
        expect(
          initialTickAdvance({ clusterSize, electionTicks: 10, activePeers, mode: "etcd33" }),
          `size ${clusterSize}`,
        ).toBe(9);
      }
    }
  });

  it("refuses nonsense input", () => {
    expect(() => initialTickAdvance({ clusterSize: 3, electionTicks: 1, activePeers: 0, mode: "etcd34" })).toThrowError(
      /electionTicks\(1\)/,
    );
  });

  it("a restarted follower advanced by the rule does not campaign when a heartbeat comes within two ticks", () => {
    for (const mode of ["etcd34", "etcd33"] as const) {
      const s = MemoryStorage.fromConfState({ voters: [1n, 2n, 3n], learners: [] });
      // Shortest randomized timeout (= electionTick): the worst case for the restarted member.
      const raw = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0) });
      const adv = initialTickAdvance({ clusterSize: 3, electionTicks: 10, activePeers: 2, mode });
      expect(adv).not.toBe("wait");
      raw.advanceTicks(adv as number);
      raw.tick(); // the leader's first heartbeat is slow by one tick
      const campaigned = raw.status().softState.raftState !== "StateFollower";
      raw.step(newMessage({ type: MessageType.Heartbeat, to: 2n, from: 1n, term: 1 }));
      expect(campaigned, `mode ${mode}`).toBe(mode === "etcd33");
    }
  });

  it("advanceTicks never fires more than natural ticks would", () => {
    const s = MemoryStorage.fromConfState({ voters: [1n, 2n, 3n], learners: [] });
    const raw = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, rng: new FixedRng(0) });
    raw.advanceTicks(9);
    expect(raw.status().softState.raftState).toBe("StateFollower");
    raw.advanceTicks(1);
    expect(raw.status().softState.raftState, "the 10th tick fires once").toBe("StatePreCandidate");
    expect(raw.ready().messages.length, "one pre-vote round (2 peers)").toBe(2);
  });
});
