// What the single-server experiments (server_bench.ts, security.ts) share beside the harness's launcher: the
// start-up limit and the first put that proves a fresh member serves; the /proc readings of the server's CPU;
// and the split of in-flight slots over load threads.
import { readFileSync } from "node:fs";
import type { EtcdClient } from "../../core/client/index.js";
import { type ServerProcess, waitUntil } from "../targets/launcher.js";

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux x86-64 (getconf CLK_TCK)
/** How long a bench server may take from spawn to its first successful put. */
export const START_LIMIT_MS = 60_000;

/**
 * putUntilServing puts until one succeeds (a fresh member elects itself first), every `intervalMs`; it fails when
 * the process exits or at `deadline` (a Date.now() time).
 */
export function putUntilServing(
  proc: ServerProcess,
  client: EtcdClient,
  opts: { readonly deadline: number; readonly intervalMs: number },
): Promise<void> {
  return waitUntil(proc, "a first successful put", opts, async () => {
    await client.put("/bench/startup", "1");
    return true;
  });
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
