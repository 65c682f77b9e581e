// Proves the report shows the comparison's new columns from the results files alone: the claims table's
// conditions and verdict, the per-cell table of writes beside the LISTs served (count, bytes, P50, tail with
// "max" when n < 100), the spread over rounds, and the client that ran.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Recorder, summarise } from "../../harness/metrics.js";
import { renderReport } from "../../harness/report.js";
import { writeRoundFiles } from "../../harness/rounds.js";
import { writeResults } from "../../harness/results.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function round(k: number): Recorder {
  const rec = new Recorder("etcd");
  for (let i = 0; i < 200; i++)
    rec.record("lists=2 paced", "put", "kv", { intendedS: i / 100, sentS: i / 100, doneS: i / 100 + (1 + k) / 1000 });
  for (let i = 0; i < 6; i++)
    rec.record(
      "lists=2 paced",
      "list",
      "pods",
      { intendedS: i / 3, sentS: i / 3, doneS: i / 3 + 0.05 * (i + 1) },
      { bytes: 4_000_000 },
    );
  return rec;
}

describe("report columns", () => {
  it("renders conditions, verdict, read work per cell, spread and client", () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-report-"));
    dirs.push(dir);
    const recs = [round(0), round(1), round(2)];
    const claims = [
      {
        claim: "P99",
        seed_value: "−90%",
        target: "a → b",
        measured_value: "x",
        conditions: "2 readers paced; n ≥ 200",
        verdict: "inconclusive: 1 round(s)",
        note: "",
      },
    ];
    const env = {
      experiment: "unit",
      startedAt: "t",
      args: [],
      targets: [],
      client: "perfkit (/x)",
      readWork: { write: { verb: "put", resource: "kv" }, list: { verb: "list", resource: "pods" } },
    };
    writeResults(dir, [recs[0]!], claims, env);
    writeRoundFiles(
      dir,
      recs.map((r) => summarise(r)),
    );
    const html = readFileSync(renderReport(dir), "utf8");
    expect(html).toContain("<th>conditions</th><th>verdict</th>");
    expect(html).toContain("<td>inconclusive: 1 round(s)</td>");
    expect(html).toContain("Writes and read work per cell");
    expect(html, "6 LISTs: a max, not a P99").toMatch(
      /<td>6<\/td><td>24\.0<\/td><td>[0-9.]+<\/td><td>max 300(\.\d+)?<\/td>/,
    );
    expect(html, "200 puts: a P99").toMatch(/<td>p99 [0-9.]+<\/td>/);
    expect(html).toContain("Spread over rounds");
    expect(html).toContain("client perfkit (/x)");
  });
});
