// Spec: bad input never corrupts the log. A message from a member not in the configuration, a MsgApp whose
// index is beyond the follower's log, a MsgAppResp claiming an index beyond the leader's log, and a second conf
// change while one is pending are each rejected (a RaftError with a code) or ignored; afterwards the log is
// unchanged, the safety checkers stay green and the cluster still commits.
import { describe, expect, it } from "vitest";
import { ConfChangeType, type Message } from "../../../core/raft/types.js";
import type { Cluster } from "../../sim/cluster.js";
import { cluster, ELECTION_TICKS } from "./impl.js";

const base = { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 } as const;

/** Steps `m` straight into its target; returns the error code if the core refused it. */
function stepRaw(c: Cluster, m: Message): string | undefined {
  const n = c.node(m.to);
  let code: string | undefined;
  try {
    n.raw?.step(m);
  } catch (e) {
    code = String((e as { code?: unknown }).code);
    expect((e as Error).name, `refusal of ${m.type} is a RaftError, got: ${(e as Error).message}`).toBe("RaftError");
  }
  c.drain(n);
  return code;
}

function logOf(c: Cluster, id: bigint): string {
  const s = c.node(id).storage;
  const out: number[] = [];
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i));
  return `${s.firstIndex()}:${out.join(",")}`;
}

function stillCommits(c: Cluster, tag: string): void {
  const l = c.waitForLeader(10 * ELECTION_TICKS);
  expect(c.propose(l, tag), `${tag} accepted`).toBe(true);
  c.runUntil(() => c.appliedEverywhere(tag), 5 * ELECTION_TICKS, `${tag} applied everywhere`);
}

function settled(seed: number): { c: Cluster; leader: bigint; follower: bigint } {
  const c = cluster({ seed, n: 3 });
  const leader = c.waitForLeader(5 * ELECTION_TICKS);
  for (let i = 0; i < 5; i++) c.propose(leader, `s${i}`);
  c.runUntil(() => c.appliedEverywhere("s4"), 5 * ELECTION_TICKS, "settled");
  return { c, leader, follower: c.ids().find((id) => id !== leader) as bigint };
}

describe("bad input", () => {
  it("responses and appends from an unknown member are refused or ignored", () => {
    const { c, leader, follower } = settled(1);
    const term = c.node(leader).term;
    const before = logOf(c, leader);
    for (const type of ["MsgAppResp", "MsgHeartbeatResp", "MsgVoteResp", "MsgPreVoteResp", "MsgSnapStatus"] as const) {
      const code = stepRaw(c, { ...base, type, from: 99n, to: leader, term, index: 1000 });
      if (code !== undefined) expect(["STEP_PEER_NOT_FOUND", "STEP_LOCAL_MSG"]).toContain(code);
    }
    expect(c.node(leader).isLeader()).toBe(true);
    expect(logOf(c, leader)).toBe(before);
    expect(c.node(leader).raw?.status().progress?.has(99n) ?? false, "unknown member got no progress").toBe(false);
    expect(logOf(c, follower)).toBe(logOf(c, leader));
    stillCommits(c, "after-unknown");
  });

  it("a MsgApp beyond the follower's log is rejected, the log unchanged", () => {
    const { c, leader, follower } = settled(2);
    const term = c.node(leader).term;
    const before = logOf(c, follower);
    const sent: Message[] = [];
    const off = c.net.intercept((m) => {
      if (m.from === follower && m.type === "MsgAppResp") sent.push(m);
      return undefined;
    });
    const entry = { term, index: 1001, type: 0 as const, data: new TextEncoder().encode("bogus") };
    stepRaw(c, {
      ...base,
      type: "MsgApp",
      from: leader,
      to: follower,
      term,
      logTerm: term,
      index: 1000,
      entries: [entry],
      commit: 1001,
    });
    off();
    expect(logOf(c, follower)).toBe(before);
    expect(c.node(follower).commit, "commit not moved past the log").toBeLessThanOrEqual(
      c.node(follower).storage.lastIndex(),
    );
    expect(sent.length, "the follower answered").toBeGreaterThan(0);
    expect(
      sent.every((m) => m.reject),
      "the follower answered with a rejection",
    ).toBe(true);
    stillCommits(c, "after-out-of-range-app");
  });

  it("a MsgAppResp claiming an index beyond the leader's log never moves commit past the log", () => {
    const { c, leader, follower } = settled(3);
    const term = c.node(leader).term;
    const last = c.node(leader).storage.lastIndex();
    stepRaw(c, { ...base, type: "MsgAppResp", from: follower, to: leader, term, index: last + 1000 });
    const st = c.node(leader).raw?.status();
    expect(st?.hardState.commit ?? 0, "commit ≤ last index").toBeLessThanOrEqual(c.node(leader).storage.lastIndex());
    expect(c.node(leader).commit).toBeLessThanOrEqual(c.node(leader).storage.lastIndex());
    stillCommits(c, "after-out-of-range-resp");
  });

  it("a second conf change while one is pending is not applied as a conf change", () => {
    const { c, leader } = settled(4);
    const cc = (id: bigint) => ({ type: ConfChangeType.AddLearnerNode, nodeId: id, context: new Uint8Array() });
    c.proposeConfChange(leader, cc(4n)); // pending until committed and applied
    c.proposeConfChange(leader, cc(5n));
    c.runTicks(3 * ELECTION_TICKS);
    const applied = c.appliedConfChanges.get(leader) ?? [];
    expect(
      applied.map((x) => x.nodeId),
      "only the first conf change took effect",
    ).toEqual([4n]);
    expect(c.node(leader).confState.learners).toEqual([4n]);
    stillCommits(c, "after-double-conf-change");
  });
});
