// One row of the claims table for a seed claim that compares two targets (e.g. etcd-ts blocking → concurrent
// reads): each round's figure for both, their spread, the change per round, the conditions behind it (targets,
// read work, samples, rounds, client) and the verdict word harness/verdict.ts's rule gives.
import { tailOf, type SummaryRow } from "./metrics.js";
import { formatSpread, spreadOf } from "./rounds.js";
import type { ClaimRow } from "./results.js";
import { changePct, readWorkRatio, verdict, MAX_READ_WORK_RATIO } from "./verdict.js";

export interface Comparison {
  readonly claim: string;
  readonly seedValue: string;
  readonly seedPct: number;
  /** Target names as recorded (e.g. "etcd-ts-blocking") and the label of the pair in the table. */
  readonly from: string;
  readonly to: string;
  readonly label: string;
  /** "throughput": ops/s of the row; "tail": its P99, or max when the row has too few samples for a P99. */
  readonly metric: "throughput" | "tail";
  readonly perRound: readonly (readonly SummaryRow[])[];
  /** The measured row (writes) of a target in one round's rows. */
  readonly row: (rows: readonly SummaryRow[], target: string) => SummaryRow | undefined;
  /** The LIST row beside it, when the claim is about writes beside long reads. */
  readonly lists?: (rows: readonly SummaryRow[], target: string) => SummaryRow | undefined;
  /** What the read load was (e.g. "4 readers, one full LIST every 5 s each, open loop"). */
  readonly readWork: string;
  readonly client: string;
  readonly note?: string;
}

/** completed: LISTs that returned without an error. */
const completed = (r: SummaryRow | undefined): number => (r === undefined ? 0 : r.count - r.errors);

const fmtPct = (p: number): string => `${p >= 0 ? "+" : "−"}${Math.abs(p).toFixed(1)}%`;

/** comparisonClaim computes the row; a round missing either figure makes the claim "not measured". */
export function comparisonClaim(c: Comparison): ClaimRow {
  const value = (r: SummaryRow): number => (c.metric === "throughput" ? r.throughput_per_s : tailOf(r).ms);
  const pairs = c.perRound.map((rows) => [c.row(rows, c.from), c.row(rows, c.to)] as const);
  const base = { claim: c.claim, seed_value: c.seedValue, target: c.label, note: c.note ?? "" };
  if (pairs.length === 0 || pairs.some(([a, b]) => a === undefined || b === undefined)) {
    return {
      ...base,
      measured_value: "not yet available",
      conditions: `${c.from} and ${c.to} in every round`,
      verdict: "inconclusive: not measured",
    };
  }
  const from = pairs.map(([a]) => value(a!)),
    to = pairs.map(([, b]) => value(b!));
  const pcts = pairs.map((_, i) => changePct(from[i]!, to[i]!));
  const minSamples = Math.min(...pairs.flatMap(([a, b]) => [a!.count, b!.count]));
  const tails = new Set(pairs.flatMap(([a, b]) => [tailOf(a!).label, tailOf(b!).label]));
  const unit = c.metric === "throughput" ? "/s" : tails.has("max") ? "ms (max: n < 100)" : "ms (P99)";
  const listCounts =
    c.lists === undefined
      ? undefined
      : c.perRound.map((rows) => [completed(c.lists!(rows, c.from)), completed(c.lists!(rows, c.to))]);
  const v = verdict({
    seedPct: c.seedPct,
    roundPcts: pcts,
    minSamples,
    samplesNeeded: c.metric === "tail" ? 100 : 1,
    ...(listCounts === undefined ? {} : { listsCompleted: listCounts }),
  });
  const pctSpread = pcts.every(Number.isFinite) ? spreadOf(pcts) : undefined;
  const change =
    pctSpread === undefined
      ? "n/a"
      : pctSpread.n === 1
        ? fmtPct(pctSpread.median)
        : `${fmtPct(pctSpread.median)} (${fmtPct(pctSpread.min)} to ${fmtPct(pctSpread.max)})`;
  const lists =
    listCounts === undefined
      ? ""
      : `; LISTs completed per round ${c.from} ${listCounts.map((l) => l[0]).join("/")}, ${c.to} ${listCounts.map((l) => l[1]).join("/")}`;
  return {
    ...base,
    measured_value: `${formatSpread(spreadOf(from), unit)} → ${formatSpread(spreadOf(to), unit)}: ${change}`,
    conditions: `${c.from} vs ${c.to}; ${c.readWork}${lists}; n ≥ ${minSamples} per cell and round; ${pairs.length} round(s); client ${c.client}`,
    verdict: `${v.word}: ${v.why}`,
  };
}

/**
 * closedLoopNote says, for the closed-loop view, when the targets' LIST counts differ by more than the
 * read-work bound (one slow target leaves more CPU to its writers), per round; "" when they do not.
 */
export function closedLoopNote(
  perRound: readonly (readonly SummaryRow[])[],
  targets: readonly string[],
  lists: (rows: readonly SummaryRow[], target: string) => SummaryRow | undefined,
): string {
  const bad = perRound.flatMap((rows, i) => {
    const counts = targets.map((t) => completed(lists(rows, t)));
    const ratio = readWorkRatio(counts);
    return ratio > MAX_READ_WORK_RATIO
      ? [`round ${i + 1}: ${targets.map((t, k) => `${t} ${counts[k]}`).join(", ")} (×${ratio.toFixed(2)})`]
      : [];
  });
  return bad.length === 0
    ? ""
    : `closed-loop LIST counts differ by more than ${Math.round((MAX_READ_WORK_RATIO - 1) * 100)}% between targets: ${bad.join("; ")}`;
}
