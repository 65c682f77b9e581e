// The verdict word of the claims table, chosen by a fixed rule rather than by reading the numbers: a seed
// claim is a relative change (e.g. −90% P99, +70% throughput); each round gives its own measured relative change.
//  - inconclusive when the comparison does not hold: a P99 from too few samples, unequal read work between
//    the compared targets, or fewer rounds than a spread needs;
//  - reproduced when every round moves in the seed's direction by at least half the seed's magnitude;
//  - not reproduced when no round does;
//  - inconclusive when the rounds fall on both sides of that bar.
export type VerdictWord = "reproduced" | "not reproduced" | "inconclusive";

/** Rounds a verdict other than inconclusive needs (one round has no spread). */
export const MIN_ROUNDS = 3;
/** Share of the seed's change a round must reach to count as reproducing it. */
export const REACH = 0.5;
/** Largest ratio between the compared targets' completed LISTs for their read work to count as equal. */
export const MAX_READ_WORK_RATIO = 1.2;

export interface VerdictInput {
  /** The seed's relative change in percent (−97.4 for "−97.4%"). */
  readonly seedPct: number;
  /** Our relative change per round, in percent. */
  readonly roundPcts: readonly number[];
  /** Fewest samples behind any compared figure in any round, and how many the figure needs (100 for a P99). */
  readonly minSamples: number;
  readonly samplesNeeded: number;
  /** Per round, the completed LISTs of the compared cells, when the claim is about writes beside long reads. */
  readonly listsCompleted?: readonly (readonly number[])[];
}

export interface Verdict {
  readonly word: VerdictWord;
  readonly why: string;
}

/** readWorkRatio is max / min of the completed LIST counts (Infinity when one did none and another did some). */
export function readWorkRatio(counts: readonly number[]): number {
  if (counts.length < 2) return 1;
  const lo = Math.min(...counts),
    hi = Math.max(...counts);
  if (hi === 0) return 1;
  return lo === 0 ? Number.POSITIVE_INFINITY : hi / lo;
}

/** verdict applies the rule above. */
export function verdict(i: VerdictInput): Verdict {
  if (i.seedPct === 0) throw new Error("a seed claim of no change has no direction to reproduce");
  if (i.roundPcts.length === 0 || i.roundPcts.some((p) => !Number.isFinite(p)))
    return { word: "inconclusive", why: "not measured in every round" };
  if (i.minSamples < i.samplesNeeded)
    return { word: "inconclusive", why: `n=${i.minSamples} < ${i.samplesNeeded} samples` };
  const ratio = Math.max(1, ...(i.listsCompleted ?? []).map(readWorkRatio));
  if (ratio > MAX_READ_WORK_RATIO)
    return { word: "inconclusive", why: `read work differs ×${ratio.toFixed(2)} between targets` };
  if (i.roundPcts.length < MIN_ROUNDS)
    return { word: "inconclusive", why: `${i.roundPcts.length} round(s); a verdict needs ≥ ${MIN_ROUNDS}` };
  const dir = Math.sign(i.seedPct),
    bar = i.seedPct * REACH;
  const reached = i.roundPcts.filter((p) => dir * p >= dir * bar).length;
  const barText = `${bar > 0 ? "+" : "−"}${Math.abs(bar).toFixed(1)}%`;
  if (reached === i.roundPcts.length)
    return { word: "reproduced", why: `every round reaches ${barText} (half the seed's change)` };
  if (reached === 0) return { word: "not reproduced", why: `no round reaches ${barText} (half the seed's change)` };
  return { word: "inconclusive", why: `${reached} of ${i.roundPcts.length} rounds reach ${barText}` };
}

/** changePct is the relative change from → to in percent (NaN when `from` is not positive). */
export function changePct(from: number, to: number): number {
  return from > 0 ? ((to - from) / from) * 100 : Number.NaN;
}
