// Proves the robustness suite end to end on real processes: 3-member clusters of etcd-ts (two seeds) and of real
// etcd 3.4 (one seed) run the seeded Kubernetes-like workload and watches for ~60 s under the full fault
// schedule (kill -9, SIGSTOP, partitions and one-way drops through the peer proxy, restarts, defragment); the
// recorded history must pass every check, and must show that work and faults really happened. One more etcd-ts
// seed runs only failpoint crashes (the leader or a follower killed at a storage failpoint, then restarted): the
// faults must follow the seed's schedule, the failpoints must really have killed the members (SIGKILL, which
// the harness itself never sent in that run), and the history must pass every check. A failing run keeps its
// history file (path in the message) for `npm run robustness -- --check FILE`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkHistory, formatReport } from "../../harness/robustness/check.js";
import { FAULTS, faultSchedule, type FaultName } from "../../harness/robustness/faults.js";
import { readHistory, type History } from "../../harness/robustness/history.js";
import { runOnce } from "../../harness/robustness/run.js";
import { etcdBinaryVersion } from "../../harness/targets/etcd_process.js";
import type { ClusterKind } from "../../harness/targets/make.js";

async function runAndCheck(
  target: ClusterKind,
  seed: number,
  durationMs: number,
  faults: readonly FaultName[] = FAULTS,
): Promise<History> {
  const dir = mkdtempSync(join(tmpdir(), "robustness-"));
  const path = await runOnce({
    target,
    members: 3,
    seed,
    durationMs,
    faults,
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
  expect(h.finals.length).toBe(3);
  rmSync(dir, { recursive: true, force: true });
  return h;
}

function succeeded(h: History): number {
  return h.faults.filter((f) => f.error === undefined).length;
}

describe("robustness suite on etcd-ts, 3 members, faults", () => {
  for (const seed of [1, 2])
    it(
      `seed ${seed}`,
      async () => expect(succeeded(await runAndCheck("etcd-ts", seed, 60_000))).toBeGreaterThanOrEqual(3),
      240_000,
    );
});

describe("robustness suite on etcd-ts, 3 members, failpoint crashes", () => {
  const seed = 3;
  const faults: FaultName[] = ["failpoint-leader", "failpoint-follower"];
  it(`seed ${seed}`, async () => {
    const h = await runAndCheck("etcd-ts", seed, 20_000, faults);
    const planned = faultSchedule({ seed, faults, members: 3 }, h.faults.length);
    expect(h.faults.map((f) => [f.name, f.failpoint?.point, f.failpoint?.hit])).toEqual(
      planned.map((s) => [s.name, s.failpoint?.point, s.failpoint?.hit]),
    );
    const fired = h.faults.filter((f) => f.error === undefined);
    expect(fired.length, JSON.stringify(h.faults)).toBeGreaterThanOrEqual(2);
    for (const f of fired) expect(f.failpoint?.exit).toBe("SIGKILL");
    // A failpoint fault may run out of time (it is then disarmed), never see its member end some other way.
    for (const f of h.faults.filter((x) => x.error !== undefined)) expect(f.error).toMatch(/not reached/);
  }, 150_000);
});

describe.skipIf(etcdBinaryVersion() === undefined)("robustness suite on real etcd 3.4, 3 members, faults", () => {
  it("seed 1", async () => expect(succeeded(await runAndCheck("etcd", 1, 60_000))).toBeGreaterThanOrEqual(3), 240_000);
});
