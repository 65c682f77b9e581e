// Proves the leader's per-follower stats follow etcd's arithmetic: each answered append updates current, minimum,
// maximum, average and standard deviation (sqrt(avg(x²) − avg(x)²)) in milliseconds; a rejection counts as a
// failure; only the oldest unanswered append to a follower is timed; a follower not heard from yet shows etcd's
// initial values.
import { describe, expect, it } from "vitest";
import { FollowerStats } from "../../core/server/follower_stats.js";

describe("FollowerStats", () => {
  it("times appends until their answer, as etcd's latency figures", () => {
    const f = new FollowerStats();
    f.sent(2n, 100);
    f.sent(2n, 101); // still waiting for the first: not timed separately
    f.answered(2n, false, 104);
    f.sent(2n, 200);
    f.answered(2n, false, 208);
    f.sent(2n, 300);
    f.answered(2n, true, 301);
    f.answered(2n, false, 400); // nothing in flight: ignored
    const st = f.of([2n, 3n]);
    expect(st.get(2n)).toEqual({
      latency: { current: 8, average: 6, standardDeviation: 2, minimum: 4, maximum: 8 },
      counts: { fail: 1, success: 2 },
    });
    expect(st.get(3n)).toEqual({
      latency: { current: 0, average: 0, standardDeviation: 0, minimum: 2 ** 63, maximum: 0 },
      counts: { fail: 0, success: 0 },
    });
  });

  it("forgets appends in flight when leadership changes", () => {
    const f = new FollowerStats();
    f.sent(2n, 0);
    f.forgetPending();
    f.answered(2n, false, 5000);
    expect(f.of([2n]).get(2n)?.counts.success).toBe(0);
  });
});
