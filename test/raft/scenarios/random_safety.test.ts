// Spec: randomized safety. For each seed, a 3- or 5-member cluster runs under random faults (drops, delays,
// duplicates, reorders, symmetric and one-way partitions, crashes incl. mid-Ready, restarts, proposals,
// occasional conf changes, leader transfers and reads) with election safety, log matching, leader completeness,
// state-machine safety, commit monotonic and applied ≤ committed checked after every event; then it heals and
// must show liveness within a bound (one leader, a fresh proposal applied by every member, identical state).
//
// CI runs seeds 1..2000. SOAK=1 (npm run test:soak) runs 20,000. Replay one seed:
//   SEED=N npx vitest run test/raft/scenarios/random_safety.test.ts
// Run another range: SEED_START=N SEEDS=M npx vitest run test/raft/scenarios/random_safety.test.ts
// With SEED=N, TRACE=1 also prints every crash, restart and Ready of the run.
import { describe, expect, it } from "vitest";
import { randomRun, type RandomRunResult } from "../../sim/random_run.js";
import { raftImpl } from "./impl.js";

const single = process.env.SEED !== undefined ? Number(process.env.SEED) : undefined;
const start = single ?? Number(process.env.SEED_START ?? 1);
const count = single !== undefined ? 1 : Number(process.env.SEEDS ?? (process.env.SOAK === "1" ? 20_000 : 2_000));
const CHUNK = 250;

interface Failure {
  seed: number;
  message: string;
}

function runSeeds(from: number, to: number): { failures: Failure[]; results: RandomRunResult[] } {
  const failures: Failure[] = [];
  const results: RandomRunResult[] = [];
  for (let seed = from; seed < to; seed++) {
    try {
      const trace = single !== undefined && process.env.TRACE === "1" ? (l: string) => console.log(l) : undefined;
      results.push(randomRun(raftImpl, seed, trace !== undefined ? { trace } : {}));
    } catch (e) {
      const msg = (e as Error).message;
      failures.push({ seed, message: msg.includes(`seed=${seed}`) ? msg : `seed=${seed} ${msg}` });
      if (single !== undefined) console.error((e as Error).stack);
    }
  }
  return { failures, results };
}

describe(`randomized safety: seeds ${start}..${start + count - 1}`, () => {
  for (let from = start; from < start + count; from += CHUNK) {
    const to = Math.min(from + CHUNK, start + count);
    it(`seeds ${from}..${to - 1}: safe under faults, live after healing`, () => {
      const { failures, results } = runSeeds(from, to);
      const shown = failures
        .slice(0, 5)
        .map(
          (f) =>
            `  ${f.message.split("\n")[0]}\n    replay: SEED=${f.seed} npx vitest run test/raft/scenarios/random_safety.test.ts`,
        );
      expect(failures.length, `${failures.length} of ${to - from} seeds failed:\n${shown.join("\n")}`).toBe(0);
      const terms = results.reduce((m, r) => Math.max(m, r.maxTerm), 0);
      const applied = results.reduce((s, r) => s + r.applied, 0);
      expect(applied, "the runs committed entries").toBeGreaterThan(0);
      expect(terms, "the runs saw elections").toBeGreaterThan(1);
      expect(
        results.reduce((s, r) => s + r.reads, 0),
        "the runs served reads",
      ).toBeGreaterThan(0);
      expect(results.filter((r) => r.confChangesApplied > 0).length, "runs with conf changes").toBeGreaterThan(0);
    });
  }
});
