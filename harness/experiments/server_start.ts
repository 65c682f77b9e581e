// Starting one etcd or etcd-ts member for a server benchmark: a child process on loopback with a fresh data dir,
// timed from spawn to the client port accepting and to the first successful put; and reading its memory.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { execPath } from "node:process";
import { EtcdClient } from "../../core/client/index.js";
import { singleMemberFlags } from "../targets/etcd_process.js";
import { freePort, makeDataDir, portAccepts, ServerProcess, waitUntil } from "../targets/launcher.js";
import { ETCD_TS_UNAVAILABLE, etcdTsEntry } from "../targets/make.js";
import type { TargetSpec } from "../targets/target.js";
import { putUntilServing, START_LIMIT_MS } from "./server_process.js";

/** A server started by this experiment: a child process on loopback with a fresh data dir. */
export interface Server {
  readonly endpoints: string[];
  readonly pid: number;
  readonly version: string;
  /** ms from spawn to the client port accepting, and to the first successful put. */
  readonly listenMs: number;
  readonly readyMs: number;
  stop(): Promise<void>;
}

/** statusKib reads one "Vm…: N kB" line of /proc/<pid>/status. */
export function statusKib(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** The command line that starts `spec` as one member, with the flags harness/targets/etcd_process.ts passes. */
function commandFor(spec: TargetSpec, dataDir: string, clientPort: number, peerPort: number): [string, string[]] {
  const flags = singleMemberFlags(dataDir, { client: clientPort, peer: peerPort });
  if (spec.kind === "etcd") return ["etcd", flags];
  if (spec.kind !== "etcd-ts") throw new Error(`cannot start ${spec.kind} targets`);
  const entry = etcdTsEntry();
  if (entry === undefined) throw new Error(ETCD_TS_UNAVAILABLE);
  return [execPath, [entry, ...flags, "--backend-read-mode", spec.readMode]];
}

/**
 * startServer spawns `spec` on a fresh data dir and times spawn → client port accepting → first successful put.
 * The port is polled every 5 ms before a gRPC client is made, so no gRPC reconnect backoff is in the time.
 * (harness/targets polls Status every 100 ms and does not expose the pid: too coarse for a ≤ 1 s target.)
 */
export async function startServer(spec: TargetSpec): Promise<Server> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = makeDataDir("etcd-ts-bench-");
  const proc = new ServerProcess({ label: spec.kind, dataDir, ports: [clientPort, peerPort] });
  const stop = (): Promise<void> => proc.dispose();
  const endpoints = [`127.0.0.1:${clientPort}`];
  try {
    const [bin, args] = commandFor(spec, dataDir, clientPort, peerPort);
    proc.spawn(bin, args);
    const deadline = Date.now() + START_LIMIT_MS;
    await waitUntil(proc, `client port ${clientPort} accepting`, { deadline, intervalMs: 5 }, () =>
      portAccepts(clientPort),
    );
    const listenMs = performance.now() - proc.startedAt;
    const client = new EtcdClient({ endpoints, callTimeoutMs: 2_000 });
    try {
      await putUntilServing(proc, client, { deadline, intervalMs: 5 });
      const readyMs = performance.now() - proc.startedAt;
      const version = (await client.status()).version;
      return { endpoints, pid: proc.pid ?? 0, version, listenMs, readyMs, stop };
    } finally {
      client.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
