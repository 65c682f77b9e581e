// `npm run bench -- kube-5000` (the default): the scaled 5000-node trace (workloads/kube_5000.ts) replayed
// against each target; the headline is the P99 of POST clusterrolebindings during the LIST-pods storm, beside
// the seed's −97.4% (etcd 3.3-style blocking reads → 3.4 concurrent reads, 993 → 25.4 ms in the 5k GCE test).
// The storm runs twice: paced (each lister starts a LIST every --list-every s, open loop, so every target
// serves the same reads; the seed claim's verdict comes from here), then looping (each lister back to back, a
// second view in which a slower target serves fewer LISTs). POSTs run at --victim-rate per second so each
// phase holds enough of them for a P99. etcd-ts targets run the compiled server (dist/) in each read mode;
// what it does not serve yet shows up as errors by code, never hidden.
import { generateKube5000, KUBE_5000_DEFAULTS, type Kube5000Options } from "../../workloads/kube_5000.js";
import { traceDigest } from "../../workloads/trace.js";
import { closedLoopNote, comparisonClaim } from "../claims.js";
import { formatTail, tailOf, type SummaryRow } from "../metrics.js";
import { renderReport } from "../report.js";
import { replayTrace } from "../replay.js";
import { formatSpread, mergeRecorders, roundSummaries, spreadOf, writeRoundFiles } from "../rounds.js";
import { runDir, writeResults, type ClaimRow } from "../results.js";
import { MIN_ROUNDS } from "../verdict.js";
import { forEachRound, num, parseArgs, printTable, roundsEnv, type TargetRun } from "./common.js";

const SEED_CLAIM = "P99 POST clusterrolebindings during LIST pods, blocking → concurrent reads";
const SEED_VALUE = "−97.4% (993 → 25.4 ms, 5k-node GCE test, etcd-io/etcd#10523)";
export const DEFAULT_TARGETS = ["etcd-ts:blocking", "etcd-ts:concurrent", "etcd"];

/**
 * The bench's own defaults (the generator's stay as they were): three 25 s phases and 45 POSTs/s, so each
 * phase holds 1,125 POST clusterrolebindings per target in about the time two 30 s phases at 1/s took.
 */
export const KUBE_BENCH_DEFAULTS = {
  stormSeconds: 25,
  closedStormSeconds: 25,
  steadySeconds: 25,
  victimPerSecond: 45,
  listEvery: 2,
  listInFlight: 2,
} as const;

const rowOf =
  (phase: string, verb: string, resource: string) =>
  (rows: readonly SummaryRow[], t: string): SummaryRow | undefined =>
    rows.find((r) => r.target === t && r.phase === phase && r.verb === verb && r.resource === resource);

function contextClaims(perRound: readonly (readonly SummaryRow[])[], runs: readonly TargetRun[]): ClaimRow[] {
  const names = [...new Set(runs.map((r) => r.name))];
  return names.map((name) => {
    const bad = runs.find((r) => r.name === name && !r.available);
    if (bad !== undefined)
      return {
        claim: SEED_CLAIM,
        seed_value: SEED_VALUE,
        target: name,
        measured_value: "not yet available",
        note: bad.reason ?? "",
      };
    const fig = (phase: string): string => {
      const rows = perRound.flatMap((rs) => {
        const r = rowOf(phase, "create", "clusterrolebindings")(rs, name);
        return r === undefined ? [] : [r];
      });
      if (rows.length === 0) return `${phase} -`;
      const tails = rows.map(tailOf);
      return rows.length === 1
        ? `${phase} ${formatTail(tails[0]!)}`
        : `${phase} ${tails.some((t) => t.label === "max") ? "max" : "p99"} ${formatSpread(spreadOf(tails.map((t) => t.ms)), "ms")}, n ≥ ${Math.min(...tails.map((t) => t.n))}`;
    };
    return {
      claim: "POST clusterrolebindings tail: paced storm, looping storm, steady",
      seed_value: "(context for the claim below)",
      target: name,
      measured_value: ["storm", "storm-closed", "steady"].map(fig).join("; "),
      note: "one target alone cannot show blocking → concurrent; this is its cost of the LIST storm",
    };
  });
}

function claims(
  perRound: readonly (readonly SummaryRow[])[],
  runs: readonly TargetRun[],
  o: Kube5000Options,
  reps: number,
): ClaimRow[] {
  const out = contextClaims(perRound, runs);
  const names = [...new Set(runs.filter((r) => r.available).map((r) => r.name))];
  const views: [string, string, string][] = [
    [
      "storm",
      `${o.listers} listers, one LIST pods every ${o.listEvery} s each (open loop, ≤ ${o.listInFlight} in flight each)`,
      "",
    ],
  ];
  if ((o.closedStormSeconds ?? 0) > 0)
    views.push(["storm-closed", `${o.listers} listers looping LIST pods (closed loop)`, " (closed-loop view)"]);
  for (const [phase, readWork, view] of views) {
    out.push(
      comparisonClaim({
        claim: SEED_CLAIM,
        seedValue: SEED_VALUE,
        seedPct: -97.4,
        from: "etcd-ts-blocking",
        to: "etcd-ts-concurrent",
        label: `etcd-ts blocking → concurrent${view}`,
        metric: "tail",
        perRound,
        row: rowOf(phase, "create", "clusterrolebindings"),
        lists: rowOf(phase, "list", "pods"),
        readWork,
        client: "node",
        note:
          phase === "storm-closed"
            ? closedLoopNote(perRound, names, rowOf(phase, "list", "pods"))
            : reps < MIN_ROUNDS
              ? `a verdict needs --reps ${MIN_ROUNDS} or more`
              : "",
      }),
    );
  }
  return out;
}

function optionsOf(args: Map<string, string>): Kube5000Options {
  const d = KUBE_BENCH_DEFAULTS;
  const mode = args.get("lists") ?? "paced";
  if (mode !== "paced" && mode !== "closed")
    throw new Error(`--lists is paced or closed (the storm's first phase), got ${JSON.stringify(mode)}`);
  return {
    seed: num(args, "seed", KUBE_5000_DEFAULTS.seed),
    scale: num(args, "scale", KUBE_5000_DEFAULTS.scale),
    stormSeconds: num(args, "storm", d.stormSeconds),
    closedStormSeconds: num(args, "storm-closed", d.closedStormSeconds),
    steadySeconds: num(args, "steady", d.steadySeconds),
    listers: num(args, "listers", KUBE_5000_DEFAULTS.listers),
    victimPerSecond: num(args, "victim-rate", d.victimPerSecond),
    ...(mode === "paced"
      ? { listEvery: num(args, "list-every", d.listEvery), listInFlight: num(args, "list-in-flight", d.listInFlight) }
      : {}),
    ...(args.has("list-page") ? { listPage: num(args, "list-page", 500) } : {}),
    // Half the storm's listers page through pods as kube-apiserver does, half send one Range: both in the report.
    pagedListers: num(args, "paged-listers", Math.floor(num(args, "listers", KUBE_5000_DEFAULTS.listers) / 2)),
  };
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  if ((args.get("client") ?? "node") !== "node") {
    throw new Error(
      "kube-5000 replays a Kubernetes trace through core/client; perfkit rw cannot replay one (use storage-claim --client go)",
    );
  }
  const opts = optionsOf(args);
  const reps = num(args, "reps", 1);
  const trace = generateKube5000(opts);
  const digest = traceDigest(trace);
  const targets = (args.get("targets") ?? DEFAULT_TARGETS.join(",")).split(",");
  const dir = runDir("kube-5000", args.get("results"));
  const startedAt = new Date().toISOString();
  const perRoundRuns = await forEachRound(targets, reps, (client, rec, name) =>
    replayTrace(client, trace, rec, {
      speed: num(args, "speed", 1),
      compactEverySeconds: num(args, "compact-every", 60),
      label: name,
      ...(args.get("offload-lists") === "false" ? {} : { offloadLists: client.connection.endpointList() }),
    }),
  );
  const allRuns = perRoundRuns.flat();
  const names = [...new Set(allRuns.map((r) => r.name))];
  const pooled = names.map((n) =>
    mergeRecorders(
      n,
      allRuns.flatMap((r) => (r.name === n && r.recorder !== undefined ? [r.recorder] : [])),
    ),
  );
  const perRound = roundSummaries(
    perRoundRuns.map((runs) => runs.flatMap((r) => (r.recorder === undefined ? [] : [r.recorder]))),
  );
  const env = {
    experiment: "kube-5000",
    startedAt,
    args: argv,
    seed: opts.seed,
    traceDigest: digest,
    generator: trace.header,
    targets: roundsEnv(perRoundRuns),
    client: "node (core/client)",
    reps,
    focus: [
      { verb: "create", resource: "clusterrolebindings" },
      { verb: "list", resource: "pods" },
      { verb: "list-paged", resource: "pods" },
      { verb: "update", resource: "leases" },
    ],
    readWork: { write: { verb: "create", resource: "clusterrolebindings" }, list: { verb: "list", resource: "pods" } },
    references: [
      { label: "5k GCE, before #10523: POST clusterrolebindings P99 during LIST pods", p99Ms: 993 },
      { label: "5k GCE, with #10523: POST clusterrolebindings P99 during LIST pods", p99Ms: 25.4 },
    ],
    notes: [
      `Time-compressed at scale ${opts.scale} (${trace.header?.["nodes"] as number} nodes): a ${opts.stormSeconds} s storm with ${opts.listers} listers ${opts.listEvery === undefined ? "looping LIST pods" : `each starting a LIST pods every ${opts.listEvery} s (open loop, at most ${opts.listInFlight} in flight each; one that cannot start before the storm ends is skipped)`}, a ${opts.closedStormSeconds ?? 0} s storm with looping listers ("storm-closed"), a ${opts.steadySeconds} s steady phase; POST clusterrolebindings at ${opts.victimPerSecond}/s. ${reps} round(s), target order rotated each round.`,
      "Client and server share the machine's cores; LISTs run in a worker thread of the client (its own connection) so their decoding does not delay the measured writes; env.json records the replayer's event-loop delay P99 per target.",
      reps > 1
        ? "summary.csv pools every round; rounds.csv holds each round, spread.csv the median, min and max over rounds."
        : "One round: no spread; --reps N runs N interleaved rounds.",
      ...allRuns.filter((r) => !r.available).map((r) => `${r.name}: not yet available — ${r.reason ?? ""}`),
    ],
  };
  const claimRows = claims(perRound, allRuns, opts, reps);
  const rows = writeResults(dir, pooled, claimRows, env);
  writeRoundFiles(dir, perRound);
  printTable(rows.filter((r) => ["clusterrolebindings", "pods", "leases"].includes(r.resource)));
  for (const c of claimRows)
    console.log(
      `${c.target} · ${c.claim}: ${c.measured_value}${c.verdict === undefined ? "" : ` — ${c.verdict}`}${c.note === "" ? "" : ` [${c.note}]`}`,
    );
  return renderReport(dir);
}
