// `npm run bench [-- <experiment> [args]]`: runs one experiment and writes its results under results/.
// Each experiment is a module exporting `run(args: string[]): Promise<string>` returning the result dir.
import { argv, exit } from "node:process";

type Experiment = { readonly describe: string; readonly load: () => Promise<{ run(args: string[]): Promise<string> }> };

const EXPERIMENTS: Record<string, Experiment> = {
  raft: {
    describe: "3-member in-memory Raft cluster: committed entries/s and messages/s (pure core, no I/O)",
    load: () => import("./micro/raft_bench.js"),
  },
  storage: {
    describe:
      "storage layer alone: put throughput, full Range of 50k×2KiB, writes under 0/1/2/4 long Ranges in both read modes",
    load: () => import("./micro/storage_bench.js"),
  },
  "kube-5000": {
    describe: "scaled 5000-node Kubernetes trace: P99 of POST clusterrolebindings during the LIST-pods storm vs after",
    load: () => import("./experiments/kube_5000.js"),
  },
  "storage-claim": {
    describe: "steady writes with 0/1/2/4 concurrent full LISTs: write throughput and P99 per setting",
    load: () => import("./experiments/storage_claim.js"),
  },
  gateway: {
    describe: "autocannon HTTP load on the JSON gateway (/v3/kv/range, /v3/kv/put) of each target",
    load: () => import("./experiments/gateway.js"),
  },
  lease: {
    describe:
      "leases over the wire: grant N with keys, keepalive throughput, TimeToLive P99 during 10k revokes, mass expiry vs put P99",
    load: () => import("./experiments/lease.js"),
  },
  failover: {
    describe:
      "3-member etcd, plain and TLS: kill -9 the client's member mid-run; time to recover, errors, P99 before/after",
    load: () => import("./experiments/failover.js"),
  },
  server: {
    describe:
      "single member: put throughput P50/P99 at 1/16/64/256 clients, linearizable/serializable gets, full-prefix get of 50k×2KiB, RSS, startup; etcd-ts / etcd",
    load: () => import("./experiments/server_bench.js"),
  },
  cluster: {
    describe:
      "3-member clusters, etcd-ts vs real etcd: puts at 64 clients spread over the members and on the leader, linearizable/serializable gets on a follower",
    load: () => import("./experiments/cluster_bench.js"),
  },
  "cluster-restart": {
    describe:
      "kill -9 and restart a follower N times under a write load: leader changes, term bumps, write unavailability per restart",
    load: () => import("./experiments/cluster_restart.js"),
  },
  "cluster-leader-failure": {
    describe:
      "kill -9 the leader N times: time to a new leader and to the first successful write through another member",
    load: () => import("./experiments/cluster_leader_failure.js"),
  },
  "cluster-prevote": {
    describe:
      "isolate a follower for 10 election timeouts, heal: leader changes and term bumps with --pre-vote=true vs false",
    load: () => import("./experiments/cluster_prevote.js"),
  },
  "cluster-learner": {
    describe:
      "add a learner to a loaded 3-member cluster (vs a voter), time to promotable; bad-URL learner add vs voter add on 1 member",
    load: () => import("./experiments/cluster_learner.js"),
  },
  security: {
    describe:
      "put throughput at 64 clients: plain, mutual TLS, auth with simple tokens; etcd-ts and real etcd, ratios to plain and to etcd",
    load: () => import("./experiments/security.js"),
  },
  replay: {
    describe: "replay --trace FILE (a trace or a Kubernetes audit log) against --targets",
    load: () => import("./experiments/replay_file.js"),
  },
};

/** The experiment `npm run bench` runs with no argument. */
const DEFAULT_EXPERIMENT = "kube-5000";

async function main(): Promise<void> {
  const given = argv.slice(2);
  // `npm run bench -- --reps 3` passes options to the default experiment.
  const [name = DEFAULT_EXPERIMENT, ...rest] =
    given[0]?.startsWith("--") === true && given[0] !== "--help" ? [DEFAULT_EXPERIMENT, ...given] : given;
  if (name === "--help" || name === "-h" || name === "list") {
    for (const [key, e] of Object.entries(EXPERIMENTS)) console.log(`${key.padEnd(16)} ${e.describe}`);
    return;
  }
  const experiment = EXPERIMENTS[name];
  if (experiment === undefined) {
    console.error(`unknown experiment ${JSON.stringify(name)}; known: ${Object.keys(EXPERIMENTS).join(", ")}`);
    exit(2);
  }
  const mod = await experiment.load();
  const dir = await mod.run(rest);
  console.log(`report: ${dir}`);
}

main().catch((err: unknown) => {
  console.error(err);
  exit(1);
});
