// Proves the metrics listener (--listen-metrics-urls) answers as real etcd 3.4's does: /health with the same
// status and body, /metrics in Prometheus text whose every metric etcd-ts exports is one real etcd exports too,
// with the same type, and unknown paths with etcd's 404 text. Both servers are started the same way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, haveEtcd, startServer, type RunningServer } from "./processes.js";

const HAVE = haveEtcd();

interface Pair {
  readonly server: RunningServer;
  readonly metricsUrl: string;
}

async function startWithMetrics(kind: "etcd" | "etcd-ts"): Promise<Pair> {
  const metricsUrl = `http://127.0.0.1:${await freePort()}`;
  return { server: await startServer(kind, ["--listen-metrics-urls", metricsUrl]), metricsUrl };
}

/** metric name → type, from Prometheus text. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] ?? "", m[2] ?? "");
  return out;
}

describe.runIf(HAVE)("metrics listener against real etcd", () => {
  const pairs: Pair[] = [];
  beforeAll(async () => {
    pairs.push(...(await Promise.all([startWithMetrics("etcd"), startWithMetrics("etcd-ts")])));
  });
  afterAll(async () => {
    await Promise.all(pairs.map((p) => p.server.stop()));
  });

  it("/health answers the same", async () => {
    const [theirs, ours] = await Promise.all(pairs.map((p) => fetch(`${p.metricsUrl}/health`)));
    expect(ours?.status).toBe(theirs?.status);
    expect(await ours?.text()).toBe(await theirs?.text());
    expect(theirs?.status).toBe(200);
  });

  it("/metrics exports only etcd's metric names, with etcd's types and live values", async () => {
    const [theirs, ours] = await Promise.all(pairs.map(async (p) => (await fetch(`${p.metricsUrl}/metrics`)).text()));
    const theirTypes = types(theirs ?? "");
    const ourTypes = types(ours ?? "");
    expect(ourTypes.size).toBeGreaterThanOrEqual(8);
    for (const [name, type] of ourTypes) expect({ name, type: theirTypes.get(name) }).toEqual({ name, type });
    expect(ours).toMatch(/^etcd_server_has_leader 1$/m);
    expect(ours).toMatch(/^etcd_server_is_leader 1$/m);
    // Live values: the member committed entries (one WAL fsync at least), and etcdctl's MemberList was counted
    // with go-grpc-prometheus's labels, which real etcd shows for the same call.
    expect(Number(/^etcd_disk_wal_fsync_duration_seconds_count (\d+)$/m.exec(ours ?? "")?.[1] ?? 0)).toBeGreaterThan(0);
    const memberList =
      /^grpc_server_handled_total\{grpc_code="OK",grpc_method="MemberList",grpc_service="etcdserverpb.Cluster",grpc_type="unary"\} (\d+)$/m;
    expect(Number(memberList.exec(ours ?? "")?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(theirs).toMatch(memberList);
  });

  it("an unknown path is a 404 as in etcd", async () => {
    const [theirs, ours] = await Promise.all(pairs.map((p) => fetch(`${p.metricsUrl}/nope`)));
    expect(ours?.status).toBe(404);
    expect(theirs?.status).toBe(404);
    expect(await ours?.text()).toBe(await theirs?.text());
  });
});
