// Proves the measurement path on synthetic latencies: HdrHistogram percentiles within its 3-significant-digit
// precision, latency from the intended time versus service time from the actual send, phase throughput, the
// per-second timeline, errors per code, and that summary/histogram CSVs written to disk read back to the same
// numbers (including quoted fields).
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Recorder, summarise } from "../../harness/metrics.js";
import { histogramFileName, parseCsv, readCsv, writeResults } from "../../harness/results.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function synthetic(): Recorder {
  const rec = new Recorder("t1");
  // 1000 ops intended at i ms, each sent 1 ms late and done i+1 ms after its intended time → latency 1..1000 ms.
  for (let i = 1; i <= 1000; i++) {
    const intendedS = i / 1000;
    rec.record("steady", "create", "pods", { intendedS, sentS: intendedS + 0.001, doneS: intendedS + i / 1000 });
  }
  rec.record("steady", "create", "pods", { intendedS: 0.5, sentS: 0.5, doneS: 0.6 }, { errorCode: "GRPC_UNAVAILABLE" });
  rec.record("steady", "create", "pods", { intendedS: 0.5, sentS: 0.5, doneS: 0.6 }, { conflict: true });
  return rec;
}

describe("recorder and summary", () => {
  it("computes percentiles of latency-from-intended within HdrHistogram precision", () => {
    const [row] = summarise(synthetic());
    expect(row).toBeDefined();
    const close = (got: number, want: number): void =>
      expect(Math.abs(got - want) / want, `${got} vs ${want}`).toBeLessThan(0.002);
    close(row!.p50_ms, 500);
    close(row!.p90_ms, 900);
    close(row!.p99_ms, 990);
    close(row!.max_ms, 1000);
    expect(row!.p99_service_ms, "service time excludes the 1 ms send delay").toBeLessThan(row!.p99_ms);
    expect([row!.count, row!.errors, row!.conflicts]).toEqual([1002, 1, 1]);
    expect(row!.errors_by_code).toBe("GRPC_UNAVAILABLE:1");
  });

  it("derives throughput from the phase span and fills the per-second timeline", () => {
    const rec = new Recorder("t2");
    for (let i = 0; i < 300; i++)
      rec.record("p", i % 3 === 0 ? "list" : "update", "leases", {
        intendedS: i / 100,
        sentS: i / 100,
        doneS: i / 100 + 0.001,
      });
    const rows = summarise(rec);
    const update = rows.find((r) => r.verb === "update")!;
    expect(update.count).toBe(200);
    expect(Math.abs(update.throughput_per_s - 200 / 2.991), `throughput ${update.throughput_per_s}`).toBeLessThan(0.5);
    expect(rec.timeline.map((t) => t.ops)).toEqual([100, 100, 100]);
    expect(rec.timeline.map((t) => t.writes)).toEqual([66, 67, 67]);
  });
});

describe("CSV files", () => {
  it("parses quoted fields, doubled quotes and embedded commas", () => {
    expect(parseCsv('a,b\n"x, y","he said ""hi"""\n1,\n')).toEqual([
      { a: "x, y", b: 'he said "hi"' },
      { a: "1", b: "" },
    ]);
  });

  it("writes summary and per-op histogram CSVs that read back to the recorded numbers", () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-metrics-"));
    dirs.push(dir);
    const rec = synthetic();
    const claims = [
      { claim: "x, with comma", seed_value: "−97.4%", target: "t1", measured_value: "1 ms", note: 'a "quote"' },
    ];
    const rows = writeResults(dir, [rec], claims, { experiment: "unit", startedAt: "now", args: [], targets: [] });
    const back = readCsv(join(dir, "summary.csv"));
    expect(back.length).toBe(1);
    expect(Number(back[0]!["p99_ms"])).toBe(rows[0]!.p99_ms);
    expect(Number(back[0]!["count"])).toBe(1002);
    expect(readCsv(join(dir, "claims.csv"))).toEqual(claims.map((c) => ({ ...c, conditions: "", verdict: "" })));
    const files = readdirSync(join(dir, "histograms"));
    expect(files).toEqual([histogramFileName({ target: "t1", phase: "steady", verb: "create", resource: "pods" })]);
    const cdf = readCsv(join(dir, "histograms", files[0]!));
    const p99 = cdf.find((r) => r["percentile"] === "99");
    expect(Number(p99?.["latency_ms"])).toBe(rows[0]!.p99_ms);
    const pcts = cdf.map((r) => Number(r["latency_ms"]));
    for (let i = 1; i < pcts.length; i++) expect(pcts[i]! >= pcts[i - 1]!, `CDF row ${i} non-decreasing`).toBe(true);
    expect(readCsv(join(dir, "timeline.csv")).reduce((s, r) => s + Number(r["ops"]), 0)).toBe(1002);
  });
});
