// Real etcd 3.4 as a child process: one member on 127.0.0.1 with free ports and a temporary data dir, started
// and waited for through a Status call, stopped with SIGTERM (SIGKILL after a grace period), data dir removed.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdClient } from "../../core/client/index.js";
import type { Target } from "./target.js";

/** freePort asks the kernel for an unused loopback port (bind :0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no port from listen(0)"))));
    });
  });
}

/** etcdBinaryVersion returns "3.4.23" from `etcd --version`, or undefined when etcd is not on PATH. */
export function etcdBinaryVersion(bin = "etcd"): string | undefined {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

export interface EtcdProcessOptions {
  readonly bin?: string;
  /** Arguments before etcd's flags (e.g. the script path when bin is node). */
  readonly prefixArgs?: readonly string[];
  /** Report name (default "etcd") and description prefix (default "real etcd"). */
  readonly name?: string;
  readonly label?: string;
  /** Parent of the temporary data dir (default: the OS temp dir; /dev/shm for a RAM medium). */
  readonly dataParent?: string;
  readonly startTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
}

export class EtcdProcess implements Target {
  readonly name: string;
  private child: ChildProcess | undefined;
  private dataDir: string | undefined;
  private clientUrl = "";
  private ver = "";
  private stderrTail = "";

  constructor(private readonly opts: EtcdProcessOptions = {}) {
    this.name = opts.name ?? "etcd";
  }

  get describe(): string {
    return `${this.opts.label ?? "real etcd"} ${this.ver || "3.4"}, 1 member, data dir in ${this.opts.dataParent ?? tmpdir()}${(this.opts.extraArgs ?? []).length > 0 ? `, ${(this.opts.extraArgs ?? []).join(" ")}` : ""}`;
  }

  endpoints(): string[] {
    return [this.clientUrl];
  }

  version(): string {
    return this.ver;
  }

  async start(): Promise<void> {
    if (this.child !== undefined) throw new Error("etcd already started");
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    this.dataDir = mkdtempSync(join(this.opts.dataParent ?? tmpdir(), "etcd-ts-bench-"));
    this.clientUrl = `127.0.0.1:${clientPort}`;
    const args = [...singleMemberFlags(this.dataDir, clientPort, peerPort), ...(this.opts.extraArgs ?? [])];
    const child = spawn(this.opts.bin ?? "etcd", [...(this.opts.prefixArgs ?? []), ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    child.stderr?.on("data", (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString("utf8")).slice(-4000);
    });
    await this.waitReady(child);
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 15_000);
    const client = new EtcdClient({ endpoints: [this.clientUrl], callTimeoutMs: 1_000 });
    try {
      for (;;) {
        if (child.exitCode !== null)
          throw new Error(`etcd exited with ${child.exitCode}: ${this.stderrTail.slice(-800)}`);
        try {
          const st = await client.status();
          this.ver = st.version;
          return;
        } catch (err) {
          if (Date.now() > deadline)
            throw new Error(`etcd not ready after ${this.opts.startTimeoutMs ?? 15_000} ms: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.dataDir !== undefined) rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = undefined;
  }
}

/**
 * The flags every benchmark starts one member with, etcd and etcd-ts alike: loopback URLs on the given ports, zap
 * logs on stderr, and an 8 GiB quota so no bench runs into NOSPACE.
 */
export function singleMemberFlags(dataDir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    "--name",
    "bench",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    peer,
    "--initial-cluster",
    `bench=${peer}`,
    "--logger",
    "zap",
    "--log-outputs",
    "stderr",
    "--quota-backend-bytes",
    String(8 * 1024 * 1024 * 1024),
  ];
}
