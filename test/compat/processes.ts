// Starting real etcd 3.4 and etcd-ts the same way for differential tests: child processes on 127.0.0.1, free
// ports, temp data dirs, waited on until they answer, and always cleaned up.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../harness/targets/etcd_process.js";

export { freePort };

export const REPO = resolve(import.meta.dirname, "../..");

export interface RunningServer {
  readonly kind: "etcd" | "etcd-ts";
  readonly endpoint: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export function haveEtcd(): boolean {
  return spawnSync("etcd", ["--version"]).status === 0 && spawnSync("etcdctl", ["version"], { env: { ...process.env, ETCDCTL_API: "3" } }).status === 0;
}

/** Starts `kind` with the same flags; both derive the same member and cluster ids from them. */
export async function startServer(kind: "etcd" | "etcd-ts", extraFlags: readonly string[] = []): Promise<RunningServer> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), `compat-${kind}-`));
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const flags = [
    "--name", "compat", "--data-dir", join(dir, "data"),
    "--listen-client-urls", client, "--advertise-client-urls", client,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `compat=${peer}`, "--initial-cluster-token", "compat-token",
    ...extraFlags,
  ];
  const child = kind === "etcd"
    ? spawn("etcd", flags, { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...flags], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => { log += d.toString(); });
  await waitReady(child, () => log, `127.0.0.1:${clientPort}`);
  return {
    kind, endpoint: `127.0.0.1:${clientPort}`, peerUrl: peer, dataDir: dir,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitReady(child: ChildProcess, log: () => string, endpoint: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${log()}`);
    const r = spawnSync("etcdctl", ["--endpoints", endpoint, "--dial-timeout", "1s", "endpoint", "health"], {
      env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8",
    });
    if (r.status === 0) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`server on ${endpoint} not healthy after 200 polls:\n${log()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

export interface CtlResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl; `killAfterMs` ends a command that never exits by itself (watch) and keeps what it printed. */
export function etcdctl(endpoint: string, args: readonly string[], input?: string, killAfterMs?: number): CtlResult {
  const r = spawnSync("etcdctl", ["--endpoints", endpoint, ...args], {
    env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8", input, timeout: killAfterMs ?? 20_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
