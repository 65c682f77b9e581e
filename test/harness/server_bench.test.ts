// Proves `npm run bench -- server --quick` end to end against real etcd 3.4 and the compiled etcd-ts: both
// targets start, every metric of the server benchmark (puts at 1/16/64/256 in flight, linearizable and
// serializable gets, server CPU per op, full-prefix get, RSS, startup) lands in server.csv for both with a
// positive value and no errors, and ratios.csv holds etcd-ts / etcd for each. Sane values only, never speed.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { split } from "../../harness/experiments/server_process.js";
import { readCsv } from "../../harness/results.js";

const root = mkdtempSync(join(tmpdir(), "etcd-ts-server-bench-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BENCH = resolve("dist/harness/bench.js");
const KEYS = 500;
const METRICS = [
  ...[1, 16, 64, 256].flatMap((c) => [
    `put_throughput_c${c}`,
    `put_p50_c${c}`,
    `put_p99_c${c}`,
    `put_server_cpu_c${c}`,
  ]),
  ...["get_linearizable", "get_serializable"].flatMap((g) => [
    `${g}_throughput_c64`,
    `${g}_p50_c64`,
    `${g}_p99_c64`,
    `${g}_server_cpu_c64`,
  ]),
  `range_full_p50_${KEYS}keys`,
  "rss_with_keys",
  "rss_peak",
  "startup_to_ready_median",
  "startup_to_listen_median",
];

describe("server benchmark, quick mode", () => {
  it("splits in-flight slots over the worker threads without losing any", () => {
    expect(split(1, 2), "one client uses one worker").toEqual([1]);
    expect(split(257, 2)).toEqual([129, 128]);
    expect(
      split(64, 3).reduce((a, b) => a + b, 0),
      "64 slots over 3 workers",
    ).toBe(64);
  });

  it("writes every metric for etcd-ts and etcd, with values > 0 and a ratio each", async () => {
    expect(existsSync(BENCH), `${BENCH} missing: run npm run build first`).toBe(true);
    const args = [BENCH, "server", "--quick", "--keys", String(KEYS), "--targets", "etcd-ts,etcd", "--results", root];
    const { stdout } = await promisify(execFile)(process.execPath, args, {
      env: { ...process.env, ETCD_TS_BENCH_QUIET: "1" },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 110_000,
    });
    expect(stdout, "stdout carries the table").toContain("etcd-ts-concurrent/etcd");
    const [run] = readdirSync(root);
    expect(run, "one run directory").toMatch(/-server$/);
    const rows = readCsv(join(root, run!, "server.csv"));
    for (const target of ["etcd-ts-concurrent", "etcd"]) {
      for (const metric of METRICS) {
        const row = rows.find((r) => r["target"] === target && r["metric"] === metric);
        expect(row, `${target} ${metric} row (${rows.length} rows)`).toBeDefined();
        expect(Number(row!["value"]), `${target} ${metric} value`).toBeGreaterThan(0);
        expect(row!["errors"], `${target} ${metric} errors: ${row!["errors_by_code"]}`).toBe("0");
      }
    }
    const ratios = readCsv(join(root, run!, "ratios.csv"));
    for (const metric of METRICS) {
      const r = ratios.find((x) => x["target"] === "etcd-ts-concurrent" && x["metric"] === metric);
      const expected = Number(r?.["value"]) / Number(r?.["etcd_value"]);
      expect(Number(r?.["ratio"]), `${metric} ratio (${r?.["value"]} / ${r?.["etcd_value"]})`).toBeCloseTo(expected, 2);
      expect(Number(r?.["ratio"]), `${metric} ratio`).toBeGreaterThan(0);
    }
  });
});
