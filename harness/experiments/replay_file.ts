// `npm run bench -- replay --trace FILE [--speed N] [--targets etcd,...]`: replays any trace file, or a Kubernetes
// audit log (detected by its audit.k8s.io apiVersion), against each target.
import { readFileSync } from "node:fs";
import { importAuditLog } from "../../workloads/audit_import.js";
import { parseTrace, traceDigest, type Trace } from "../../workloads/trace.js";
import { renderReport } from "../report.js";
import { replayTrace } from "../replay.js";
import { runDir, writeResults } from "../results.js";
import { envTargets, forEachTarget, num, parseArgs, printTable } from "./common.js";

function load(path: string): { trace: Trace; notes: string[] } {
  const text = readFileSync(path, "utf8");
  const firstLine = text.slice(0, text.indexOf("\n") >>> 0);
  if (firstLine.includes("audit.k8s.io/")) {
    const { trace, stats } = importAuditLog(text);
    return {
      trace,
      notes: [
        `audit log: ${stats.lines} lines, ${stats.badLines} bad, ${stats.requests} requests, ${stats.imported} imported; skipped ${JSON.stringify(stats.skipped)}`,
      ],
    };
  }
  const { trace, errors } = parseTrace(text);
  for (const e of errors.slice(0, 10)) console.error(`${path}:${e.line}: ${e.message}`);
  return {
    trace,
    notes:
      errors.length === 0
        ? []
        : [`${errors.length} invalid trace lines skipped (first: line ${errors[0]!.line}: ${errors[0]!.message})`],
  };
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const file = args.get("trace");
  if (file === undefined) throw new Error("replay needs --trace FILE (a trace or an audit.k8s.io log)");
  const { trace, notes } = load(file);
  const targets = (args.get("targets") ?? "etcd").split(",");
  const dir = runDir("replay", args.get("results"));
  const startedAt = new Date().toISOString();
  const runs = await forEachTarget(targets, (client, rec, name) =>
    replayTrace(client, trace, rec, {
      speed: num(args, "speed", 1),
      compactEverySeconds: num(args, "compact-every", 0),
      label: name,
      ...(args.get("offload-lists") === "false" ? {} : { offloadLists: client.connection.endpointList() }),
    }),
  );
  const recorders = runs.flatMap((r) => (r.recorder === undefined ? [] : [r.recorder]));
  const env = {
    experiment: "replay",
    startedAt,
    args: argv,
    traceFile: file,
    traceDigest: traceDigest(trace),
    targets: envTargets(runs),
    notes,
  };
  printTable(writeResults(dir, recorders, [], env));
  return renderReport(dir);
}
