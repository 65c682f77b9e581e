// Spec: a member whose state machine survived a crash (etcd's backend keeps its consistent index) restarts with
// Config.applied above its snapshot index: the core hands out only entries after `applied` (a re-delivery would
// trip the apply-in-order checker), and its configuration includes conf changes applied before the crash.
import { describe, expect, it } from "vitest";
import { ConfChangeType } from "../../../core/raft/types.js";
import { cluster, ELECTION_TICKS } from "./impl.js";

describe("restart with a durable state machine", () => {
  it("resumes after `applied`, with the configuration it had applied", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n: 3, durableStateMachine: true });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      for (let i = 0; i < 5; i++) c.propose(leader, `a${i}`);
      c.proposeConfChange(leader, { type: ConfChangeType.AddLearnerNode, nodeId: 4n, context: new Uint8Array() });
      const f = c.ids().find((id) => id !== leader && id !== 4n) as bigint;
      c.runUntil(
        () => c.appliedEverywhere("a4") && c.node(f).confState.learners.includes(4n),
        5 * ELECTION_TICKS,
        "applied",
      );
      const applied = c.node(f).sm.applied;
      expect(c.node(f).storage.snapshot().metadata.index, `seed=${seed}: no snapshot yet`).toBeLessThan(applied);
      c.crash(f);
      c.restart(f, { tickMode: "etcd34" });
      expect(c.node(f).sm.applied, `seed=${seed}: state machine kept`).toBe(applied);
      expect(c.node(f).raw?.status().confState.learners, `seed=${seed}: core config after restart`).toContain(4n);
      c.propose(leader, "b");
      c.runUntil(() => c.appliedEverywhere("b"), 5 * ELECTION_TICKS, "b applied");
      expect(c.node(f).sm.items).toEqual(c.node(leader).sm.items);
    }
  });
});
