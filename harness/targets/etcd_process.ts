// One etcd or etcd-ts member as a child process (through the harness's launcher): 127.0.0.1 with free ports and a
// temporary data dir, started and waited for through a Status call, stopped with SIGTERM (SIGKILL after a grace
// period), data dir removed.
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { EtcdClient } from "../../core/client/index.js";
import { freePort, makeDataDir, ServerProcess, waitUntil } from "./launcher.js";
import type { Target } from "./target.js";

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
  private proc: ServerProcess | undefined;
  private clientUrl = "";
  private ver = "";

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
    if (this.proc !== undefined) throw new Error("etcd already started");
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const dataDir = makeDataDir("etcd-ts-bench-", this.opts.dataParent);
    const proc = new ServerProcess({
      label: this.opts.label ?? "etcd",
      dataDir,
      ports: [clientPort, peerPort],
      tailChars: 4000,
    });
    this.proc = proc;
    this.clientUrl = `127.0.0.1:${clientPort}`;
    const args = [
      ...singleMemberFlags(dataDir, { client: clientPort, peer: peerPort }),
      ...(this.opts.extraArgs ?? []),
    ];
    proc.spawn(this.opts.bin ?? "etcd", [...(this.opts.prefixArgs ?? []), ...args]);
    await this.waitReady(proc);
  }

  private async waitReady(proc: ServerProcess): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 15_000);
    const client = new EtcdClient({ endpoints: [this.clientUrl], callTimeoutMs: 1_000 });
    try {
      await waitUntil(proc, "a Status answer", { deadline, intervalMs: 100 }, async () => {
        this.ver = (await client.status()).version;
        return true;
      });
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    await proc?.dispose();
  }
}

/**
 * The flags every benchmark starts one member with, etcd and etcd-ts alike: loopback URLs on the given ports
 * (clients on https:// when the caller adds the certificate flags), zap logs on stderr, and an 8 GiB quota so no
 * bench runs into NOSPACE.
 */
export function singleMemberFlags(
  dataDir: string,
  ports: { readonly client: number; readonly peer: number },
  clientScheme: "http" | "https" = "http",
): string[] {
  const client = `${clientScheme}://127.0.0.1:${ports.client}`;
  const peer = `http://127.0.0.1:${ports.peer}`;
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
