// Multi-member clusters of real processes on 127.0.0.1 for the cluster tests: etcd-ts (dist/core/cli/main.js) or
// real etcd 3.4, started with the same etcd flags through the harness's launcher (free ports, one temp data dir
// each, always cleaned up). Members can be killed (-9), restarted on their data dir, and added at runtime
// (--initial-cluster-state existing).
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { ServerProcess, freePort, makeDataDir, waitUntil } from "../../harness/targets/launcher.js";

export const REPO = resolve(import.meta.dirname, "../..");
export type Kind = "etcd" | "etcd-ts";

/** How much of a member's stderr is kept for the tests that read its log. */
const LOG_CHARS = 20_000;

/** One member's name, ports and data dir, and its process slot (started again on the same data dir). */
export class MemberProc {
  readonly proc: ServerProcess;
  /** stderr lines of every run so far (a restart adds to it), up to LOG_CHARS. */
  #log = "";

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
  ) {
    this.proc = new ServerProcess({
      label: `member ${name}`,
      ports: [clientPort, peerPort],
      onLine: (line) => (this.#log = `${this.#log}${line}\n`.slice(-LOG_CHARS)),
    });
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** The end of what the member has written to stderr, over all its runs. */
  get log(): string {
    return this.#log;
  }

  /** The last run's exit code (null when a signal ended it; undefined while it runs or before it ran). */
  get exitCode(): number | null | undefined {
    return this.proc.exitStatus?.code;
  }

  /** The signal that ended the last run, if one did. */
  get signal(): NodeJS.Signals | null | undefined {
    return this.proc.exitStatus?.signal;
  }
}

export interface ClusterOptions {
  /** Extra flags for every member (both kinds must accept them). */
  readonly flags?: readonly string[];
  /** Flags only etcd-ts gets. */
  readonly etcdTsFlags?: readonly string[];
  readonly token?: string;
  /** https for peer TLS (the flags then name the certificates). */
  readonly peerScheme?: "http" | "https";
  /** Environment variables for one member's etcd-ts process, every time it starts. */
  readonly memberEnv?: (m: MemberProc) => Readonly<Record<string, string>>;
}

export class LocalCluster {
  readonly members: MemberProc[] = [];
  readonly #root: string;

  constructor(
    readonly kind: Kind,
    readonly opts: ClusterOptions = {},
  ) {
    this.#root = makeDataDir(`etcd-ts-cluster-${kind}-`);
  }

  get token(): string {
    return this.opts.token ?? `tok-${this.kind}-${process.pid}`;
  }

  endpoint(i: number): string {
    return `127.0.0.1:${this.member(i).clientPort}`;
  }

  endpoints(): string {
    return this.members
      .filter((m) => m.running)
      .map((m) => `127.0.0.1:${m.clientPort}`)
      .join(",");
  }

  peerUrl(m: MemberProc): string {
    return `${this.opts.peerScheme ?? "http"}://127.0.0.1:${m.peerPort}`;
  }

  member(i: number): MemberProc {
    const m = this.members[i];
    if (m === undefined) throw new Error(`no member ${i} of ${this.members.length}`);
    return m;
  }

  async newMember(name: string): Promise<MemberProc> {
    const m = new MemberProc(name, await freePort(), await freePort(), join(this.#root, name));
    this.members.push(m);
    return m;
  }

  /** Bootstraps a new cluster of `n` members and waits until every one answers with a leader. */
  async start(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.newMember(`m${i}`);
    const initial = this.members.map((m) => `${m.name}=${this.peerUrl(m)}`).join(",");
    for (const m of this.members) this.spawn(m, initial, "new");
    for (let i = 0; i < n; i++) await this.waitServing(i);
  }

  /** Starts a member added with `member add` (its --initial-cluster lists every running member plus itself). */
  join(m: MemberProc, extraFlags: readonly string[] = []): void {
    const initial = this.members
      .filter((x) => x === m || x.running)
      .map((x) => `${x.name}=${this.peerUrl(x)}`)
      .join(",");
    this.spawn(m, initial, "existing", extraFlags);
  }

  spawn(
    m: MemberProc,
    initialCluster: string,
    state: "new" | "existing",
    extraFlags: readonly string[] = [],
    env: Readonly<Record<string, string>> = {},
  ): void {
    const args = [
      "--name",
      m.name,
      "--data-dir",
      m.dataDir,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-state",
      state,
      "--initial-cluster-token",
      this.token,
      "--listen-client-urls",
      `http://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls",
      this.peerUrl(m),
      "--initial-advertise-peer-urls",
      this.peerUrl(m),
      ...(this.opts.flags ?? []),
      ...(this.kind === "etcd-ts" ? (this.opts.etcdTsFlags ?? []) : []),
      ...extraFlags,
    ];
    if (this.kind === "etcd") m.proc.spawn("etcd", args);
    else
      m.proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args], {
        env: { ...process.env, ...this.opts.memberEnv?.(m), ...env },
      });
  }

  /** Restarts a stopped member on its data dir (the --initial-cluster flags are ignored then, as etcd does). */
  restart(i: number, env: Readonly<Record<string, string>> = {}): void {
    const m = this.member(i);
    if (m.running) throw new Error(`member ${m.name} is running`);
    this.spawn(m, `${m.name}=${this.peerUrl(m)}`, "new", [], env);
  }

  /** Waits until member i answers `endpoint status` with a leader (fails at once if it exits). */
  async waitServing(i: number, timeoutMs = 30_000): Promise<void> {
    const m = this.member(i);
    const opts = { deadline: Date.now() + timeoutMs, intervalMs: 200 };
    try {
      await waitUntil(m.proc, "serving with a leader", opts, async () => {
        const r = ctl(this.endpoint(i), ["endpoint", "status", "-w", "json"], 3_000);
        if (r.status !== 0) throw new Error(r.stderr.trim());
        return /"leader":[1-9]/.test(r.stdout);
      });
    } catch (err) {
      throw new Error(`${String(err)}: ${m.log.slice(-1500)}`);
    }
  }

  /** Sends `signal` to member i and resolves once it has exited. */
  kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    return this.member(i).proc.kill(signal);
  }

  /** Resolves once member i's process has exited (at once when it does not run). */
  exited(i: number): Promise<void> {
    const m = this.member(i);
    return m.running ? m.proc.exited() : Promise.resolve();
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.proc.dispose(5_000)));
    rmSync(this.#root, { recursive: true, force: true });
  }
}

export interface CtlResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real etcdctl (v3 API) against `endpoints`, bounded in time. */
export function ctl(endpoints: string, args: readonly string[], timeoutMs = 20_000): CtlResult {
  const r = spawnSync(
    "etcdctl",
    ["--endpoints", endpoints, "--command-timeout", `${Math.max(1, Math.floor(timeoutMs / 1000) - 1)}s`, ...args],
    {
      env: { ...process.env, ETCDCTL_API: "3" },
      encoding: "utf8",
      timeout: timeoutMs,
    },
  );
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** etcdctl endpoint status as JSON for one endpoint. */
export function status(endpoint: string): {
  leader: bigint;
  memberId: bigint;
  raftTerm: number;
  raftIndex: number;
  isLearner: boolean;
} {
  const r = ctl(endpoint, ["endpoint", "status", "-w", "json"], 5_000);
  if (r.status !== 0) throw new Error(`endpoint status ${endpoint}: ${r.stderr}`);
  const j = JSON.parse(r.stdout.replace(/"(leader|member_id|cluster_id)":(\d+)/g, '"$1":"$2"')) as {
    Status: {
      header: { member_id: string; raft_term: number };
      leader?: string;
      raftIndex: number;
      isLearner?: boolean;
    };
  }[];
  const st = j[0]?.Status;
  if (st === undefined) throw new Error(`endpoint status ${endpoint}: ${r.stdout}`);
  // etcdctl's JSON leaves out zero fields: no "leader" while the member knows none (an election under way).
  return {
    leader: BigInt(st.leader ?? 0),
    memberId: BigInt(st.header.member_id),
    raftTerm: st.header.raft_term,
    raftIndex: st.raftIndex,
    isLearner: st.isLearner === true,
  };
}

export function hex(id: bigint): string {
  return id.toString(16);
}
