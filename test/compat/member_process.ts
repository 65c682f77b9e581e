// One etcd-ts or real etcd member as a child process on a data dir the caller owns (so it can be stopped and started
// again on the same data), on 127.0.0.1 ports the caller keeps across restarts; waited on until Status answers.
// Also the real etcdctl run without blocking the event loop, and a process's resident memory from /proc.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EtcdClient } from "../../core/client/index.js";
import { singleMemberFlags } from "../../harness/targets/etcd_process.js";
import { ServerProcess, freePort, waitUntil } from "../../harness/targets/launcher.js";
import { REPO } from "./processes.js";

export interface MemberPorts {
  readonly client: number;
  readonly peer: number;
}

export async function memberPorts(): Promise<MemberPorts> {
  return { client: await freePort(), peer: await freePort() };
}

export interface MemberProcess {
  readonly endpoint: string;
  readonly pid: number;
  /** The last few KiB the member wrote to stderr (for failure messages). */
  stderrTail(): string;
  /** SIGTERM, and SIGKILL after a grace period; the data dir stays. Resolves with the exit code or signal. */
  stop(): Promise<string>;
}

/** Starts `kind` on `dataDir` with the bench harness's single-member flags and waits until it answers. */
export async function startMember(
  kind: "etcd" | "etcd-ts",
  dataDir: string,
  ports: MemberPorts,
  extraFlags: readonly string[] = [],
): Promise<MemberProcess> {
  const flags = [...singleMemberFlags(dataDir, ports), ...extraFlags];
  const proc = new ServerProcess({ label: kind, tailChars: 8000 });
  if (kind === "etcd") proc.spawn("etcd", flags);
  else proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...flags]);
  const endpoint = `127.0.0.1:${ports.client}`;
  const stop = async (): Promise<string> => {
    await proc.stop(20_000);
    const st = proc.exitStatus;
    return String(st?.code ?? st?.signal);
  };
  const client = new EtcdClient({ endpoints: [endpoint], callTimeoutMs: 1_000 });
  try {
    await waitUntil(proc, "Status answered", { deadline: Date.now() + 60_000, intervalMs: 100 }, async () => {
      await client.status();
      return true;
    });
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.close();
  }
  return { endpoint, pid: proc.pid ?? 0, stderrTail: () => proc.stderrTail, stop };
}

export interface CtlRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs the real etcdctl (API v3) against `endpoint`; killed after `timeoutMs`. */
export function etcdctlAsync(endpoint: string, args: readonly string[], timeoutMs: number): Promise<CtlRun> {
  const started = performance.now();
  const child = spawn("etcdctl", ["--endpoints", endpoint, ...args], {
    env: { ...process.env, ETCDCTL_API: "3" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
  child.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-8000)));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    child.once("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** A process's resident set now and at its peak (VmRSS, VmHWM), in bytes. */
export function residentBytes(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kib("VmRSS") * 1024, peak: kib("VmHWM") * 1024 };
}
