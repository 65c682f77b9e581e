// Proves the gateway experiment end to end against real etcd 3.4's JSON gateway: autocannon drives /v3/kv/range
// and /v3/kv/put, every request answers 2xx, and the run directory's summary.csv and report.html are written.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../harness/experiments/gateway.js";
import { readCsv } from "../../harness/results.js";

const root = mkdtempSync(join(tmpdir(), "etcd-ts-gateway-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("gateway experiment", () => {
  it("loads range and put through the JSON gateway with no errors and writes the report", async () => {
    process.env["ETCD_TS_BENCH_QUIET"] = "1";
    const report = await run(["--seconds", "1", "--connections", "4", "--targets", "etcd", "--results", root]);
    expect(existsSync(report)).toBe(true);
    const rows = readCsv(join(dirname(report), "summary.csv"));
    expect(rows.map((r) => r["verb"])).toEqual(["range", "put"]);
    for (const r of rows) {
      expect(Number(r["count"]), `${r["verb"]} requests`).toBeGreaterThan(0);
      expect(r["errors"], `${r["verb"]} errors (${r["errors_by_code"]})`).toBe("0");
    }
  });
});
