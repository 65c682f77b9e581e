// Proves `npm run bench -- cluster --quick` end to end: a real etcd 3-member cluster (and the etcd-ts one when it
// can start) is measured on every setting — puts spread over the members and on the leader, linearizable and
// serializable gets on a follower — with positive throughput/P50/P99 and no errors in cluster.csv; ratios.csv
// holds etcd-ts-3 / etcd-3 when both ran; a cluster that cannot run is "not measured" with its reason in env.json
// and report.md, never a number. Also that slotPlan pins every in-flight slot to a member round-robin.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { slotPlan } from "../../harness/experiments/cluster_load.js";
import { readCsv } from "../../harness/results.js";

const root = mkdtempSync(join(tmpdir(), "etcd-ts-cluster-bench-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BENCH = resolve("dist/harness/bench.js");
const METRICS = ["put_spread", "put_leader", "get_linearizable_follower", "get_serializable_follower"].flatMap((m) => [
  `${m}_throughput_c64`,
  `${m}_p50_c64`,
  `${m}_p99_c64`,
]);

interface EnvTarget {
  readonly name: string;
  readonly available: boolean;
  readonly reason?: string;
}

describe("cluster benchmark, quick mode", () => {
  it("spreads in-flight slots over workers and members round-robin", () => {
    const plan = slotPlan(64, 2, 3);
    expect(
      plan.map((p) => p.length),
      "64 slots over 2 workers",
    ).toEqual([32, 32]);
    const perMember = [0, 1, 2].map((m) => plan.flat().filter((e) => e === m).length);
    expect(perMember, "slots per member (64 over 3)").toEqual([22, 21, 21]);
    expect(slotPlan(1, 2, 3), "one slot uses one worker, member 0").toEqual([[0]]);
    expect(() => slotPlan(0, 2, 3)).toThrow(/0 slots/);
  });

  it("measures every setting on real etcd, and etcd-ts or the reason it was not measured", async () => {
    expect(existsSync(BENCH), `${BENCH} missing: run npm run build first`).toBe(true);
    const args = [
      BENCH,
      "cluster",
      "--quick",
      "--seconds",
      "0.4",
      "--warmup",
      "0.1",
      "--targets",
      "etcd,etcd-ts",
      "--results",
      root,
    ];
    const { stdout } = await promisify(execFile)(process.execPath, args, {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 85_000,
    });
    expect(stdout, "stdout carries the report").toContain("# cluster benchmark");
    const [run] = readdirSync(root);
    expect(run, "one run directory").toMatch(/-cluster$/);
    const dir = join(root, run!);
    const env = JSON.parse(readFileSync(join(dir, "env.json"), "utf8")) as { command: string; targets: EnvTarget[] };
    expect(env.command, "env.json says how to run it again").toContain("npm run bench -- cluster --quick");
    const etcd = env.targets.find((t) => t.name === "etcd-3"),
      ts = env.targets.find((t) => t.name === "etcd-ts-3");
    expect(etcd?.available, `etcd-3 measured (${etcd?.reason ?? ""})`).toBe(true);
    expect(ts, "etcd-ts-3 listed in env.json").toBeDefined();
    const rows = readCsv(join(dir, "cluster.csv"));
    const measured = ts?.available === true ? ["etcd-3", "etcd-ts-3"] : ["etcd-3"];
    for (const target of measured) {
      for (const metric of METRICS) {
        const row = rows.find((r) => r["target"] === target && r["metric"] === metric);
        expect(row, `${target} ${metric} row (${rows.length} rows)`).toBeDefined();
        expect(Number(row!["value"]), `${target} ${metric} value`).toBeGreaterThan(0);
        expect(row!["errors"], `${target} ${metric} errors: ${row!["errors_by_code"]}`).toBe("0");
      }
    }
    const report = readFileSync(join(dir, "report.md"), "utf8");
    const ratios = readCsv(join(dir, "ratios.csv"));
    if (ts?.available === true) {
      for (const metric of METRICS) {
        const r = ratios.find((x) => x["target"] === "etcd-ts-3" && x["metric"] === metric);
        expect(Number(r?.["ratio"]), `${metric} ratio (${r?.["value"]} / ${r?.["etcd_value"]})`).toBeCloseTo(
          Number(r?.["value"]) / Number(r?.["etcd_value"]),
          2,
        );
      }
    } else {
      expect(ts?.reason ?? "", "the reason etcd-ts was not measured").not.toBe("");
      expect(rows.filter((r) => r["target"] === "etcd-ts-3").length, "no etcd-ts numbers when it did not run").toBe(0);
      expect(ratios.length, "no ratios without etcd-ts").toBe(0);
      expect(report, "report.md says etcd-ts was not measured").toContain("etcd-ts-3: not measured");
    }
  }, 90_000); // ~20 s on an idle machine; the margin is for a loaded one (37 s at load 15)
});
