// Real etcd 3.4 as an N-member cluster of child processes on 127.0.0.1 (free ports, one temp data dir each),
// for failover tests and multi-member runs. kill(i) sends a signal to one member (kill -9 = SIGKILL), restart(i)
// starts it again on its data dir. With `clientTls` the members serve clients on https:// URLs only.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdClient, type ClientOptions } from "../../core/client/index.js";
import { freePort } from "./etcd_process.js";
import type { Target } from "./target.js";

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | undefined;
  stderrTail: string;
}

export interface EtcdClusterOptions {
  readonly bin?: string;
  readonly startTimeoutMs?: number;
  /** Serve clients over TLS (--cert-file --key-file --trusted-ca-file, --client-cert-auth when set). */
  readonly clientTls?: { readonly certFile: string; readonly keyFile: string; readonly trustedCaFile: string; readonly clientCertAuth: boolean };
  /** Options of the readiness probe's client beyond its endpoint (TLS credentials for a clientTls cluster). */
  readonly probe?: Omit<ClientOptions, "endpoints">;
}

export class EtcdCluster implements Target {
  readonly name: string;
  private members: Member[] = [];
  private ver = "";
  private initialCluster = "";

  constructor(private readonly size: number, private readonly opts: EtcdClusterOptions = {}) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`cluster size must be a positive integer, got ${size}`);
    this.name = `etcd-${size}`;
  }

  get describe(): string {
    return `real etcd ${this.ver || "3.4"}, ${this.size} members on loopback`;
  }

  endpoints(): string[] {
    return this.members.map((m) => this.endpoint(m));
  }

  private endpoint(m: Member): string {
    return this.opts.clientTls === undefined ? `127.0.0.1:${m.clientPort}` : `https://127.0.0.1:${m.clientPort}`;
  }

  version(): string {
    return this.ver;
  }

  async start(): Promise<void> {
    if (this.members.length > 0) throw new Error("cluster already started");
    for (let i = 0; i < this.size; i++) {
      this.members.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: mkdtempSync(join(tmpdir(), `etcd-ts-m${i}-`)), child: undefined, stderrTail: "" });
    }
    this.initialCluster = this.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",");
    for (const m of this.members) this.spawnMember(m);
    await Promise.all(this.members.map((m) => this.waitReady(m)));
  }

  /** restart starts member i again on its data dir (after kill) and resolves once it serves with a leader. */
  async restart(i: number): Promise<void> {
    const m = this.members[i];
    if (m === undefined) throw new Error(`no member ${i} of ${this.members.length}`);
    if (m.child !== undefined && m.child.exitCode === null && m.child.signalCode === null) throw new Error(`member ${m.name} is running`);
    this.spawnMember(m);
    await this.waitReady(m);
  }

  private spawnMember(m: Member): void {
    const scheme = this.opts.clientTls === undefined ? "http" : "https";
    const tls = this.opts.clientTls;
    const args = [
      "--name", m.name, "--data-dir", m.dataDir, "--initial-cluster", this.initialCluster, "--initial-cluster-state", "new",
      "--initial-cluster-token", `etcd-ts-${process.pid}-${this.members[0]!.peerPort}`,
      "--listen-client-urls", `${scheme}://127.0.0.1:${m.clientPort}`, "--advertise-client-urls", `${scheme}://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--logger", "zap", "--log-outputs", "stderr",
      ...(tls === undefined ? [] : ["--cert-file", tls.certFile, "--key-file", tls.keyFile, "--trusted-ca-file", tls.trustedCaFile]),
      ...(tls?.clientCertAuth === true ? ["--client-cert-auth"] : []),
    ];
    const child = spawn(this.opts.bin ?? "etcd", args, { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (b: Buffer) => (m.stderrTail = (m.stderrTail + b.toString("utf8")).slice(-2000)));
    m.child = child;
  }

  private async waitReady(m: Member): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    const client = new EtcdClient({ callTimeoutMs: 1_000, ...this.opts.probe, endpoints: [this.endpoint(m)] });
    try {
      for (;;) {
        if (m.child?.exitCode !== null) throw new Error(`member ${m.name} exited: ${m.stderrTail.slice(-600)}`);
        try {
          const st = await client.status();
          if (st.leader !== 0n) {
            this.ver = st.version;
            return;
          }
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`member ${m.name} not ready after ${timeoutMs} ms: ${String(err)}`);
        }
        if (Date.now() > deadline) throw new Error(`member ${m.name} has no leader after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
  }

  /** kill signals member i and resolves once it has exited. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.members[i]?.child;
    if (child === undefined) throw new Error(`no member ${i} of ${this.members.length}`);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    await exited;
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map(async (m, i) => {
      if (m.child !== undefined) {
        const timer = setTimeout(() => m.child?.kill("SIGKILL"), 5_000);
        await this.kill(i, "SIGTERM");
        clearTimeout(timer);
      }
      rmSync(m.dataDir, { recursive: true, force: true });
    }));
    this.members = [];
  }
}
