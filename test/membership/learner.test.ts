// Proves the promote rule etcd 3.4 uses (isLearnerReady): a learner is in sync when its match index is at least
// 90% of the leader's, computed in floating point like etcd; an id without progress is "ready" (the conf-change
// checks then answer for it) and a node without progress (not the leader) must forward the promote.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LearnerReadiness, isLearnerInSync, learnerReadiness } from "../../core/membership/learner.js";

describe("learner in-sync rule", () => {
  it("is match ≥ 0.9 × leader match at the boundary", () => {
    expect(isLearnerInSync(90, 100)).toBe(true);
    expect(isLearnerInSync(89, 100)).toBe(false);
    expect(isLearnerInSync(0, 0), "an empty log is in sync").toBe(true);
    expect(isLearnerInSync(0, 1), "0 < 0.9").toBe(false);
    expect(isLearnerInSync(1, 1)).toBe(true);
    expect(isLearnerInSync(9, 10)).toBe(true);
    expect(isLearnerInSync(8, 10)).toBe(false);
  });

  it("agrees with exact integer arithmetic (10·match ≥ 9·leader) for indexes up to 2^40", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.double({ min: 0, max: 1.2, noNaN: true }),
        (leader, frac) => {
          const learner = Math.min(leader, Math.floor(leader * frac));
          const exact = BigInt(learner) * 10n >= BigInt(leader) * 9n;
          // doubles can differ from exact math only within one unit of the boundary
          if (Math.abs(learner - leader * 0.9) > 1)
            expect(isLearnerInSync(learner, leader), `${learner}/${leader}`).toBe(exact);
        },
      ),
      { seed: 7, numRuns: 2000 },
    );
  });

  it("rejects negative or fractional indexes", () => {
    expect(() => isLearnerInSync(-1, 5)).toThrow(/bad match/);
    expect(() => isLearnerInSync(1.5, 5)).toThrow(/bad match/);
  });

  it("reads the leader's progress map", () => {
    const progress = new Map<bigint, { match: number }>([
      [1n, { match: 1000 }],
      [2n, { match: 950 }],
      [3n, { match: 10 }],
    ]);
    expect(learnerReadiness({ id: 1n, progress }, 2n)).toBe(LearnerReadiness.Ready);
    expect(learnerReadiness({ id: 1n, progress }, 3n)).toBe(LearnerReadiness.NotReady);
    expect(learnerReadiness({ id: 1n, progress }, 4n), "unknown id: left to the conf-change checks").toBe(
      LearnerReadiness.Ready,
    );
    expect(learnerReadiness({ id: 2n }, 3n), "a follower has no progress").toBe(LearnerReadiness.NotLeader);
  });
});
