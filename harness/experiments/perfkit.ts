// The Go load generator (../shared/tools/perfkit, on etcd's clientv3 3.4.23, the client kube-apiserver uses) as
// the benchmarks drive it: found or built once per run, each subcommand run as a child process whose final
// `RESULT key=value …` line is parsed. A Node generator spends so much CPU of its own that on a small machine it,
// not the server, sets the pace; this one costs little, so server limits show.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The perfkit sources, relative to the repository root (the shared folder sits beside the repository). */
const SOURCE_DIR = "../shared/tools/perfkit";
const RESULT_PREFIX = "RESULT ";

export interface Perfkit {
  readonly bin: string;
  /** How it was found: "PERFKIT env", "built from <dir>". */
  readonly origin: string;
  /** Removes a binary this run built. */
  dispose(): void;
}

/** The repository root: the nearest folder above this file with a package.json (works from src and dist). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function hasGo(): boolean {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * findPerfkit returns a perfkit binary: $PERFKIT when set, else one built now from the sources into a temp dir
 * (build.sh builds offline against Debian's clientv3 sources). Throws with the reason when neither works, so the
 * caller can report the Go column as not measured.
 */
export function findPerfkit(): Perfkit {
  const env = process.env["PERFKIT"];
  if (env !== undefined && env !== "") {
    if (!existsSync(env)) throw new Error(`PERFKIT=${env} does not exist`);
    return { bin: env, origin: "PERFKIT env", dispose: () => undefined };
  }
  const src = resolve(repoRoot(), SOURCE_DIR);
  if (!existsSync(join(src, "build.sh"))) throw new Error(`no perfkit sources at ${src}`);
  if (!hasGo()) throw new Error("no Go toolchain (apt-get install -y golang-go golang-etcd-server-dev)");
  const dir = mkdtempSync(join(tmpdir(), "perfkit-"));
  const bin = join(dir, "perfkit");
  try {
    execFileSync("bash", [join(src, "build.sh"), bin], { stdio: ["ignore", "ignore", "pipe"], timeout: 600_000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`perfkit build failed: ${String((err as { stderr?: Buffer }).stderr ?? err).slice(0, 400)}`);
  }
  return { bin, origin: `built from ${src}`, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The key=value fields of a RESULT line (the first word after RESULT is the subcommand, under "cmd"). */
export function parseResult(stdout: string): Record<string, string> {
  const line = stdout.split("\n").reverse().find((l) => l.startsWith(RESULT_PREFIX));
  if (line === undefined) throw new Error(`perfkit printed no RESULT line: ${stdout.slice(-300)}`);
  const [cmd = "", ...pairs] = line.slice(RESULT_PREFIX.length).trim().split(/\s+/);
  const out: Record<string, string> = { cmd };
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq > 0) out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

/** Runs `perfkit <args>` and returns its RESULT fields; a non-zero exit throws with stderr's tail. */
export function runPerfkit(pk: Perfkit, args: readonly string[], timeoutMs = 900_000): Promise<Record<string, string>> {
  return new Promise((resolvePromise, reject) => {
    execFile(pk.bin, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`perfkit ${args[0] ?? ""} failed: ${err.message} ${stderr.slice(-400)}`));
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
  if (v === undefined || !Number.isFinite(Number(v))) throw new Error(`perfkit RESULT has no numeric ${key}: ${JSON.stringify(r)}`);
  return Number(v);
}
