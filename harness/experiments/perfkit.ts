// The Go load generator (../shared/tools/perfkit, on etcd's clientv3 3.4.23, the client kube-apiserver uses) as
// the server and cluster benchmarks drive it: any subcommand run as a child process whose final
// `RESULT key=value …` line is parsed. A Node generator spends so much CPU of its own that on a small machine it,
// not the server, sets the pace; this one costs little, so server limits show. The binary comes from
// harness/perfkit.ts ($PERFKIT, or built once into the temp dir).
import { execFile } from "node:child_process";
import { parseResult, perfkitBinary } from "../perfkit.js";

export interface Perfkit {
  readonly bin: string;
  /** How it was found: "$PERFKIT=…" or the path it was built at. */
  readonly origin: string;
}

/** findPerfkit returns the binary, building it when needed; throws with the reason when it cannot. */
export function findPerfkit(): Perfkit {
  const bin = perfkitBinary();
  const env = process.env["PERFKIT"];
  return {
    bin,
    origin: env !== undefined && env !== "" ? `$PERFKIT=${env}` : `built from ../shared/tools/perfkit at ${bin}`,
  };
}

/** Runs `perfkit <args>` and returns its RESULT fields; a non-zero exit throws with stderr's tail. */
export function runPerfkit(pk: Perfkit, args: readonly string[], timeoutMs = 900_000): Promise<Record<string, string>> {
  return new Promise((resolvePromise, reject) => {
    execFile(pk.bin, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null)
        return reject(new Error(`perfkit ${args[0] ?? ""} failed: ${err.message} ${stderr.slice(-400)}`));
      try {
        resolvePromise(parseResult(stdout));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

/** A numeric RESULT field; throws when missing. */
export function field(r: Record<string, string>, key: string): number {
  const v = r[key];
  if (v === undefined || !Number.isFinite(Number(v)))
    throw new Error(`perfkit RESULT has no numeric ${key}: ${JSON.stringify(r)}`);
  return Number(v);
}
