// Starting real etcd 3.4 and etcd-ts the same way for differential tests, through the harness's EtcdProcess
// (same flags, 127.0.0.1 free ports, temp data dirs, waited on until they answer, always cleaned up), and
// running the real etcdctl against them.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";
import { freePort } from "../../harness/targets/launcher.js";

export { freePort };

export const REPO = resolve(import.meta.dirname, "../..");

export interface RunningServer {
  readonly kind: "etcd" | "etcd-ts";
  readonly endpoint: string;
  /** The member's peer URL (its port, and so its member id, differs between the two servers). */
  readonly peerUrl: string;
  stop(): Promise<void>;
}

export function haveEtcd(): boolean {
  return (
    spawnSync("etcd", ["--version"]).status === 0 &&
    spawnSync("etcdctl", ["version"], { env: { ...process.env, ETCDCTL_API: "3" } }).status === 0
  );
}

/** Starts `kind` with the same flags (plus extraFlags); both derive member and cluster ids from them alike. */
export async function startServer(
  kind: "etcd" | "etcd-ts",
  extraFlags: readonly string[] = [],
): Promise<RunningServer> {
  const proc =
    kind === "etcd"
      ? new EtcdProcess({ name: kind, extraArgs: extraFlags })
      : new EtcdProcess({
          name: kind,
          label: "etcd-ts",
          bin: process.execPath,
          prefixArgs: [join(REPO, "dist/core/cli/main.js")],
          extraArgs: extraFlags,
        });
  await proc.start();
  const endpoint = proc.endpoints()[0] ?? "";
  const members = etcdctl(endpoint, ["member", "list", "-w", "json"]);
  const peerUrl = /"peerURLs":\["([^"]+)"/.exec(members.stdout)?.[1];
  if (peerUrl === undefined) {
    await proc.stop();
    throw new Error(`${kind}: no peer URL in member list: ${members.stdout} ${members.stderr}`);
  }
  return { kind, endpoint, peerUrl, stop: () => proc.stop() };
}

export interface CtlResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl; `killAfterMs` ends a command that never exits by itself (watch) and keeps what it printed. */
export function etcdctl(endpoint: string, args: readonly string[], input?: string, killAfterMs?: number): CtlResult {
  const r = spawnSync("etcdctl", ["--endpoints", endpoint, ...args], {
    env: { ...process.env, ETCDCTL_API: "3" },
    encoding: "utf8",
    input,
    timeout: killAfterMs ?? 20_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
