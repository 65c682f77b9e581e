// `npm run bench -- storage-claim`: steady closed-loop writes beside 0, 1, 2, 4 readers of full LISTs over N
// preloaded keys; write throughput and P99 per cell, beside the seed's "+70% write throughput, −90% P99 write
// latency with long reads" (etcd-io/etcd#10523: 3.4 concurrent reads vs 3.3 blocking). Readers run in two
// views: paced (each reader starts one LIST every --list-every seconds, open loop, latency from the intended
// start, so every target is asked for the same read work; the claims are computed here) and closed (each
// reader loops LISTs back to back; a slower target then serves fewer LISTs, and the claims table says so).
import { performance } from "node:perf_hooks";
import { errorCode, type EtcdClient } from "../../core/client/index.js";
import { closedLoopNote, comparisonClaim } from "../claims.js";
import type { Recorder, SummaryRow } from "../metrics.js";
import { pacedLoop, realClock } from "../paced.js";
import { perfkitBinary, runRw, rwRows } from "../perfkit.js";
import { Progress } from "../progress.js";
import { renderReport } from "../report.js";
import { mergeRecorders, roundSummaries, writeRoundFiles } from "../rounds.js";
import { runDir, writeResults, type ClaimRow } from "../results.js";
import { forEachRound, num, parseArgs, printTable, roundsEnv, type TargetRun } from "./common.js";

const PREFIX = "/registry/pods/bench/";
export const READ_MODES = ["paced", "closed"] as const;
export type ReadMode = (typeof READ_MODES)[number];

interface Settings {
  readonly keys: number;
  readonly valueBytes: number;
  readonly writers: number;
  readonly seconds: number;
  readonly lists: readonly number[];
  readonly reads: readonly ReadMode[];
  /** Paced readers: seconds between one reader's LIST starts, and its LISTs in flight at most. */
  readonly listEvery: number;
  readonly listInFlight: number;
  readonly reps: number;
  readonly client: "node" | "go";
}

interface Cell {
  readonly phase: string;
  readonly lists: number;
  readonly mode: ReadMode;
}

/** cells: lists=0 once, then each reader count in each read view. */
export function cellsOf(lists: readonly number[], reads: readonly ReadMode[]): Cell[] {
  return lists.flatMap((l) =>
    l === 0
      ? [{ phase: "lists=0", lists: 0, mode: reads[0] ?? "paced" }]
      : reads.map((mode) => ({ phase: `lists=${l} ${mode}`, lists: l, mode })),
  );
}

async function preload(client: EtcdClient, s: Settings, label: string): Promise<void> {
  const value = Buffer.alloc(s.valueBytes, "p");
  const bar = new Progress(`preload ${label}`, s.keys);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < s.keys) {
        const i = next++;
        await client.put(`${PREFIX}pod-${String(i).padStart(6, "0")}`, value);
        bar.increment();
      }
    }),
  );
  bar.stop();
}

/** nodeCell runs one cell with core/client; returns the paced LISTs skipped (no free slot before the end). */
async function nodeCell(client: EtcdClient, rec: Recorder, s: Settings, cell: Cell, t0: number): Promise<number> {
  const value = Buffer.alloc(256, "w");
  const clock = realClock(t0);
  const startS = clock.now(),
    end = startS + s.seconds;
  const record = (
    verb: string,
    resource: string,
    t: { intendedS: number; sentS: number; doneS: number },
    outcome: { error?: unknown; bytes?: number },
  ): void =>
    rec.record(
      cell.phase,
      verb,
      resource,
      t,
      outcome.error === undefined ? { bytes: outcome.bytes ?? 0 } : { errorCode: errorCode(outcome.error) },
    );
  const closed = async (verb: string, resource: string, fn: () => Promise<number>): Promise<void> => {
    const sentS = clock.now();
    try {
      const bytes = await fn();
      record(verb, resource, { intendedS: sentS, sentS, doneS: clock.now() }, { bytes });
    } catch (error) {
      record(verb, resource, { intendedS: sentS, sentS, doneS: clock.now() }, { error });
    }
  };
  const list = async (): Promise<number> => (await client.rangeSummary(PREFIX, { prefix: true })).bytes;
  const writers = Array.from({ length: s.writers }, async (_, w) => {
    for (let i = 0; clock.now() < end; i++)
      await closed("put", "kv", async () => (await client.put(`/bench/w/${w}-${i % 100}`, value), 0));
  });
  const readers = Array.from({ length: cell.lists }, async (_, r): Promise<number> => {
    if (cell.mode === "closed") {
      while (clock.now() < end) await closed("list", "pods", list);
      return 0;
    }
    // Readers are spread over one period so their LISTs do not all start together.
    const res = await pacedLoop({
      clock,
      startS: startS + (r * s.listEvery) / cell.lists,
      endS: end,
      periodS: s.listEvery,
      maxInFlight: s.listInFlight,
      issue: list,
      done: (t, o) => record("list", "pods", t, o.error === undefined ? { bytes: o.value ?? 0 } : { error: o.error }),
    });
    return res.skipped;
  });
  await Promise.all(writers);
  return (await Promise.all(readers)).reduce((a, b) => a + b, 0);
}

async function goCell(client: EtcdClient, bin: string, s: Settings, cell: Cell, name: string): Promise<SummaryRow[]> {
  const r = await runRw(bin, {
    endpoints: client.connection.endpointList(),
    writers: s.writers,
    readers: cell.lists,
    readPrefix: PREFIX,
    seconds: s.seconds,
    readerIntervalS: cell.mode === "paced" ? s.listEvery : 0,
    valueBytes: 256,
  });
  return rwRows(name, cell.phase, r);
}

const writeRow =
  (phase: string) =>
  (rows: readonly SummaryRow[], t: string): SummaryRow | undefined =>
    rows.find((r) => r.target === t && r.phase === phase && r.verb === "put");
const listRow =
  (phase: string) =>
  (rows: readonly SummaryRow[], t: string): SummaryRow | undefined =>
    rows.find((r) => r.target === t && r.phase === phase && r.verb === "list");

function claims(perRound: readonly (readonly SummaryRow[])[], runs: readonly TargetRun[], s: Settings): ClaimRow[] {
  const maxL = Math.max(...s.lists);
  const out: ClaimRow[] = runs
    .filter((r) => !r.available)
    .map((r) => ({
      claim: "long reads beside writes",
      seed_value: "",
      target: r.name,
      measured_value: "not yet available",
      note: r.reason ?? "",
    }));
  if (maxL === 0) return out;
  const names = [...new Set(runs.filter((r) => r.available).map((r) => r.name))];
  for (const mode of s.reads) {
    const phase = `lists=${maxL} ${mode}`;
    const readWork =
      mode === "paced"
        ? `${maxL} readers, one full LIST every ${s.listEvery} s each (open loop${s.client === "go" ? "; perfkit: closed loop with that minimum interval" : ""})`
        : `${maxL} readers looping full LISTs (closed loop)`;
    const view = mode === "paced" ? "" : " (closed-loop view)";
    const note = mode === "closed" ? closedLoopNote(perRound, names, listRow(phase)) : "";
    const common = {
      from: "etcd-ts-blocking",
      to: "etcd-ts-concurrent",
      label: `etcd-ts blocking → concurrent${view}`,
      perRound,
      row: writeRow(phase),
      lists: listRow(phase),
      readWork,
      client: s.client,
      note,
    };
    out.push(
      comparisonClaim({
        ...common,
        claim: `write throughput with ${maxL} long reads, blocking → concurrent`,
        seedValue: "+70% (etcd-io/etcd#10523)",
        seedPct: 70,
        metric: "throughput",
      }),
    );
    out.push(
      comparisonClaim({
        ...common,
        claim: `P99 write latency with ${maxL} long reads, blocking → concurrent`,
        seedValue: "−90% (etcd-io/etcd#10523)",
        seedPct: -90,
        metric: "tail",
      }),
    );
  }
  return out;
}

function settingsOf(argv: readonly string[]): { s: Settings; args: Map<string, string> } {
  const args = parseArgs(argv);
  const reads = (args.get("reads") ?? "paced,closed").split(",") as ReadMode[];
  for (const m of reads)
    if (!READ_MODES.includes(m)) throw new Error(`--reads takes paced and/or closed, got ${JSON.stringify(m)}`);
  const client = args.get("client") ?? "node";
  if (client !== "node" && client !== "go") throw new Error(`--client is node or go, got ${JSON.stringify(client)}`);
  const s: Settings = {
    keys: num(args, "keys", 20_000),
    valueBytes: num(args, "value-size", 2048),
    writers: num(args, "writers", 16),
    seconds: num(args, "seconds", 10),
    lists: (args.get("lists") ?? "0,1,2,4").split(",").map(Number),
    reads,
    listEvery: num(args, "list-every", 5),
    listInFlight: num(args, "list-in-flight", 2),
    reps: num(args, "reps", 1),
    client,
  };
  return { s, args };
}

export async function run(argv: string[]): Promise<string> {
  const { s, args } = settingsOf(argv);
  const bin = s.client === "go" ? perfkitBinary() : "";
  const targets = (args.get("targets") ?? "etcd-ts:blocking,etcd-ts:concurrent,etcd").split(",");
  const dir = runDir("storage-claim", args.get("results"));
  const startedAt = new Date().toISOString();
  const cells = cellsOf(s.lists, s.reads);
  const perRoundRuns = await forEachRound(targets, s.reps, async (client, rec, name) => {
    await preload(client, s, name);
    const t0 = performance.now();
    const goRows: SummaryRow[] = [];
    const skipped: Record<string, number> = {};
    for (const cell of cells) {
      const readers = cell.lists === 0 ? "no LIST readers" : `${cell.lists} ${cell.mode} LIST reader(s)`;
      console.error(`${name}: ${readers}, ${s.writers} writers, ${s.seconds} s (client ${s.client})`);
      if (s.client === "go") goRows.push(...(await goCell(client, bin, s, cell, name)));
      else skipped[cell.phase] = await nodeCell(client, rec, s, cell, t0);
    }
    return s.client === "go" ? goRows : { pacedListsSkipped: skipped };
  });
  const phaseSeconds = (): number => s.seconds;
  const goRowsOf = (runs: readonly TargetRun[]): SummaryRow[] =>
    runs.flatMap((r) => (Array.isArray(r.detail) ? (r.detail as SummaryRow[]) : []));
  const perRound =
    s.client === "go"
      ? perRoundRuns.map(goRowsOf)
      : roundSummaries(
          perRoundRuns.map((runs) => runs.flatMap((r) => (r.recorder === undefined ? [] : [r.recorder]))),
          phaseSeconds,
        );
  const names = [...new Set(perRoundRuns.flat().map((r) => r.name))];
  const pooled =
    s.client === "go"
      ? []
      : names.map((n) =>
          mergeRecorders(
            n,
            perRoundRuns.flat().flatMap((r) => (r.name === n && r.recorder !== undefined ? [r.recorder] : [])),
          ),
        );
  const env = {
    experiment: "storage-claim",
    startedAt,
    args: argv,
    settings: s,
    client: s.client === "go" ? `perfkit (${bin})` : "node (core/client)",
    targets: roundsEnv(perRoundRuns),
    focus: [
      { verb: "put", resource: "kv" },
      { verb: "list", resource: "pods" },
    ],
    readWork: { write: { verb: "put", resource: "kv" }, list: { verb: "list", resource: "pods" } },
    notes: [
      `${s.keys} keys × ${s.valueBytes} B preloaded; ${s.writers} closed-loop writers of 256 B values; each cell runs ${s.seconds} s; ${s.reps} round(s), target order rotated each round; client ${s.client}.`,
      `Paced readers start one full LIST every ${s.listEvery} s each (at most ${s.listInFlight} in flight per reader; one that gets no slot before the cell ends is skipped, see pacedListsSkipped in env.json), latency from the intended start; closed readers loop LISTs back to back. The claims' verdicts come from the paced cells.`,
      ...(s.client === "go"
        ? [
            "perfkit rw's readers are closed loops with a minimum interval between starts (it has no open-loop reader): range latency is from the actual send, and it reports only P50 and max for ranges; summary.csv holds each round's rows (perfkit's percentiles cannot be pooled).",
          ]
        : [
            "summary.csv pools every round; rounds.csv holds each round, spread.csv the median, min and max over rounds.",
          ]),
      ...perRoundRuns
        .flat()
        .filter((r) => !r.available)
        .map((r) => `${r.name}: not yet available — ${r.reason ?? ""}`),
    ],
  };
  const claimRows = claims(perRound, perRoundRuns.flat(), s);
  const rows = writeResults(dir, pooled, claimRows, env, phaseSeconds, s.client === "go" ? perRound.flat() : []);
  writeRoundFiles(dir, perRound);
  printTable(rows);
  for (const c of claimRows)
    console.log(
      `${c.target} · ${c.claim}: ${c.measured_value} — ${c.verdict ?? ""}${c.note === "" ? "" : ` [${c.note}]`}`,
    );
  return renderReport(dir);
}
