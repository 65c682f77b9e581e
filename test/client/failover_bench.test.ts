// Proves `npm run bench -- failover` runs its scenario with both clients, ours and the `etcd3` npm package, on a
// real 3-member etcd: one kill each, and per client a kill row (victim, recovery) and a run row (puts applied twice,
// watch events expected/lost/repeated) land in the CSVs. What etcd3 does is recorded by the benchmark, not
// asserted here; for our client the guarantees are asserted by failover.test.ts, and checked here again
// from the CSV: no put applied twice, no watch event lost or repeated.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../harness/experiments/failover.js";
import { parseCsv } from "../../harness/results.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("failover benchmark", () => {
  it("one kill per client, plain: both clients' rows are written", async () => {
    const dir = await run([
      "--kills",
      "1",
      "--before-s",
      "0.5",
      "--after-s",
      "1",
      "--modes",
      "plain",
      "--overhead-calls",
      "20",
      "--workers",
      "2",
    ]);
    dirs.push(dir);
    const kills = parseCsv(readFileSync(join(dir, "failover.csv"), "utf8"));
    const runs = parseCsv(readFileSync(join(dir, "failover_runs.csv"), "utf8"));
    const overhead = parseCsv(readFileSync(join(dir, "overhead.csv"), "utf8"));
    expect(
      kills.map((k) => k["client"]),
      "a kill row per client",
    ).toEqual(["EtcdClient", "etcd3"]);
    expect(
      runs.map((r) => r["client"]),
      "a run row per client",
    ).toEqual(["EtcdClient", "etcd3"]);
    expect(
      overhead.map((o) => o["path"]),
      "overhead paths",
    ).toEqual(["raw grpc-js", "EtcdClient", "etcd3"]);
    for (const r of runs) expect(Number(r["watch_expected"]), `${r["client"]}: the workers wrote`).toBeGreaterThan(0);
    const ours = runs.find((r) => r["client"] === "EtcdClient")!;
    expect(ours["puts_applied_twice"], "EtcdClient never sends a put twice").toBe("0");
    expect([ours["watch_lost"], ours["watch_duplicated"]], "EtcdClient's watch: lost, repeated").toEqual(["0", "0"]);
  });
});
