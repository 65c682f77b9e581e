// Repeated rounds of one experiment: the target order each round uses (rotated, so no target always runs
// first on a cold machine or last on a warm one), the spread of a figure over rounds (median, min, max), the
// pooled recorder of a target's rounds, and the rounds.csv / spread.csv files beside summary.csv.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { Recorder, samplesFor, summarise, type SummaryRow } from "./metrics.js";
import { SUMMARY_COLUMNS } from "./results.js";

/** roundOrder is the target order of round `round` (0-based): the list rotated left by `round`. */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  if (targets.length === 0) return [];
  const k = ((round % targets.length) + targets.length) % targets.length;
  return [...targets.slice(k), ...targets.slice(0, k)];
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** spreadOf summarises one figure over rounds; the median of an even count is the mean of the middle two. */
export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error("spreadOf needs at least one value");
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/** formatSpread prints "12.3 (10.1–15.0, 3 rounds)", or "12.3 (1 round)" when there is no spread to show. */
export function formatSpread(s: Spread, unit = ""): string {
  const u = unit === "" ? "" : ` ${unit}`;
  if (s.n === 1) return `${round3(s.median)}${u} (1 round)`;
  return `${round3(s.median)}${u} (${round3(s.min)}–${round3(s.max)}, ${s.n} rounds)`;
}

/** mergeRecorders pools a target's rounds into one recorder: histograms and counts added, phase times summed. */
export function mergeRecorders(target: string, recs: readonly Recorder[]): Recorder {
  const out = new Recorder(target);
  const seconds = new Map<string, number>();
  for (const rec of recs) {
    for (const c of rec.cells.values()) {
      const m = out.cell(c.phase, c.verb, c.resource);
      m.latency.add(c.latency);
      m.service.add(c.service);
      m.count += c.count;
      m.errors += c.errors;
      m.conflicts += c.conflicts;
      m.bytes += c.bytes;
      for (const [code, n] of c.errorsByCode) m.errorsByCode.set(code, (m.errorsByCode.get(code) ?? 0) + n);
    }
    for (const phase of rec.phaseSpan.keys()) seconds.set(phase, (seconds.get(phase) ?? 0) + rec.phaseSeconds(phase));
    rec.timeline.forEach((t, i) => {
      while (out.timeline.length <= i)
        out.timeline.push({ second: out.timeline.length, ops: 0, writes: 0, reads: 0, errors: 0 });
      const o = out.timeline[i]!;
      o.ops += t.ops;
      o.writes += t.writes;
      o.reads += t.reads;
      o.errors += t.errors;
    });
  }
  // The pooled phase "span" is the summed duration, so throughput = all ops / all phase time.
  for (const [phase, s] of seconds) out.phaseSpan.set(phase, [0, s]);
  return out;
}

export interface SpreadRow {
  readonly target: string;
  readonly phase: string;
  readonly verb: string;
  readonly resource: string;
  readonly rounds: number;
  readonly count_median: number;
  readonly count_min: number;
  readonly count_max: number;
  readonly bytes_median: number;
  readonly throughput_median: number;
  readonly throughput_min: number;
  readonly throughput_max: number;
  readonly p50_median_ms: number;
  readonly p50_min_ms: number;
  readonly p50_max_ms: number;
  /** "p99" when every round had enough samples for one, else "max". */
  readonly tail: "p99" | "max";
  readonly tail_median_ms: number;
  readonly tail_min_ms: number;
  readonly tail_max_ms: number;
}

export const SPREAD_COLUMNS: readonly (keyof SpreadRow)[] = [
  "target",
  "phase",
  "verb",
  "resource",
  "rounds",
  "count_median",
  "count_min",
  "count_max",
  "bytes_median",
  "throughput_median",
  "throughput_min",
  "throughput_max",
  "p50_median_ms",
  "p50_min_ms",
  "p50_max_ms",
  "tail",
  "tail_median_ms",
  "tail_min_ms",
  "tail_max_ms",
];

const keyOf = (r: { target: string; phase: string; verb: string; resource: string }): string =>
  [r.target, r.phase, r.verb, r.resource].join("\u0000");

/** spreadRows groups per-round summary rows by target × phase × verb × resource and gives each figure's spread. */
export function spreadRows(perRound: readonly (readonly SummaryRow[])[]): SpreadRow[] {
  const groups = new Map<string, SummaryRow[]>();
  for (const rows of perRound) for (const r of rows) groups.set(keyOf(r), [...(groups.get(keyOf(r)) ?? []), r]);
  return [...groups.values()].map((g) => {
    const f = (pick: (r: SummaryRow) => number): Spread => spreadOf(g.map(pick));
    const tail = g.every((r) => r.count >= samplesFor(99)) ? "p99" : "max";
    const count = f((r) => r.count),
      tp = f((r) => r.throughput_per_s),
      p50 = f((r) => r.p50_ms);
    const t = f((r) => (tail === "p99" ? r.p99_ms : r.max_ms));
    const first = g[0]!;
    return {
      target: first.target,
      phase: first.phase,
      verb: first.verb,
      resource: first.resource,
      rounds: g.length,
      count_median: count.median,
      count_min: count.min,
      count_max: count.max,
      bytes_median: f((r) => r.bytes).median,
      throughput_median: round3(tp.median),
      throughput_min: tp.min,
      throughput_max: tp.max,
      p50_median_ms: round3(p50.median),
      p50_min_ms: p50.min,
      p50_max_ms: p50.max,
      tail,
      tail_median_ms: round3(t.median),
      tail_min_ms: t.min,
      tail_max_ms: t.max,
    };
  });
}

/** roundSummaries are each round's summary rows, with its own phase times. */
export function roundSummaries(
  perRound: readonly (readonly Recorder[])[],
  phaseSeconds?: (phase: string) => number,
): SummaryRow[][] {
  return perRound.map((recs) => recs.flatMap((rec) => summarise(rec, phaseSeconds)));
}

/** writeRoundFiles writes rounds.csv (every round's summary rows) and spread.csv (median, min, max per figure). */
export function writeRoundFiles(dir: string, perRound: readonly (readonly SummaryRow[])[]): SpreadRow[] {
  const rows = perRound.flatMap((rs, i) => rs.map((r) => ({ round: i + 1, ...r })));
  writeFileSync(
    join(dir, "rounds.csv"),
    stringify(rows, { header: true, columns: ["round", ...(SUMMARY_COLUMNS as string[])] }),
  );
  const spread = spreadRows(perRound);
  writeFileSync(
    join(dir, "spread.csv"),
    stringify(spread as SpreadRow[], { header: true, columns: SPREAD_COLUMNS as string[] }),
  );
  return spread;
}
