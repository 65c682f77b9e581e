// Proves the leader's per-peer bookkeeping: the in-flight ring frees by index and bounds pipelining, Progress
// moves between probe / replicate / snapshot as etcd's does (match < next always), and quorum math counts
// voters only (property test against a plain sort, fixed seed).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Inflights, Progress, VoteResult, committedIndex, quorumOf, voteResult } from "../../../core/raft/progress.js";

describe("Inflights", () => {
  it("fills up to its size, frees everything ≤ an index, and wraps around", () => {
    const inf = new Inflights(3);
    inf.add(5);
    inf.add(9);
    inf.add(12);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(13)).toThrowError(/full inflights \(size 3\)/);
    inf.freeLE(9);
    expect(inf.count).toBe(1);
    inf.add(20);
    inf.add(25);
    expect(inf.full()).toBe(true);
    inf.freeFirstOne();
    inf.freeLE(24);
    expect(inf.count, "only 25 left").toBe(1);
  });
});

describe("Progress", () => {
  it("probe sends one message at a time; a match moves it to replicate", () => {
    const pr = new Progress(11, 4, false);
    expect(pr.isPaused()).toBe(false);
    pr.probeSent = true;
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeUpdate(10)).toBe(true);
    expect(pr.isPaused(), "an ack resumes").toBe(false);
    pr.becomeReplicate();
    expect([pr.match, pr.next, pr.state]).toEqual([10, 11, "StateReplicate"]);
    pr.checkInvariant(2n);
  });

  it("a rejection in replicate goes back to match+1; a stale one is ignored", () => {
    const pr = new Progress(1, 4, false);
    pr.maybeUpdate(5);
    pr.becomeReplicate();
    pr.optimisticUpdate(9);
    expect(pr.maybeDecrTo(4, 0), "rejected ≤ match: stale").toBe(false);
    expect(pr.maybeDecrTo(8, 0)).toBe(true);
    expect(pr.next).toBe(6);
  });

  it("a rejection in probe follows the hint but never drops next to match or below", () => {
    const pr = new Progress(10, 4, false);
    pr.maybeUpdate(3);
    pr.next = 10;
    expect(pr.maybeDecrTo(7, 0), "not the probe in flight (next-1 = 9)").toBe(false);
    expect(pr.maybeDecrTo(9, 5)).toBe(true);
    expect(pr.next).toBe(6);
    expect(pr.maybeDecrTo(5, 0)).toBe(true);
    expect(pr.next, "bogus hint 0: clamped to match+1").toBe(4);
    pr.checkInvariant(2n);
  });

  it("snapshot state pauses; leaving it probes from after the snapshot", () => {
    const pr = new Progress(3, 4, false);
    pr.becomeSnapshot(50);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect([pr.state, pr.next]).toEqual(["StateProbe", 51]);
  });
});

describe("quorum math", () => {
  it("committedIndex is the quorum-th largest match of the voters; learners never count", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ match: fc.nat(1000), learner: fc.boolean() }), { minLength: 1, maxLength: 9 }),
        (peers) => {
          const prs = new Map(
            peers.map((p, i) => {
              const pr = new Progress(p.match + 1, 4, p.learner);
              pr.match = p.match;
              return [BigInt(i + 1), pr] as const;
            }),
          );
          const voters = peers
            .filter((p) => !p.learner)
            .map((p) => p.match)
            .sort((a, b) => b - a);
          const want = voters.length === 0 ? 0 : voters[quorumOf(voters.length) - 1];
          expect(committedIndex(prs)).toBe(want);
        },
      ),
      { seed: 4242, numRuns: 300 },
    );
  });

  it("voteResult: won with a majority of voters, lost once a majority is impossible", () => {
    const prs = new Map([1n, 2n, 3n, 4n, 5n].map((id) => [id, new Progress(1, 4, id === 5n)] as const));
    // 4 voters (quorum 3) and one learner.
    expect(
      voteResult(
        prs,
        new Map([
          [1n, true],
          [5n, true],
          [2n, true],
        ]),
      ),
    ).toBe(VoteResult.Pending);
    expect(
      voteResult(
        prs,
        new Map([
          [1n, true],
          [2n, true],
          [3n, true],
        ]),
      ),
    ).toBe(VoteResult.Won);
    expect(
      voteResult(
        prs,
        new Map([
          [1n, true],
          [2n, false],
          [3n, false],
        ]),
      ),
    ).toBe(VoteResult.Lost);
  });
});
