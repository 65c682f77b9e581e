// Proves the pure rules behind the comparison tables: the sample-count rule (a P99 needs n >= 100, else the max
// is shown and labelled so), the rotation of target order over rounds, the spread and pooling of rounds, the
// verdict rule (reproduced / not reproduced / inconclusive) and the claim row built from per-round figures,
// including the note when closed-loop LIST counts differ by more than 20%.
import { describe, expect, it } from "vitest";
import { closedLoopNote, comparisonClaim } from "../../harness/claims.js";
import { formatTail, Recorder, samplesFor, summarise, tailOf, type SummaryRow } from "../../harness/metrics.js";
import { shownSummary } from "../../harness/report.js";
import { formatSpread, mergeRecorders, roundOrder, spreadOf, spreadRows } from "../../harness/rounds.js";
import { readWorkRatio, verdict } from "../../harness/verdict.js";

function row(target: string, phase: string, verb: string, over: Partial<SummaryRow> = {}): SummaryRow {
  return {
    target,
    phase,
    verb,
    resource: verb === "list" ? "pods" : "kv",
    count: 1000,
    errors: 0,
    conflicts: 0,
    bytes: 0,
    throughput_per_s: 100,
    p50_ms: 1,
    p90_ms: 2,
    p99_ms: 10,
    p999_ms: 20,
    max_ms: 50,
    p99_service_ms: 10,
    errors_by_code: "",
    ...over,
  };
}

describe("sample-count rule", () => {
  it("needs 100 samples for a P99 and 1,000 for a P99.9", () => {
    expect(samplesFor(99)).toBe(100);
    expect(samplesFor(99.9)).toBe(1000);
    expect(samplesFor(50)).toBe(2);
    expect(() => samplesFor(100)).toThrow();
  });

  it("shows the max, labelled, when n < 100, and the P99 from 100 on", () => {
    expect(tailOf({ count: 99, p99_ms: 10, max_ms: 50 })).toEqual({ label: "max", ms: 50, n: 99 });
    expect(tailOf({ count: 100, p99_ms: 10, max_ms: 50 })).toEqual({ label: "p99", ms: 10, n: 100 });
    expect(formatTail(tailOf({ count: "30", p99_ms: "146.3", max_ms: "146.3" }))).toBe("max 146.3 ms (n=30)");
    expect(tailOf({ count: 500, p99_ms: Number.NaN, max_ms: 50 }).label, "no P99 reported: the max, labelled").toBe(
      "max",
    );
  });

  it("replaces P99 and P99.9 cells of the report's summary by the max when n is too small for them", () => {
    const shown = shownSummary([
      { count: "30", p99_ms: "9", p999_ms: "9", max_ms: "12" },
      { count: "500", p99_ms: "9", p999_ms: "11", max_ms: "12" },
      { count: "1000", p99_ms: "9", p999_ms: "11", max_ms: "12" },
    ]);
    expect(shown.map((r) => [r["p99_ms"], r["p999_ms"]])).toEqual([
      ["max 12", "max 12"],
      ["9", "max 12"],
      ["9", "11"],
    ]);
  });
});

describe("rounds", () => {
  it("rotates the target order so every target takes every position once per cycle", () => {
    const t = ["a", "b", "c"];
    const orders = [0, 1, 2].map((r) => roundOrder(t, r));
    expect(orders).toEqual([
      ["a", "b", "c"],
      ["b", "c", "a"],
      ["c", "a", "b"],
    ]);
    for (let pos = 0; pos < 3; pos++) expect(new Set(orders.map((o) => o[pos]))).toEqual(new Set(t));
    expect(roundOrder(t, 3)).toEqual(orders[0]);
    expect(roundOrder([], 2)).toEqual([]);
  });

  it("gives the median with min and max", () => {
    expect(spreadOf([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(spreadOf([4, 1, 2, 3]).median).toBe(2.5);
    expect(formatSpread(spreadOf([12, 10, 15]), "ms")).toBe("12 ms (10–15, 3 rounds)");
    expect(formatSpread(spreadOf([7]))).toBe("7 (1 round)");
    expect(() => spreadOf([])).toThrow();
  });

  it("pools rounds: counts and bytes add, phase time sums, percentiles come from the merged histograms", () => {
    const recs = [1, 2].map((k) => {
      const r = new Recorder("t");
      for (let i = 0; i < 100; i++)
        r.record(
          "p",
          "list",
          "pods",
          { intendedS: i * 0.01, sentS: i * 0.01, doneS: i * 0.01 + k / 1000 },
          { bytes: 10 },
        );
      return r;
    });
    const [pooled] = summarise(mergeRecorders("t", recs));
    expect(pooled!.count).toBe(200);
    expect(pooled!.bytes).toBe(2000);
    expect(pooled!.throughput_per_s).toBeCloseTo(200 / (recs[0]!.phaseSeconds("p") + recs[1]!.phaseSeconds("p")), 1);
    expect(pooled!.p50_ms).toBeCloseTo(1, 2);
    expect(pooled!.max_ms).toBeCloseTo(2, 2);
  });

  it("labels a spread row's tail max when any round had fewer than 100 samples", () => {
    const rs = spreadRows([
      [row("a", "s", "put", { p99_ms: 10 })],
      [row("a", "s", "put", { count: 50, max_ms: 40 })],
      [row("a", "s", "put", { p99_ms: 12 })],
    ]);
    expect(rs).toHaveLength(1);
    expect(rs[0]!.tail).toBe("max");
    expect([rs[0]!.tail_min_ms, rs[0]!.tail_median_ms, rs[0]!.tail_max_ms]).toEqual([40, 50, 50]);
    expect(spreadRows([[row("a", "s", "put")], [row("a", "s", "put", { p99_ms: 14 })]])[0]!.tail).toBe("p99");
  });
});

describe("verdict rule", () => {
  const base = { seedPct: -90, minSamples: 1000, samplesNeeded: 100 };
  it("reproduces when every round reaches half the seed's change in its direction", () => {
    expect(verdict({ ...base, roundPcts: [-60, -45, -80] }).word).toBe("reproduced");
    expect(verdict({ seedPct: 70, roundPcts: [40, 35, 90], minSamples: 5, samplesNeeded: 1 }).word).toBe("reproduced");
  });
  it("does not reproduce when no round does, including changes the other way", () => {
    expect(verdict({ ...base, roundPcts: [-44, -10, 20] }).word).toBe("not reproduced");
    expect(verdict({ seedPct: 70, roundPcts: [-5, 34.9, 0], minSamples: 5, samplesNeeded: 1 }).word).toBe(
      "not reproduced",
    );
  });
  it("is inconclusive when rounds straddle the bar", () => {
    const v = verdict({ ...base, roundPcts: [-60, -20, -70] });
    expect(v).toEqual({ word: "inconclusive", why: "2 of 3 rounds reach −45.0%" });
  });
  it("is inconclusive with too few rounds, too few samples, unequal read work or a missing round", () => {
    expect(verdict({ ...base, roundPcts: [-95, -95] }).why).toMatch(/≥ 3/);
    expect(verdict({ ...base, roundPcts: [-95, -95, -95], minSamples: 99 }).why).toMatch(/n=99 < 100/);
    expect(
      verdict({
        ...base,
        roundPcts: [-95, -95, -95],
        listsCompleted: [
          [10, 10],
          [39, 16],
          [10, 11],
        ],
      }).why,
    ).toMatch(/×2.44/);
    expect(
      verdict({
        ...base,
        roundPcts: [-95, -95, -95],
        listsCompleted: [
          [10, 12],
          [10, 11],
          [10, 10],
        ],
      }).word,
    ).toBe("reproduced");
    expect(verdict({ ...base, roundPcts: [-95, Number.NaN, -95] }).word).toBe("inconclusive");
  });
  it("measures read work as max over min of the LIST counts", () => {
    expect(readWorkRatio([39, 16, 12])).toBeCloseTo(3.25, 9);
    expect(readWorkRatio([0, 0])).toBe(1);
    expect(readWorkRatio([0, 3])).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("claim rows", () => {
  const rounds = (b: number[], c: number[], lists: [number, number][]): SummaryRow[][] =>
    b.map((_, i) => [
      row("B", "x", "put", { p99_ms: b[i]! }),
      row("C", "x", "put", { p99_ms: c[i]! }),
      row("B", "x", "list", { count: lists[i]![0] }),
      row("C", "x", "list", { count: lists[i]![1] }),
    ]);
  const find = (verb: string) => (rows: readonly SummaryRow[], t: string) =>
    rows.find((r) => r.target === t && r.verb === verb);
  const claim = (perRound: SummaryRow[][]) =>
    comparisonClaim({
      claim: "P99",
      seedValue: "−90%",
      seedPct: -90,
      from: "B",
      to: "C",
      label: "B → C",
      metric: "tail",
      perRound,
      row: find("put"),
      lists: find("list"),
      readWork: "2 paced readers",
      client: "node",
    });

  it("gives both sides' spread, the change per round, the conditions and the verdict", () => {
    const c = claim(
      rounds(
        [100, 120, 90],
        [10, 30, 20],
        [
          [8, 8],
          [8, 8],
          [8, 8],
        ],
      ),
    );
    expect(c.measured_value).toBe(
      "100 ms (P99) (90–120, 3 rounds) → 20 ms (P99) (10–30, 3 rounds): −77.8% (−90.0% to −75.0%)",
    );
    expect(c.conditions).toContain("n ≥ 1000 per cell and round; 3 round(s); client node");
    expect(c.conditions).toContain("LISTs completed per round B 8/8/8, C 8/8/8");
    expect(c.verdict).toBe("reproduced: every round reaches −45.0% (half the seed's change)");
  });

  it("is inconclusive when the compared cells served unequal LIST counts", () => {
    expect(
      claim(
        rounds(
          [100, 120, 90],
          [10, 30, 20],
          [
            [39, 16],
            [8, 8],
            [8, 8],
          ],
        ),
      ).verdict,
    ).toMatch(/^inconclusive: read work/);
  });

  it("counts only LISTs that returned without an error as read work done", () => {
    const perRound = rounds(
      [100, 120, 90],
      [10, 30, 20],
      [
        [8, 8],
        [8, 8],
        [8, 8],
      ],
    );
    perRound[0]![3] = row("C", "x", "list", { count: 8, errors: 4 });
    expect(claim(perRound).verdict).toBe("inconclusive: read work differs ×2.00 between targets");
  });

  it("notes closed-loop LIST counts that differ by more than 20%", () => {
    const perRound = [
      [row("B", "x", "list", { count: 39 }), row("C", "x", "list", { count: 16 })],
      [row("B", "x", "list", { count: 10 }), row("C", "x", "list", { count: 11 })],
    ];
    expect(closedLoopNote(perRound, ["B", "C"], find("list"))).toBe(
      "closed-loop LIST counts differ by more than 20% between targets: round 1: B 39, C 16 (×2.44)",
    );
    expect(closedLoopNote([perRound[1]!], ["B", "C"], find("list"))).toBe("");
  });
});
