// The Go load generator (../shared/tools/perfkit, clientv3 3.4.23) as an alternative client: it drives writers
// and readers from a separate process whose CPU cost is small, so the Node client's own work does not decide a
// comparison. Found via $PERFKIT, else built once with its build.sh into the temp dir (needs Go and Debian's
// golang-etcd-server-dev; nothing is downloaded). perfkit's `rw` readers are closed loops with an optional
// minimum interval between starts: their latency counts from the actual send, not from an intended start.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { SummaryRow } from "./metrics.js";

const SOURCE_DIR = resolve("..", "shared", "tools", "perfkit");

/** perfkitBinary returns the binary's path, building it when needed, or throws saying why it is unavailable. */
export function perfkitBinary(): string {
  const given = process.env["PERFKIT"];
  if (given !== undefined && given !== "") {
    if (!existsSync(given)) throw new Error(`$PERFKIT=${given} does not exist`);
    return given;
  }
  const out = join(tmpdir(), "perfkit", "perfkit");
  if (existsSync(out)) return out;
  const build = join(SOURCE_DIR, "build.sh");
  if (!existsSync(build)) throw new Error(`no ${build}`);
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
  } catch {
    throw new Error("Go is not installed (apt-get install -y golang-go golang-etcd-server-dev)");
  }
  execFileSync("bash", [build, out], { stdio: ["ignore", "ignore", "inherit"] });
  return out;
}

export interface RwOptions {
  readonly endpoints: readonly string[];
  readonly writers: number;
  readonly readers: number;
  readonly readPrefix: string;
  readonly seconds: number;
  /** Minimum seconds between one reader's range starts; 0 = back to back. */
  readonly readerIntervalS: number;
  readonly valueBytes: number;
}

/** parseResult reads perfkit's `RESULT <cmd> key=value …` line (the last one in its output). */
export function parseResult(stdout: string): Record<string, string> {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("RESULT "));
  if (line === undefined) throw new Error(`perfkit printed no RESULT line: ${stdout.slice(-300)}`);
  return Object.fromEntries(
    line
      .split(" ")
      .slice(2)
      .map((kv) => kv.split("=") as [string, string]),
  );
}

/** runRw runs `perfkit rw` and returns its RESULT fields. */
export function runRw(bin: string, o: RwOptions): Promise<Record<string, string>> {
  const args = [
    "rw",
    `--endpoints=${o.endpoints.join(",")}`,
    `--writers=${o.writers}`,
    `--conns=${o.writers}`,
    `--readers=${o.readers}`,
    `--read-prefix=${o.readPrefix}`,
    `--duration=${o.seconds}s`,
    `--reader-interval=${Math.round(o.readerIntervalS * 1000)}ms`,
    `--val-size=${o.valueBytes}`,
  ];
  return new Promise((res, rej) => {
    const p = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "",
      err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", rej);
    p.on("close", (code) => {
      if (code !== 0) rej(new Error(`perfkit rw exited ${code}: ${err.slice(-300)}`));
      else {
        try {
          res(parseResult(out));
        } catch (e) {
          rej(e as Error);
        }
      }
    });
  });
}

/**
 * rwRows turns one `rw` RESULT into summary rows: puts (P50…max, service time) and, with readers, ranges
 * (count, bytes, P50 and max only — perfkit does not report a range P99, so those columns are NaN).
 */
export function rwRows(target: string, phase: string, r: Record<string, string>): SummaryRow[] {
  const n = (k: string): number => Number(r[k] ?? Number.NaN);
  const seconds = n("seconds");
  const rows: SummaryRow[] = [
    {
      target,
      phase,
      verb: "put",
      resource: "kv",
      count: n("puts"),
      errors: n("errors"),
      conflicts: 0,
      bytes: 0,
      throughput_per_s: n("puts_per_s"),
      p50_ms: n("p50_ms"),
      p90_ms: n("p90_ms"),
      p99_ms: n("p99_ms"),
      p999_ms: n("p999_ms"),
      max_ms: n("max_ms"),
      p99_service_ms: n("p99_ms"),
      errors_by_code: "",
    },
  ];
  if (r["ranges"] !== undefined) {
    const count = n("ranges");
    rows.push({
      target,
      phase,
      verb: "list",
      resource: "pods",
      count,
      errors: 0,
      conflicts: 0,
      bytes: Math.round(n("read_MB_per_s") * 1e6 * seconds),
      throughput_per_s: seconds > 0 ? Math.round((count / seconds) * 100) / 100 : 0,
      p50_ms: n("range_p50_ms"),
      p90_ms: Number.NaN,
      p99_ms: Number.NaN,
      p999_ms: Number.NaN,
      max_ms: n("range_max_ms"),
      p99_service_ms: Number.NaN,
      errors_by_code: "",
    });
  }
  return rows;
}
