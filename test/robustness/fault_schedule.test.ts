// Proves the seeded fault schedule is a function of the seed alone, failpoint crashes included: the same seed
// lists the same faults with the same choices (point, hit, hold), another seed a different list; a failpoint
// crash only aims at points its role reaches (a snapshot install only on a follower) with a hit in range; the
// common faults draw exactly what they drew before failpoints existed; and --faults refuses failpoint crashes
// for real etcd while `all` leaves them out.
import { describe, expect, it } from "vitest";
import { FAILPOINTS } from "../../core/failpoints.js";
import { failpointsFor } from "../../harness/robustness/failpoint_faults.js";
import { ALL_FAULTS, FAULTS, faultSchedule, parseFaults, type FaultStep } from "../../harness/robustness/faults.js";
import { Rng } from "../../harness/robustness/rng.js";

const FP_FAULTS = ["failpoint-leader", "failpoint-follower"] as const;

describe("fault schedule is fixed by the seed", () => {
  it("the same seed gives the same failpoint schedule, another seed another", () => {
    const a = faultSchedule({ seed: 7, faults: [...FP_FAULTS], members: 3 }, 40);
    const b = faultSchedule({ seed: 7, faults: [...FP_FAULTS], members: 3 }, 40);
    const c = faultSchedule({ seed: 8, faults: [...FP_FAULTS], members: 3 }, 40);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(a.every((s) => s.failpoint !== undefined && s.holdMs !== undefined)).toBe(true);
  });

  it("mixed with the common faults, the whole schedule repeats", () => {
    const opts = { seed: 123, faults: [...ALL_FAULTS], members: 3 };
    expect(faultSchedule(opts, 60)).toEqual(faultSchedule(opts, 60));
    expect(new Set(faultSchedule(opts, 200).map((s) => s.name))).toEqual(new Set(ALL_FAULTS));
  });

  it("failpoints aimed at are ones the role reaches, with a hit in range; over many seeds every one is chosen", () => {
    const seen = { leader: new Set<string>(), follower: new Set<string>() };
    for (let seed = 1; seed <= 200; seed++) {
      for (const s of faultSchedule({ seed, faults: [...FP_FAULTS], members: 3 }, 5)) {
        const role = s.name === "failpoint-leader" ? "leader" : "follower";
        const fp = s.failpoint!;
        expect(failpointsFor(role)).toContain(fp.point);
        expect(fp.hit).toBeGreaterThanOrEqual(1);
        expect(fp.hit).toBeLessThanOrEqual(30);
        if (role === "follower") expect(s.pick).toBeGreaterThanOrEqual(0);
        seen[role].add(fp.point);
      }
    }
    expect([...seen.follower].sort()).toEqual([...FAILPOINTS].sort());
    expect([...seen.leader].sort()).toEqual(FAILPOINTS.filter((p) => p !== "snap-install-mid").sort());
  });

  it("a 1-member cluster gets only faults one member can take", () => {
    const names = new Set(faultSchedule({ seed: 3, faults: [...ALL_FAULTS], members: 1 }, 100).map((s) => s.name));
    expect(names.has("failpoint-leader")).toBe(true);
    expect(names.has("failpoint-follower")).toBe(false);
    expect(names.has("kill-follower")).toBe(false);
  });
});

/**
 * The draws the schedule made before steps were drawn up front: gap, name, then per fault what it picked, in
 * the order it picked it. Kept here as the reference so that a seed names the same common-fault run as before.
 */
function referenceSteps(seed: number, n: number): Pick<FaultStep, "gapMs" | "name" | "holdMs">[] {
  const rng = Rng.derive(seed, 2000);
  const usable = [...FAULTS];
  const out: Pick<FaultStep, "gapMs" | "name" | "holdMs">[] = [];
  for (let k = 0; k < n; k++) {
    const gapMs = rng.int(800, 2_500);
    const name = rng.pick(usable);
    if (["kill-follower", "pause-follower", "partition-follower"].includes(name)) rng.next();
    if (name === "drop-oneway") {
      if (rng.next() >= 0.5) rng.next();
      rng.next();
    }
    const noHold = ["restart", "defrag", "replace-follower"].includes(name);
    if (noHold) rng.next();
    out.push(noHold ? { gapMs, name } : { gapMs, name, holdMs: rng.int(500, 2_500) });
  }
  return out;
}

describe("common faults keep their seeded schedule", () => {
  for (const seed of [1, 2, 100, 200]) {
    it(`seed ${seed}`, () => {
      const steps = faultSchedule({ seed, faults: [...FAULTS], members: 3 }, 50).map((s) =>
        s.holdMs === undefined ? { gapMs: s.gapMs, name: s.name } : { gapMs: s.gapMs, name: s.name, holdMs: s.holdMs },
      );
      expect(steps).toEqual(referenceSteps(seed, 50));
    });
  }
});

describe("--faults", () => {
  it("all is the common faults; failpoints names the crashes; lists mix both", () => {
    expect(parseFaults("all", "etcd-ts")).toEqual([...FAULTS]);
    expect(parseFaults("failpoints", "etcd-ts")).toEqual([...FP_FAULTS]);
    expect(parseFaults("kill-leader,failpoint-follower", "etcd-ts")).toEqual(["kill-leader", "failpoint-follower"]);
    expect(parseFaults("all,failpoints", "etcd-ts")).toEqual([...ALL_FAULTS]);
    expect(parseFaults("none", "etcd")).toEqual([]);
  });

  it("refuses failpoint crashes for real etcd, and unknown names", () => {
    expect(() => parseFaults("failpoints", "etcd")).toThrow(/failpoint faults need etcd-ts/);
    expect(() => parseFaults("kill-leader,failpoint-leader", "etcd")).toThrow(/failpoint-leader/);
    expect(parseFaults("all", "etcd")).toEqual([...FAULTS]);
    expect(() => parseFaults("failpoint-sideways", "etcd-ts")).toThrow(/unknown fault/);
  });
});
