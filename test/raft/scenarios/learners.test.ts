// Spec: a learner receives every entry, never votes or campaigns, and is not counted for commit; promoting it
// makes it a voter. And the seed's Figure 2: adding a learner with an unreachable address to a 1-member cluster
// changes neither quorum nor availability, while adding an unreachable voter there loses quorum.
import { describe, expect, it } from "vitest";
import { ConfChangeType, type Message } from "../../../core/raft/types.js";
import { cluster, ELECTION_TICKS, ids } from "./impl.js";

const cc = (type: ConfChangeType, id: number) => ({ type, nodeId: BigInt(id), context: new Uint8Array() });

describe("learners", () => {
  it("a learner applies every entry the voters apply", () => {
    const c = cluster({ seed: 3, voters: ids(1, 2, 3), learners: ids(4) });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    for (let i = 0; i < 30; i++) expect(c.propose(leader, `v${i}`), `proposal ${i}`).toBe(true);
    c.runUntil(() => c.appliedEverywhere("v29"), 10 * ELECTION_TICKS, "all applied");
    expect(c.node(4n).sm.items).toEqual(c.node(leader).sm.items);
    expect(c.node(4n).sm.items.length).toBe(30);
  });

  it("a learner never campaigns and never grants a vote, even cut off or asked to campaign", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, voters: ids(1, 2, 3), learners: ids(4) });
      const granted: Message[] = [];
      c.net.intercept((m) => {
        if (m.from === 4n && (m.type === "MsgVoteResp" || m.type === "MsgPreVoteResp") && !m.reject) granted.push(m);
        return undefined;
      });
      const leader = c.waitForLeader(5 * ELECTION_TICKS);
      c.net.isolate(4n, c.ids());
      c.runTicks(5 * ELECTION_TICKS);
      c.campaign(4n);
      c.runTicks(ELECTION_TICKS);
      c.net.heal();
      c.crash(leader);
      c.runUntil(() => c.stableLeader() !== undefined, 10 * ELECTION_TICKS, "new leader without the learner");
      expect(c.node(4n).everCampaigned, `seed=${seed}: learner campaigned`).toBe(false);
      expect(c.node(4n).isLeader()).toBe(false);
      expect(granted.length, `seed=${seed}: learner granted ${granted.length} votes`).toBe(0);
      expect(c.node(4n).storage.initialState().hardState.vote, `seed=${seed}: learner's persisted vote`).toBe(0n);
    }
  });

  it("a learner does not count for commit: leader + learner cannot commit without a voter quorum", () => {
    const c = cluster({ seed: 5, voters: ids(1, 2, 3), learners: ids(4), checkQuorum: false });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    c.propose(leader, "before");
    c.runUntil(() => c.appliedEverywhere("before"), 5 * ELECTION_TICKS, "before applied");
    for (const id of ids(1, 2, 3)) if (id !== leader) c.crash(id);
    const commit = c.node(leader).commit;
    expect(c.propose(leader, "after")).toBe(true);
    c.runTicks(5 * ELECTION_TICKS);
    expect(c.node(leader).commit, "leader commit with only the learner acking").toBe(commit);
    expect(c.node(4n).sm.items.includes("after")).toBe(false);
    expect(c.node(4n).storage.lastIndex(), "the learner did receive the entry").toBeGreaterThan(commit);
  });

  it("promoting a learner makes it a voter that can lead", () => {
    const c = cluster({ seed: 6, voters: ids(1, 2, 3), learners: ids(4) });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    expect(c.proposeConfChange(leader, cc(ConfChangeType.AddNode, 4))).toBe(true);
    c.runUntil(
      () => c.liveIds().every((id) => c.node(id).confState.voters.includes(4n)),
      5 * ELECTION_TICKS,
      "promotion applied",
    );
    expect(c.node(4n).confState.learners).not.toContain(4n);
    c.transferLeader(leader, 4n);
    c.runUntil(() => c.stableLeader() === 4n, 5 * ELECTION_TICKS, "promoted member leads");
  });
});

describe("the seed's Figure 2: an unreachable new member of a 1-member cluster", () => {
  it("added as a learner: quorum and availability unchanged", () => {
    const c = cluster({ seed: 7, voters: ids(1) });
    c.waitForLeader(3 * ELECTION_TICKS);
    expect(c.proposeConfChange(1n, cc(ConfChangeType.AddLearnerNode, 2))).toBe(true);
    c.runUntil(() => c.node(1n).confState.learners.includes(2n), 2 * ELECTION_TICKS, "learner added");
    expect(c.node(1n).confState.voters).toEqual([1n]);
    expect(c.propose(1n, "still-available")).toBe(true);
    c.runUntil(
      () => c.appliedEverywhere("still-available", [1n]),
      2 * ELECTION_TICKS,
      "write commits with the learner unreachable",
    );
    c.runTicks(5 * ELECTION_TICKS);
    expect(c.node(1n).isLeader(), "leader stays").toBe(true);
  });

  it("added as a voter: quorum becomes 2 of 2 and the cluster loses it", () => {
    const c = cluster({ seed: 7, voters: ids(1) });
    c.waitForLeader(3 * ELECTION_TICKS);
    expect(c.proposeConfChange(1n, cc(ConfChangeType.AddNode, 2))).toBe(true);
    c.runUntil(() => c.node(1n).confState.voters.includes(2n), 2 * ELECTION_TICKS, "voter added");
    const commit = c.node(1n).commit;
    c.propose(1n, "stuck");
    c.runTicks(10 * ELECTION_TICKS);
    expect(c.node(1n).sm.items.includes("stuck"), "write cannot commit without member 2").toBe(false);
    expect(c.node(1n).commit).toBe(commit);
    expect(c.node(1n).isLeader(), "check-quorum: the leader steps down").toBe(false);
  });
});
