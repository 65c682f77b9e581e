// The results directory of one run: summary.csv (one row per target × phase × verb × resource), one latency
// CDF CSV per op under histograms/, timeline.csv (throughput per second per target), claims.csv (the seed's
// claims beside what was measured), env.json (machine, versions, git commit, seed, trace digest) and
// report.html, which report.ts renders from those files alone (so `npm run report -- DIR` can rebuild it).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem, release, platform, hostname, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseCsvText } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { cdfRows, summarise, type Recorder, type SummaryRow } from "./metrics.js";

export interface ClaimRow {
  readonly claim: string;
  readonly seed_value: string;
  readonly target: string;
  readonly measured_value: string;
  /** Targets, read work and samples behind the measured value. */
  readonly conditions?: string;
  /** reproduced / not reproduced / inconclusive, from harness/verdict.ts's rule, with the rule's reason. */
  readonly verdict?: string;
  readonly note: string;
}

export const CLAIM_COLUMNS = [
  "claim",
  "seed_value",
  "target",
  "measured_value",
  "conditions",
  "verdict",
  "note",
] as const;

export interface RunEnv {
  readonly experiment: string;
  readonly startedAt: string;
  readonly args: readonly string[];
  readonly seed?: number;
  readonly traceDigest?: string;
  readonly targets: readonly { name: string; describe: string; version: string; available: boolean; reason?: string }[];
  readonly notes?: readonly string[];
  readonly [extra: string]: unknown;
}

/** runDir creates results/<timestamp>-<name>/ under `root` and returns its path. */
export function runDir(name: string, root = resolve("results")): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, "-")
    .replace(/-\d{3}Z$/, "Z");
  const dir = join(root, `${stamp}-${name}`);
  mkdirSync(join(dir, "histograms"), { recursive: true });
  return dir;
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

/** machineEnv describes where the run happened. */
export function machineEnv(): Record<string, unknown> {
  const cpu = cpus();
  return {
    machine: {
      hostname: hostname(),
      platform: platform(),
      kernel: release(),
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? "unknown",
      memoryBytes: totalmem(),
    },
    /** 1/5/15-min load averages when the results were written: other work on the machine skews latencies. */
    loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
    node: process.version,
    gitCommit: gitCommit(),
  };
}

export const SUMMARY_COLUMNS: readonly (keyof SummaryRow)[] = [
  "target",
  "phase",
  "verb",
  "resource",
  "count",
  "errors",
  "conflicts",
  "bytes",
  "throughput_per_s",
  "p50_ms",
  "p90_ms",
  "p99_ms",
  "p999_ms",
  "max_ms",
  "p99_service_ms",
  "errors_by_code",
];

/** histogramFileName is the per-op CDF file of one summary row. */
export function histogramFileName(r: { target: string; phase: string; verb: string; resource: string }): string {
  return `${[r.target, r.phase, r.verb, r.resource].map((s) => s.replace(/[^A-Za-z0-9._-]/g, "_")).join("__")}.csv`;
}

/** writeResults writes every CSV and env.json; returns the summary rows written. */
export function writeResults(
  dir: string,
  recorders: readonly Recorder[],
  claims: readonly ClaimRow[],
  env: RunEnv,
  phaseSeconds?: (target: string, phase: string) => number,
  extraRows: readonly SummaryRow[] = [],
): SummaryRow[] {
  mkdirSync(join(dir, "histograms"), { recursive: true });
  const rows: SummaryRow[] = [...extraRows];
  const timeline: (string | number)[][] = [];
  for (const rec of recorders) {
    rows.push(...summarise(rec, phaseSeconds === undefined ? undefined : (p) => phaseSeconds(rec.target, p)));
    for (const c of rec.cells.values()) {
      const file = histogramFileName({ target: rec.target, phase: c.phase, verb: c.verb, resource: c.resource });
      writeFileSync(
        join(dir, "histograms", file),
        stringify(cdfRows(c), { header: true, columns: ["percentile", "latency_ms", "service_ms"] }),
      );
    }
    for (const t of rec.timeline) timeline.push([rec.target, t.second, t.ops, t.writes, t.reads, t.errors]);
  }
  writeFileSync(join(dir, "summary.csv"), stringify(rows, { header: true, columns: SUMMARY_COLUMNS as string[] }));
  writeFileSync(
    join(dir, "timeline.csv"),
    stringify(timeline, { header: true, columns: ["target", "second", "ops", "writes", "reads", "errors"] }),
  );
  writeFileSync(
    join(dir, "claims.csv"),
    stringify(
      claims.map((c) => ({ conditions: "", verdict: "", ...c })),
      { header: true, columns: [...CLAIM_COLUMNS] },
    ),
  );
  writeFileSync(join(dir, "env.json"), JSON.stringify({ ...machineEnv(), ...env }, null, 2) + "\n");
  return rows;
}

/** parseCsv reads RFC 4180 CSV (quoted fields, doubled quotes, embedded commas/newlines) into header-keyed rows. */
export function parseCsv(text: string): Record<string, string>[] {
  let columns: string[] = [];
  const rows = parseCsvText(text, {
    columns: (header: string[]) => (columns = header),
    skip_empty_lines: true,
    relax_column_count: true,
  }) as Record<string, string | undefined>[];
  // A short row's missing fields read as "", as a spreadsheet shows them.
  return rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? ""])));
}

/** readCsv reads one CSV file of a results dir ([] when absent). */
export function readCsv(path: string): Record<string, string>[] {
  try {
    return parseCsv(readFileSync(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
