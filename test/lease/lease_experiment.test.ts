// Proves `npm run bench -- lease` end to end against real etcd 3.4 with tiny numbers, so it cannot rot: every
// phase lands in summary.csv with the right counts and no errors, the mass expiry ends with every key gone,
// and claims.csv carries a measured value for each claim. Also proves a target whose Lease API fails is
// reported cleanly: its grant errors are counted by code, the later phases are skipped with the reason.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { ClientCallError, type EtcdClient } from "../../core/client/index.js";
import { GrpcStatus } from "../../core/errors.js";
import { measureTarget, run, settingsFrom, type LeaseDetail } from "../../harness/experiments/lease.js";
import { Recorder, summarise } from "../../harness/metrics.js";
import { readCsv } from "../../harness/results.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("lease experiment against real etcd", () => {
  it("measures grant, keepalive, TimeToLive during revokes and a mass expiry with tiny numbers", async () => {
    process.env["ETCD_TS_BENCH_QUIET"] = "1";
    const root = mkdtempSync(join(tmpdir(), "lease-bench-"));
    dirs.push(root);
    const out = await run([
      "--targets",
      "etcd",
      "--leases",
      "300",
      "--revoke",
      "100",
      "--expiry-leases",
      "200",
      "--seconds",
      "1",
      "--results",
      root,
    ]);
    const dir = join(out, "..");
    const rows = readCsv(join(dir, "summary.csv"));
    const row = (phase: string, verb: string): Record<string, string> | undefined =>
      rows.find((r) => r["phase"] === phase && r["verb"] === verb);
    const counts = (phase: string, verb: string): number => Number(row(phase, verb)?.["count"] ?? -1);
    expect(
      rows.every((r) => r["target"] === "etcd" && r["errors"] === "0"),
      JSON.stringify(rows.map((r) => [r["phase"], r["verb"], r["errors_by_code"]])),
    ).toBe(true);
    expect([counts("grant", "grant"), counts("grant", "put"), counts("ttl-revoking", "revoke")]).toEqual([
      300, 300, 100,
    ]);
    expect(
      [counts("expiry-grant", "grant"), counts("expiry-refresh", "keepalive")],
      "each expiring lease refreshed once",
    ).toEqual([200, 200]);
    for (const [phase, verb] of [
      ["keepalive", "keepalive"],
      ["ttl-idle", "timetolive"],
      ["ttl-revoking", "timetolive"],
      ["expiry-idle", "put"],
      ["expiry-during", "put"],
    ]) {
      expect(counts(phase!, verb!), `${phase} ${verb} ran`).toBeGreaterThan(0);
    }
    const env = JSON.parse(readFileSync(join(dir, "env.json"), "utf8")) as { targets: { detail: LeaseDetail }[] };
    const detail = env.targets[0]!.detail;
    expect([
      detail.leasesGranted,
      detail.revoked,
      detail.skipped,
      detail.expiry?.leases,
      detail.expiry?.keysLeft,
    ]).toEqual([300, 100, undefined, 200, 0]);
    expect(detail.expiry?.allGoneAfterLastExpiryS, "every expiring key gone").toBeGreaterThanOrEqual(0);
    const claims = readCsv(join(dir, "claims.csv"));
    expect(claims.length, "six claims for etcd").toBe(6);
    const unmeasured = claims.filter((c) => /not measured|not available|keys left/.test(c["measured_value"] ?? ""));
    // Memory needs etcd's /metrics on the client URL, which etcd 3.4 serves.
    expect(
      unmeasured.map((c) => c["claim"]),
      JSON.stringify(claims),
    ).toEqual([]);
  });
});

describe("a target whose Lease API fails", () => {
  it("counts the grant errors by code and skips the later phases with the reason", async () => {
    let calls = 0;
    const stub = {
      connection: { service: () => ({ endpoint: "127.0.0.1:9" }) },
      leaseGrant: async () => {
        calls++;
        throw new ClientCallError(GrpcStatus.UNIMPLEMENTED, "unknown service etcdserverpb.Lease", "127.0.0.1:9");
      },
    } as unknown as EtcdClient;
    const rec = new Recorder("etcd-ts-concurrent");
    const s = settingsFrom(
      new Map([
        ["leases", "1000"],
        ["seconds", "1"],
      ]),
    );
    const d = await measureTarget(stub, rec, s);
    expect(d.leasesGranted).toBe(0);
    expect(d.skipped).toMatch(/no lease could be granted/);
    const rows = summarise(rec);
    expect(rows.map((r) => [r.phase, r.verb, r.errors_by_code])).toEqual([
      ["grant", "grant", `GRPC_UNIMPLEMENTED:${calls}`],
    ]);
    expect(calls, "gave up after 100 failures (+ the calls already in flight)").toBeLessThanOrEqual(
      100 + s.concurrency,
    );
  });
});
