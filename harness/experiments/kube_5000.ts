// `npm run bench -- kube-5000` (the default): the scaled 5000-node trace (workloads/kube_5000.ts) replayed
// against each target; the headline is the P99 of POST clusterrolebindings during the LIST-pods storm versus
// after it, beside the seed's −97.4% (etcd 3.3-style blocking reads → 3.4 concurrent reads, 993 → 25.4 ms in
// the 5k GCE test). etcd-ts targets run the compiled etcd-ts server (dist/) in each read mode; what it does
// not serve yet (e.g. leases) shows up as errors by code, never hidden.
import { generateKube5000, KUBE_5000_DEFAULTS } from "../../workloads/kube_5000.js";
import { traceDigest } from "../../workloads/trace.js";
import { renderReport } from "../report.js";
import { replayTrace } from "../replay.js";
import { runDir, writeResults, type ClaimRow } from "../results.js";
import { envTargets, forEachTarget, num, parseArgs, pct, printTable, type TargetRun } from "./common.js";

const SEED_CLAIM = "P99 POST clusterrolebindings during LIST pods, blocking → concurrent reads";
const SEED_VALUE = "−97.4% (993 → 25.4 ms, 5k-node GCE test, etcd-io/etcd#10523)";
export const DEFAULT_TARGETS = ["etcd-ts:blocking", "etcd-ts:concurrent", "etcd"];

function claims(runs: readonly TargetRun[], rows: ReturnType<typeof writeResults>): ClaimRow[] {
  const p99 = (target: string, phase: string): number | undefined =>
    rows.find((r) => r.target === target && r.phase === phase && r.verb === "create" && r.resource === "clusterrolebindings")?.p99_ms;
  const out: ClaimRow[] = runs.map((r) => {
    if (!r.available) return { claim: SEED_CLAIM, seed_value: SEED_VALUE, target: r.name, measured_value: "not yet available", note: r.reason ?? "" };
    const storm = p99(r.name, "storm"), steady = p99(r.name, "steady");
    return {
      claim: "P99 POST clusterrolebindings: storm (looping LIST pods) vs steady", seed_value: "(context for the claim above)", target: r.name,
      measured_value: `storm ${storm ?? "-"} ms, steady ${steady ?? "-"} ms (steady→storm ${storm !== undefined && steady !== undefined ? pct(steady, storm) : "n/a"})`,
      note: "one target alone cannot show blocking → concurrent; this is its cost of the LIST storm",
    };
  });
  const blocking = runs.find((r) => r.name === "etcd-ts-blocking"), concurrent = runs.find((r) => r.name === "etcd-ts-concurrent");
  const b = p99("etcd-ts-blocking", "storm"), c = p99("etcd-ts-concurrent", "storm");
  out.push({
    claim: SEED_CLAIM, seed_value: SEED_VALUE, target: "etcd-ts blocking → concurrent",
    measured_value: blocking?.available === true && concurrent?.available === true && b !== undefined && c !== undefined ? `${b} → ${c} ms (${pct(b, c)})` : "not yet available",
    note: "needs both etcd-ts read modes",
  });
  return out;
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const opts = {
    seed: num(args, "seed", KUBE_5000_DEFAULTS.seed), scale: num(args, "scale", KUBE_5000_DEFAULTS.scale),
    stormSeconds: num(args, "storm", KUBE_5000_DEFAULTS.stormSeconds), steadySeconds: num(args, "steady", KUBE_5000_DEFAULTS.steadySeconds),
    listers: num(args, "listers", KUBE_5000_DEFAULTS.listers), victimPerSecond: num(args, "victim-rate", KUBE_5000_DEFAULTS.victimPerSecond),
    ...(args.has("list-page") ? { listPage: num(args, "list-page", 500) } : {}),
  };
  const trace = generateKube5000(opts);
  const digest = traceDigest(trace);
  const targets = (args.get("targets") ?? DEFAULT_TARGETS.join(",")).split(",");
  const dir = runDir("kube-5000", args.get("results"));
  const startedAt = new Date().toISOString();
  const runs = await forEachTarget(targets, (client, rec, name) =>
    replayTrace(client, trace, rec, {
      speed: num(args, "speed", 1), compactEverySeconds: num(args, "compact-every", 60), label: name,
      ...(args.get("offload-lists") === "false" ? {} : { offloadLists: client.connection.endpointList() }),
    }));
  const recorders = runs.flatMap((r) => (r.recorder === undefined ? [] : [r.recorder]));
  const env = {
    experiment: "kube-5000", startedAt, args: argv, seed: opts.seed, traceDigest: digest, generator: trace.header, targets: envTargets(runs),
    focus: [{ verb: "create", resource: "clusterrolebindings" }, { verb: "list", resource: "pods" }, { verb: "update", resource: "leases" }],
    references: [
      { label: "5k GCE, before #10523: POST clusterrolebindings P99 during LIST pods", p99Ms: 993 },
      { label: "5k GCE, with #10523: POST clusterrolebindings P99 during LIST pods", p99Ms: 25.4 },
    ],
    notes: [
      `Time-compressed: a ${opts.stormSeconds} s LIST storm and ${opts.steadySeconds} s steady phase at scale ${opts.scale} (${trace.header?.["nodes"] as number} nodes); --storm/--steady/--scale change it (defaults 30/30/0.1 keep three targets near 5 minutes).`,
      "Client and server share the machine's cores; LISTs run in a worker thread of the client (its own connection) so their decoding does not delay the measured writes; env.json records the replayer's event-loop delay P99 per target.",
      ...runs.filter((r) => !r.available).map((r) => `${r.name}: not yet available — ${r.reason ?? ""}`),
    ],
  };
  const rows = writeResults(dir, recorders, [], env);
  writeResults(dir, recorders, claims(runs, rows), env);
  printTable(rows.filter((r) => ["clusterrolebindings", "pods", "leases"].includes(r.resource)));
  return renderReport(dir);
}
