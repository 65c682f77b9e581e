// Proves the robustness suite end to end on real processes: 3-member clusters of etcd-ts (two seeds) and of real
// etcd 3.4 (one seed) run the seeded Kubernetes-like workload and watches for ~20 s under the full fault
// schedule (kill -9, SIGSTOP, partitions and one-way drops through the peer proxy, restarts, defragment); the
// recorded history must pass every check, and must show that work and faults really happened. A failing run
// keeps its history file (path in the message) for `npm run robustness -- --check FILE`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkHistory, formatReport } from "../../harness/robustness/check.js";
import { FAULTS } from "../../harness/robustness/faults.js";
import { readHistory } from "../../harness/robustness/history.js";
import { runOnce } from "../../harness/robustness/run.js";
import { etcdBinaryVersion } from "../../harness/targets/etcd_process.js";
import type { ClusterKind } from "../../harness/targets/make.js";

async function runAndCheck(target: ClusterKind, seed: number, durationMs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "robustness-"));
  const path = await runOnce({
    target,
    members: 3,
    seed,
    durationMs,
    faults: [...FAULTS],
    mix: "kube",
    clients: 4,
    watches: 3,
    dir,
  });
  const h = readHistory(path);
  const report = checkHistory(h);
  expect(report.violations, `${formatReport(report)}\nhistory kept at ${path}`).toEqual([]);
  expect(report.counts.okOps).toBeGreaterThan(300);
  expect(report.counts.watchEvents).toBeGreaterThan(300);
  expect(h.faults.filter((f) => f.error === undefined).length).toBeGreaterThanOrEqual(3);
  expect(h.finals.length).toBe(3);
  rmSync(dir, { recursive: true, force: true });
}

describe("robustness suite on etcd-ts, 3 members, faults", () => {
  for (const seed of [1, 2]) it(`seed ${seed}`, () => runAndCheck("etcd-ts", seed, 20_000), 120_000);
});

describe.skipIf(etcdBinaryVersion() === undefined)("robustness suite on real etcd 3.4, 3 members, faults", () => {
  it("seed 1", () => runAndCheck("etcd", 1, 20_000), 120_000);
});
