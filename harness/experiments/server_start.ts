// Starting one etcd or etcd-ts member for a server benchmark: a child process on loopback with a fresh data dir,
// timed from spawn to the client port accepting and to the first successful put; and reading its memory.
import { mkdtempSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execPath } from "node:process";
import { EtcdClient } from "../../core/client/index.js";
import { freePort, singleMemberFlags } from "../targets/etcd_process.js";
import { ETCD_TS_UNAVAILABLE, etcdTsEntry } from "../targets/make.js";
import type { TargetSpec } from "../targets/target.js";
import { putUntilServing, spawnServer } from "./server_process.js";
import { setTimeout as pause } from "node:timers/promises";

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
  const flags = singleMemberFlags(dataDir, clientPort, peerPort);
  if (spec.kind === "etcd") return ["etcd", flags];
  if (spec.kind !== "etcd-ts") throw new Error(`cannot start ${spec.kind} targets`);
  const entry = etcdTsEntry();
  if (entry === undefined) throw new Error(ETCD_TS_UNAVAILABLE);
  return [execPath, [entry, ...flags, "--backend-read-mode", spec.readMode]];
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => {
      sock.destroy();
      resolve(false);
    });
  });
}

/**
 * startServer spawns `spec` on a fresh data dir and times spawn → client port accepting → first successful put.
 * The port is polled every 5 ms before a gRPC client is made, so no gRPC reconnect backoff is in the time.
 * (harness/targets polls Status every 100 ms and does not expose the pid: too coarse for a ≤ 1 s target.)
 */
export async function startServer(spec: TargetSpec): Promise<Server> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-bench-"));
  const [bin, args] = commandFor(spec, dataDir, clientPort, peerPort);
  const proc = spawnServer(bin, args, dataDir, bin);
  const { t0, alive, stop } = proc;
  const endpoints = [`127.0.0.1:${clientPort}`];
  try {
    while (!(await portAccepts(clientPort))) {
      alive();
      await pause(5);
    }
    const listenMs = performance.now() - t0;
    const client = new EtcdClient({ endpoints, callTimeoutMs: 2_000 });
    try {
      await putUntilServing(client, alive, 5);
      const readyMs = performance.now() - t0;
      const version = (await client.status()).version;
      return { endpoints, pid: proc.pid, version, listenMs, readyMs, stop };
    } finally {
      client.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
