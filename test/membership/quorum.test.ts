// Proves the strict-reconfig quorum arithmetic against a brute-force model: for clusters of 1–5 voters with 0 or
// 1 learner and every kind of started / connected set, validateAdd (voter and learner), validateRemove (each
// member) and validatePromote answer exactly what "does some majority of the new voter set lie inside the started
// (resp. active) members?" — found by enumerating all subsets — says, with etcd's 1→2 exception. Fixed seed
// (MEMBERSHIP_SEED overrides); fast-check prints the seed and the shrunk counterexample on failure.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Cluster, type ReconfigOptions } from "../../core/membership/cluster.js";
import { quorumOf } from "../../core/membership/quorum.js";
import { MemoryView, codeOf, member } from "./helpers.js";

const SEED = Number(process.env["MEMBERSHIP_SEED"] ?? 20261125);

/** Brute force: is there a subset of `voters` with more than half of them, all inside `good`? */
function someMajorityInside(voters: readonly number[], good: ReadonlySet<number>): boolean {
  for (let mask = 0; mask < 1 << voters.length; mask++) {
    const q = voters.filter((_, i) => (mask & (1 << i)) !== 0);
    if (q.length * 2 > voters.length && q.every((v) => good.has(v))) return true;
  }
  return false;
}

interface Scenario {
  voters: number; // ids 1..voters
  learner: boolean; // id 9 when present
  started: boolean[]; // per voter
  active: boolean[]; // per voter (transport connected for the health interval)
  local: number; // index of the proposing voter
}

const scenario: fc.Arbitrary<Scenario> = fc.integer({ min: 1, max: 5 }).chain((n) =>
  fc.record({
    voters: fc.constant(n),
    learner: fc.boolean(),
    started: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    active: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    local: fc.integer({ min: 0, max: n - 1 }),
  }),
);

function build(s: Scenario): {
  cluster: Cluster;
  o: ReconfigOptions;
  ids: number[];
  started: Set<number>;
  active: Set<number>;
} {
  const view = new MemoryView();
  const ids = Array.from({ length: s.voters }, (_, i) => i + 1);
  const local = ids[s.local] ?? 1;
  const started = new Set(ids.filter((_, i) => s.started[i] === true));
  const active = new Set(ids.filter((id, i) => s.active[i] === true || id === local));
  const loader = Cluster.load(view);
  for (const id of ids) loader.add(view, member(id, { started: started.has(id) }));
  if (s.learner) loader.add(view, member(9, { learner: true, started: false }));
  const o: ReconfigOptions = {
    strictReconfigCheck: true,
    activeSince: (id) => active.has(Number(id)),
    localId: BigInt(local),
  };
  return { cluster: Cluster.load(view), o, ids, started, active };
}

function expectedAdd(
  ids: number[],
  started: Set<number>,
  active: Set<number>,
  learnerExists: boolean,
  asLearner: boolean,
): string | undefined {
  if (!asLearner) {
    const after = [...ids, 100];
    const ok = someMajorityInside(after, started) || (started.size === 1 && after.length === 2);
    if (!ok) return "MEMBER_NOT_ENOUGH_STARTED";
  }
  if (!ids.every((v) => active.has(v))) return "UNHEALTHY";
  if (asLearner && learnerExists) return "TOO_MANY_LEARNERS";
  return undefined;
}

function expectedRemove(
  ids: number[],
  started: Set<number>,
  active: Set<number>,
  r: number,
  local: number,
): string | undefined {
  const rest = ids.filter((v) => v !== r);
  if (!someMajorityInside(rest, started)) return "MEMBER_NOT_ENOUGH_STARTED";
  if (r !== local && !active.has(r)) return undefined;
  const activeRest = new Set([...active].filter((v) => v !== r));
  return someMajorityInside(rest, activeRest) ? undefined : "UNHEALTHY";
}

describe("strict reconfig quorum arithmetic = brute-force majority check", () => {
  it("quorumOf is the smallest majority for 1..9 voters", () => {
    for (let n = 1; n <= 9; n++) {
      expect(quorumOf(n) * 2 > n, `n=${n}`).toBe(true);
      expect((quorumOf(n) - 1) * 2 > n, `n=${n}`).toBe(false);
    }
  });

  it("add voter / add learner / remove each member / promote, over random clusters", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { cluster, o, ids, started, active } = build(s);
        const local = Number(o.localId);
        const addVoter = codeOf(() => cluster.validateAdd(member(100), o));
        expect(addVoter, "add voter").toBe(expectedAdd(ids, started, active, s.learner, false));
        const addLearner = codeOf(() => cluster.validateAdd(member(101, { learner: true }), o));
        expect(addLearner, "add learner").toBe(expectedAdd(ids, started, active, s.learner, true));
        for (const r of ids) {
          expect(
            codeOf(() => cluster.validateRemove(BigInt(r), o)),
            `remove voter ${r}`,
          ).toBe(expectedRemove(ids, started, active, r, local));
        }
        if (s.learner) {
          expect(
            codeOf(() => cluster.validateRemove(9n, o)),
            "remove learner: no quorum check",
          ).toBeUndefined();
          const promoted = someMajorityInside([...ids, 9], new Set([...started, 9]));
          expect(
            codeOf(() => cluster.validatePromote(9n, true, o)),
            "promote",
          ).toBe(promoted ? undefined : "MEMBER_NOT_ENOUGH_STARTED");
        }
      }),
      { seed: SEED, numRuns: 600 },
    );
  });

  it("covers every voter count 1..5 with 0 and 1 learner, every started set (exhaustive, all connected)", () => {
    let cases = 0;
    for (let n = 1; n <= 5; n++) {
      for (const learner of [false, true]) {
        for (let mask = 0; mask < 1 << n; mask++) {
          const bits = Array.from({ length: n }, (_, i) => (mask & (1 << i)) !== 0);
          const s: Scenario = { voters: n, learner, started: bits, active: bits.map(() => true), local: 0 };
          const { cluster, o, ids, started, active } = build(s);
          expect(
            codeOf(() => cluster.validateAdd(member(100), o)),
            `n=${n} mask=${mask}`,
          ).toBe(expectedAdd(ids, started, active, learner, false));
          for (const r of ids) {
            expect(
              codeOf(() => cluster.validateRemove(BigInt(r), o)),
              `n=${n} mask=${mask} r=${r}`,
            ).toBe(expectedRemove(ids, started, active, r, 1));
          }
          cases++;
        }
      }
    }
    expect(cases).toBe(2 * (2 + 4 + 8 + 16 + 32));
  });
});
