// Spec: the restart tick rule. A follower of a healthy 3-member cluster restarts (pre-vote off, as etcd 3.4's
// default; check-quorum on) and draws the shortest election timeout (the worst case). With tick_policy's etcd 3.4
// rule (advance electionTicks-2 once a peer is reachable) it causes no new term, even when the leader's first
// heartbeat reaches it only just under 2 ticks after the restart. With the 3.3-style fast-forward to one tick
// before the election (electionTicks-1), the same slow heartbeat comes too late and it starts an election.
// Also: with no peer reachable the 3.4 rule does not fast-forward at all.
import { describe, expect, it } from "vitest";
import type { TickMode } from "../../sim/cluster.js";
import { cluster, ELECTION_TICKS, SHORTEST_TIMEOUT_RNG } from "./impl.js";

/** Restarts one follower right after its tick, delays every message to it until just under 2 ticks later. */
function restartWithSlowHeartbeat(seed: number, tickMode: TickMode) {
  const c = cluster({ seed, n: 3, preVote: false, checkQuorum: true });
  const leader = c.waitForLeader(5 * ELECTION_TICKS);
  c.runTicks(2 * ELECTION_TICKS);
  const term = c.maxTerm();
  const f = c.node(c.ids().find((id) => id !== leader) as bigint);
  const u = c.cfg.unitsPerTick;
  let heartbeatAt: number | undefined; // set at restart: 2 ticks minus a little later
  // Installed before the crash so no message already in flight slips past: while down, messages to the
  // follower are lost (as they would be); after the restart they arrive no earlier than `heartbeatAt`.
  c.net.intercept((m, now) => {
    if (m.to !== f.id) return undefined;
    if (heartbeatAt === undefined) return { drop: true };
    return now < heartbeatAt ? { delayUnits: heartbeatAt - now } : undefined;
  });
  c.crash(f.id);
  c.runTicks(2);
  c.runUntil(() => c.nowUnits % u === (f.phaseUnits + 1) % u, 1, "just after the follower's tick");
  heartbeatAt = c.nowUnits + 2 * u - 2;
  c.restart(f.id, { tickMode, rng: SHORTEST_TIMEOUT_RNG });
  c.runTicks(5 * ELECTION_TICKS);
  return { c, f, term, leader };
}

describe("restart tick rule", () => {
  it("etcd 3.4 rule: advances electionTicks-2, and a restarted follower with a slow first heartbeat causes no new term", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { c, f, term, leader } = restartWithSlowHeartbeat(seed, "etcd34");
      expect(f.advancedTicks, `seed=${seed}: ticks advanced`).toBe(ELECTION_TICKS - 2);
      expect(f.everCampaigned, `seed=${seed}: restarted follower campaigned`).toBe(false);
      expect(c.maxTerm(), `seed=${seed}: cluster term`).toBe(term);
      expect(c.stableLeader(), `seed=${seed}: leader`).toBe(leader);
    }
  });

  it("3.3-style fast-forward (electionTicks-1): the same slow heartbeat lets the follower start an election", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const { c, f, term } = restartWithSlowHeartbeat(seed, "etcd33");
      expect(f.advancedTicks, `seed=${seed}: ticks advanced`).toBe(ELECTION_TICKS - 1);
      expect(f.everCampaigned || c.maxTerm() > term, `seed=${seed}: restarted follower campaigned`).toBe(true);
      expect(c.maxTerm(), `seed=${seed}: cluster term rose`).toBeGreaterThan(term);
    }
  });

  it("etcd 3.4 rule with no reachable peer: no fast-forward until one is reachable", () => {
    const c = cluster({ seed: 4, n: 3, preVote: false });
    const leader = c.waitForLeader(5 * ELECTION_TICKS);
    const f = c.ids().find((id) => id !== leader) as bigint;
    c.crash(f);
    c.net.isolate(f, c.ids());
    c.restart(f, { tickMode: "etcd34" });
    c.runTicks(3);
    expect(c.node(f).advancedTicks, "advanced while isolated").toBeUndefined();
    c.net.heal();
    c.runTicks(1);
    expect(c.node(f).advancedTicks).toBe(ELECTION_TICKS - 2);
  });

  it("a single-member cluster restarts fast-forwarded to one tick before its election", () => {
    const c = cluster({ seed: 5, n: 1 });
    c.waitForLeader(3 * ELECTION_TICKS);
    c.crash(1n);
    c.restart(1n, { tickMode: "etcd34", rng: SHORTEST_TIMEOUT_RNG });
    expect(c.node(1n).advancedTicks).toBe(ELECTION_TICKS - 1);
    const took = c.runUntil(() => c.node(1n).isLeader(), 2, "leader again");
    expect(took, "ticks to lead again").toBeLessThanOrEqual(2);
  });
});
