// Proves the harness end to end on a tiny hand-written trace against real etcd 3.4: preload is not measured,
// every measured op lands in summary.csv with the right count and no errors, a client op (looping or paced)
// that cannot start before its `until` is skipped and counted, LISTs report their bytes, watches see the
// writes, and report.html is one self-contained file that `renderReport` rebuilds identically from the CSVs. Also proves latency is measured from the intended send
// time: a sequential caller stuck behind a stalled server gets that stall in every later op's latency.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { Recorder, summarise } from "../../harness/metrics.js";
import { renderReport } from "../../harness/report.js";
import { replayTrace } from "../../harness/replay.js";
import { readCsv, writeResults } from "../../harness/results.js";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";
import type { TraceOp } from "../../workloads/trace.js";

let etcd: EtcdProcess;
let client: EtcdClient;
const dirs: string[] = [];

beforeAll(async () => {
  process.env["ETCD_TS_BENCH_QUIET"] = "1";
  etcd = new EtcdProcess();
  await etcd.start();
  client = new EtcdClient({ endpoints: etcd.endpoints() });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tinyTrace(): TraceOp[] {
  const ops: TraceOp[] = [];
  for (let i = 0; i < 20; i++)
    ops.push({ t: 0, verb: "create", resource: "pods", ns: "a", name: `p${i}`, size: 1390, phase: "preload" });
  ops.push({ t: 0, verb: "watch", resource: "pods", duration: 5, phase: "run" });
  for (let i = 0; i < 10; i++)
    ops.push({ t: 0.02 * i, verb: "create", resource: "clusterrolebindings", name: `b${i}`, size: 500, phase: "run" });
  for (let i = 0; i < 5; i++)
    ops.push({ t: 0.2 + 0.01 * i, verb: "update", resource: "pods", ns: "a", name: `p${i}`, size: 1400, phase: "run" });
  ops.push(
    { t: 0.3, verb: "list", resource: "pods", phase: "run" },
    { t: 0.3, verb: "list", resource: "pods", ns: "a", limit: 7, phase: "run" },
  );
  ops.push({ t: 0.31, verb: "get", resource: "pods", ns: "a", name: "missing", phase: "run" });
  ops.push({ t: 0.32, verb: "list", resource: "pods", rv: "0", phase: "run" });
  ops.push({ t: 0.35, verb: "delete", resource: "clusterrolebindings", name: "b0", phase: "run" });
  ops.push({ t: 0.4, verb: "list", resource: "pods", client: "lister", until: 0.35, phase: "run" });
  // Paced callers: one runs; one is due after its `until`, so it can never start and is skipped.
  ops.push({ t: 0.36, verb: "list", resource: "pods", client: "paced-1", inFlight: 1, until: 30, phase: "run" });
  ops.push({ t: 0.41, verb: "list", resource: "pods", client: "paced-2", inFlight: 1, until: 0.4, phase: "run" });
  return ops;
}

describe("end-to-end smoke run against real etcd", () => {
  it("replays a tiny trace and writes CSVs and a self-contained report", async () => {
    const rec = new Recorder("etcd");
    const res = await replayTrace(client, { header: undefined, ops: tinyTrace() }, rec, { label: "smoke" });
    expect([res.preloaded, res.preloadErrors, res.skipped, res.pacedSkipped, res.cacheServed]).toEqual([
      20, 0, 1, 1, 1,
    ]);
    expect(res.watchEvents, "5 updates seen by the pods watch").toBe(5);
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-smoke-"));
    dirs.push(dir);
    writeResults(dir, [rec], [], { experiment: "smoke", startedAt: "t", args: [], targets: [] });
    const rows = readCsv(join(dir, "summary.csv"));
    const count = (verb: string, resource: string): string | undefined =>
      rows.find((r) => r["verb"] === verb && r["resource"] === resource)?.["count"];
    expect(
      rows.every((r) => r["phase"] === "run"),
      "preload is not measured",
    ).toBe(true);
    expect(
      rows.every((r) => r["errors"] === "0"),
      JSON.stringify(rows.map((r) => r["errors_by_code"])),
    ).toBe(true);
    expect([
      count("create", "clusterrolebindings"),
      count("update", "pods"),
      count("list", "pods"),
      count("list-ns-paged", "pods"),
    ]).toEqual(["10", "5", "2", "1"]);
    expect([count("get", "pods"), count("delete", "clusterrolebindings"), count("watch", "pods")]).toEqual([
      "1",
      "1",
      "1",
    ]);
    expect(rows.length).toBe(7);
    const bytes = (verb: string): number =>
      Number(rows.find((r) => r["verb"] === verb && r["resource"] === "pods")?.["bytes"]);
    expect(bytes("list"), "a LIST of 20 pods of 1,390 B reports its response bytes").toBeGreaterThan(20 * 1390);
    expect(bytes("list-ns-paged"), "paged LIST (limit 7) sums its pages' bytes").toBeGreaterThan(20 * 1390);
    const out = renderReport(dir);
    const html = readFileSync(out, "utf8");
    expect((html.match(/<svg/g) ?? []).length, "bar chart, CDFs and timeline").toBeGreaterThanOrEqual(3);
    expect(html).not.toMatch(/<script|\ssrc=|\shref=|<link/);
    renderReport(dir);
    expect(readFileSync(out, "utf8"), "rebuilt from the CSVs alone").toBe(html);
  });
});

describe("coordinated omission", () => {
  it("sends on schedule while the server stalls, and counts the stall from the intended send time", async () => {
    // The stub server holds its first request until all five have arrived: a sender that waited for responses
    // before sending the next op would never get there (the test would time out).
    let calls = 0;
    let release!: () => void;
    const allSent = new Promise<void>((r) => (release = r));
    const stub = {
      txn: async () => {
        calls++;
        if (calls === 5) release();
        if (calls === 1) await allSent;
        return { header: { revision: 1n }, succeeded: true, responses: [] };
      },
    };
    const ops: TraceOp[] = [0, 0.05, 0.1, 0.15, 0.2].map((t, i) => ({
      t,
      verb: "create",
      resource: "x",
      name: `n${i}`,
      phase: "run",
    }));
    const rec = new Recorder("stub");
    await replayTrace(stub as unknown as EtcdClient, { header: undefined, ops }, rec);
    const row = summarise(rec)[0]!;
    expect(row.count).toBe(5);
    // The sender fires up to 1 ms early (it does not sleep for < 1 ms), and HdrHistogram rounds by 0.1%.
    expect(row.max_ms, "op 0 (intended at 0 ms) completes only after op 4 was sent at ~200 ms").toBeGreaterThanOrEqual(
      198,
    );
  });
});
