// What the single-server experiments (server_bench.ts, security.ts) share: a server child process on a fresh
// data dir with its stderr tail, a liveness check and a stop that cleans up; the first put that proves it
// serves; the /proc readings and the split of in-flight slots over load threads.
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import type { EtcdClient } from "../../core/client/index.js";
import { setTimeout as pause } from "node:timers/promises";

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux x86-64 (getconf CLK_TCK)
const START_LIMIT_MS = 60_000;

export interface ServerProcess {
  readonly pid: number;
  /** performance.now() at spawn. */
  readonly t0: number;
  /** Throws (with the stderr tail) if the process has exited or has not served within 60 s of spawn. */
  alive(): void;
  /** SIGTERM, SIGKILL after 5 s, then removes the data dir. */
  stop(): Promise<void>;
}

/** Spawns `bin args` (stdout ignored, stderr's last 2,000 characters kept); `dataDir` is removed on stop. */
export function spawnServer(bin: string, args: readonly string[], dataDir: string, label: string): ServerProcess {
  let stderrTail = "";
  const t0 = performance.now();
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (b: Buffer) => (stderrTail = (stderrTail + b.toString("utf8")).slice(-2000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    pid: child.pid ?? 0,
    t0,
    alive: () => {
      if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}: ${stderrTail.slice(-600)}`);
      if (performance.now() - t0 > START_LIMIT_MS)
        throw new Error(`${label} not serving after ${START_LIMIT_MS / 1000} s: ${stderrTail.slice(-600)}`);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Puts until one succeeds (a fresh member elects itself first), calling `alive` between tries. */
export async function putUntilServing(client: EtcdClient, alive: () => void, retryMs: number): Promise<void> {
  for (;;) {
    try {
      await client.put("/bench/startup", "1");
      return;
    } catch {
      alive();
      await pause(retryMs);
    }
  }
}

/** utime + stime of every thread of `pid`, from /proc/<pid>/stat (fields 14 and 15 of proc(5)), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** Divides `total` in-flight slots over at most `parts` workers as evenly as possible. */
export function split(total: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}
