// Shared pieces of the experiments: argument parsing, running a body against each available target (start,
// client, event-loop-delay monitor, stop), the env.json target list, and the terminal summary table.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { EtcdClient } from "../../core/client/index.js";
import { Recorder, type SummaryRow } from "../metrics.js";
import { roundOrder } from "../rounds.js";
import { makeTarget } from "../targets/make.js";
import { parseTargetSpec } from "../targets/target.js";

export type Args = Map<string, string>;

/** parseArgs reads "--name value" pairs (and bare "--flag" as "true"). */
export function parseArgs(argv: readonly string[]): Args {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(a)} (use --name value)`);
    const eq = a.indexOf("=");
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) out.set(a.slice(2), argv[++i]!);
    else out.set(a.slice(2), "true");
  }
  return out;
}

export function num(args: Args, name: string, dflt: number): number {
  const v = args.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

export interface TargetRun {
  readonly name: string;
  readonly describe: string;
  readonly version: string;
  readonly available: boolean;
  readonly reason?: string;
  readonly recorder: Recorder | undefined;
  readonly eventLoopDelayP99Ms?: number;
  readonly detail?: unknown;
}

/** forEachTarget runs `body` against every available target in order, one at a time. */
export async function forEachTarget(
  specs: readonly string[],
  body: (client: EtcdClient, rec: Recorder, name: string) => Promise<unknown>,
): Promise<TargetRun[]> {
  const runs: TargetRun[] = [];
  for (const s of specs) {
    const slot = makeTarget(parseTargetSpec(s));
    if (slot.target === undefined) {
      console.error(`target ${slot.name}: not yet available — ${slot.reason ?? ""}`);
      runs.push({
        name: slot.name,
        describe: "",
        version: "",
        available: false,
        reason: slot.reason ?? "",
        recorder: undefined,
      });
      continue;
    }
    const t = slot.target;
    console.error(`target ${slot.name}: starting`);
    try {
      await t.start();
    } catch (err) {
      await t.stop().catch(() => undefined);
      const reason = `did not start: ${String(err).slice(0, 300)}`;
      console.error(`target ${slot.name}: not available — ${reason}`);
      runs.push({ name: slot.name, describe: t.describe, version: "", available: false, reason, recorder: undefined });
      continue;
    }
    const client = new EtcdClient({ endpoints: t.endpoints(), callTimeoutMs: 120_000 });
    const rec = new Recorder(slot.name);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    try {
      const detail = await body(client, rec, slot.name);
      lag.disable();
      runs.push({
        name: slot.name,
        describe: t.describe,
        version: t.version(),
        available: true,
        recorder: rec,
        eventLoopDelayP99Ms: Math.round(lag.percentile(99) / 1e4) / 100,
        detail,
      });
    } finally {
      client.close();
      await t.stop();
    }
  }
  return runs;
}

/**
 * forEachRound runs `reps` interleaved rounds: every target once per round, the order rotated each round, so
 * slow drift of the machine spreads over all targets instead of landing on whichever always runs last.
 */
export async function forEachRound(
  specs: readonly string[],
  reps: number,
  body: (client: EtcdClient, rec: Recorder, name: string, round: number) => Promise<unknown>,
): Promise<TargetRun[][]> {
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`--reps must be a whole number >= 1, got ${reps}`);
  const out: TargetRun[][] = [];
  for (let r = 0; r < reps; r++) {
    const order = roundOrder(specs, r);
    if (reps > 1) console.error(`round ${r + 1}/${reps}: ${order.join(", ")}`);
    out.push(await forEachTarget(order, (client, rec, name) => body(client, rec, name, r)));
  }
  return out;
}

/** roundsEnv is the env.json target list of every round (the round number beside each target). */
export function roundsEnv(perRound: readonly (readonly TargetRun[])[]): ReturnType<typeof envTargets> {
  return perRound.flatMap((runs, i) => envTargets(runs).map((t) => ({ round: i + 1, ...t })));
}

/** envTargets is the env.json view of the runs. */
export function envTargets(runs: readonly TargetRun[]): {
  name: string;
  describe: string;
  version: string;
  available: boolean;
  reason?: string;
  eventLoopDelayP99Ms?: number;
  detail?: unknown;
}[] {
  return runs.map((r) => ({
    name: r.name,
    describe: r.describe,
    version: r.version,
    available: r.available,
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    ...(r.eventLoopDelayP99Ms === undefined ? {} : { eventLoopDelayP99Ms: r.eventLoopDelayP99Ms }),
    ...(r.detail === undefined ? {} : { detail: r.detail }),
  }));
}

/** printTable prints the summary rows of interest to stdout as an aligned table. */
export function printTable(rows: readonly SummaryRow[]): void {
  const cols = [
    "target",
    "phase",
    "verb",
    "resource",
    "count",
    "errors",
    "bytes",
    "throughput_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
  ] as const;
  const cells = [cols.map(String), ...rows.map((r) => cols.map((c) => String(r[c])))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  for (const row of cells) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}

/** pct formats a relative change ("−97.4%"). */
export function pct(from: number, to: number): string {
  if (!(from > 0)) return "n/a";
  const v = ((to - from) / from) * 100;
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(1)}%`;
}
