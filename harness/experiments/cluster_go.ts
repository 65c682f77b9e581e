// The cluster benchmark's Go-client rows: perfkit (etcd's clientv3, the client kube-apiserver uses) runs each
// setting — puts spread over the members, puts on the leader, gets on a follower — against a running 3-member
// cluster; the rows carry a `go_` metric prefix beside the Node generator's. The members' CPU over the run / its
// ops is the work per request.
import { readFileSync } from "node:fs";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { field, runPerfkit, type Perfkit } from "./perfkit.js";
import { round } from "./cluster_common.js";

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux x86-64
/** What `perfkit put --key-size=8 --key-space-size=1` writes: the key the get settings read. */
const GO_GET_KEY = "/bench/0";

export type GoEndpoints = "all" | "leader" | "follower";

export interface GoClusterRow {
  target: string;
  metric: string;
  clients: number;
  value: number;
  unit: string;
  better: "higher" | "lower";
  endpoints: string;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  errors_by_code: string;
  server_cores: number | "";
  server_us_per_op: number | "";
  generator_max_thread_busy: number;
}

function cpuSecondsOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S;
  }
  return total;
}

/** Writes the key the get settings read (once per cluster, before the settings). */
export async function seedGoGetKey(pk: Perfkit, cluster: EtcdCluster): Promise<void> {
  await runPerfkit(pk, [
    "put",
    `--endpoints=${cluster.endpoints().join(",")}`,
    "--total=1",
    "--key-size=8",
    "--key-space-size=1",
    "--val-size=256",
  ]);
}

/** One setting with perfkit: `total` requests from `clients` goroutines over as many connections (up to 64). */
export async function goMeasure(
  pk: Perfkit,
  name: string,
  cluster: EtcdCluster,
  metric: string,
  kind: "put" | "get-linearizable" | "get-serializable",
  endpoints: GoEndpoints,
  clients: number,
  total: number,
): Promise<GoClusterRow[]> {
  const members = cluster.endpoints();
  let eps = members;
  if (endpoints === "follower") {
    const leader = await cluster.leaderIndex();
    if (leader < 0) throw new Error(`${name}: no member reports a leader`);
    eps = [cluster.endpoint((leader + 1) % members.length)];
  }
  const common = [
    `--endpoints=${eps.join(",")}`,
    `--conns=${Math.min(clients, 64)}`,
    `--clients=${clients}`,
    `--total=${total}`,
  ];
  const args =
    kind === "put"
      ? [
          "put",
          ...common,
          "--key-size=64",
          "--val-size=256",
          "--key-space-size=100000",
          ...(endpoints === "leader" ? ["--target-leader"] : []),
        ]
      : ["range", ...common, `--key=${GO_GET_KEY}`, `--consistency=${kind === "get-linearizable" ? "l" : "s"}`];
  const pids = members.map((_, i) => cluster.pid(i)).filter((p): p is number => p !== undefined);
  console.error(`${name} (go): ${metric}, ${clients} clients on ${endpoints}`);
  const cpu0 = cpuSecondsOf(pids);
  const r = await runPerfkit(pk, args);
  const cpuS = cpuSecondsOf(pids) - cpu0,
    ok = field(r, "ok"),
    seconds = field(r, "seconds");
  const base = {
    target: name,
    clients,
    endpoints,
    p50_ms: field(r, "p50_ms"),
    p99_ms: field(r, "p99_ms"),
    errors: field(r, "errors"),
    errors_by_code: "",
    server_cores: round(cpuS / seconds, 2),
    server_us_per_op: ok > 0 ? round((cpuS * 1e6) / ok, 1) : ("" as const),
    generator_max_thread_busy: 0,
  };
  const m = `go_${metric}`,
    c = `c${clients}`;
  return [
    { ...base, metric: `${m}_throughput_${c}`, value: field(r, "rps"), unit: "ops/s", better: "higher" },
    { ...base, metric: `${m}_p50_${c}`, value: field(r, "p50_ms"), unit: "ms", better: "lower" },
    { ...base, metric: `${m}_p99_${c}`, value: field(r, "p99_ms"), unit: "ms", better: "lower" },
    {
      ...base,
      metric: `${m}_server_cpu_${c}`,
      value: base.server_us_per_op === "" ? 0 : base.server_us_per_op,
      unit: "µs/op",
      better: "lower",
    },
  ];
}
