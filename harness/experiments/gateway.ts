// `npm run bench -- gateway`: HTTP load with autocannon against each target's JSON gateway (etcd's grpc-gateway
// at /v3/kv/range and /v3/kv/put, base64 keys and values). autocannon is closed-loop per connection, so these
// latencies are service times (coordinated omission applies); the trace replays are the open-loop measurement.
import autocannon, { type Result } from "autocannon";
import type { SummaryRow } from "../metrics.js";
import { renderReport } from "../report.js";
import { runDir, writeResults } from "../results.js";
import { envTargets, forEachTarget, num, parseArgs, printTable } from "./common.js";

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

function row(target: string, verb: string, r: Result): SummaryRow {
  return {
    target,
    phase: "gateway",
    verb,
    resource: "kv",
    count: r.requests.total,
    errors: r.errors + r.timeouts + r.non2xx,
    conflicts: 0,
    bytes: 0,
    throughput_per_s: Math.round(r.requests.average * 100) / 100,
    p50_ms: r.latency.p50,
    p90_ms: r.latency.p90,
    p99_ms: r.latency.p99,
    p999_ms: r.latency.p99_9,
    max_ms: r.latency.max,
    p99_service_ms: r.latency.p99,
    errors_by_code: [
      r.errors > 0 ? `HTTP_ERROR:${r.errors}` : "",
      r.timeouts > 0 ? `TIMEOUT:${r.timeouts}` : "",
      r.non2xx > 0 ? `NON_2XX:${r.non2xx}` : "",
    ]
      .filter((s) => s !== "")
      .join(" "),
  };
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const seconds = num(args, "seconds", 5),
    connections = num(args, "connections", 32);
  const targets = (args.get("targets") ?? "etcd-ts:blocking,etcd-ts:concurrent,etcd").split(",");
  const dir = runDir("gateway", args.get("results"));
  const startedAt = new Date().toISOString();
  const rows: SummaryRow[] = [];
  const runs = await forEachTarget(targets, async (client, _rec, name) => {
    await client.put("/gw/key", "x".repeat(256));
    const base = `http://${client.connection.endpointList()[0]!}`;
    const headers = { "content-type": "application/json" };
    const range = await autocannon({
      url: `${base}/v3/kv/range`,
      method: "POST",
      headers,
      body: JSON.stringify({ key: b64("/gw/key") }),
      connections,
      duration: seconds,
    });
    rows.push(row(name, "range", range));
    const put = await autocannon({
      url: `${base}/v3/kv/put`,
      method: "POST",
      headers,
      body: JSON.stringify({ key: b64("/gw/put"), value: b64("v".repeat(256)) }),
      connections,
      duration: seconds,
    });
    rows.push(row(name, "put", put));
  });
  const env = {
    experiment: "gateway",
    startedAt,
    args: argv,
    targets: envTargets(runs),
    focus: [
      { verb: "range", resource: "kv" },
      { verb: "put", resource: "kv" },
    ],
    notes: [
      `autocannon, ${connections} connections, ${seconds} s per endpoint; closed-loop (service time).`,
      ...runs.filter((r) => !r.available).map((r) => `${r.name}: not yet available — ${r.reason ?? ""}`),
    ],
  };
  writeResults(dir, [], [], env, undefined, rows);
  printTable(rows);
  return renderReport(dir);
}
