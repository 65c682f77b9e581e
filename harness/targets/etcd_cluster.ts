// An N-member cluster of child processes on 127.0.0.1 (free ports, one temp data dir each): real etcd 3.4 by
// default, or etcd-ts (`bin: process.execPath`, `prefixArgs: [dist/core/cli/main.js]`, see etcdTsCluster in
// make.ts). kill(i) sends a signal to one member (kill -9 = SIGKILL), restart(i) starts it again on its data dir;
// prepareJoin/startJoin bring up a member added through the Cluster API (--initial-cluster-state existing).
// With `clientTls` the members serve clients on https:// URLs only.
//
// Peer faults (isolate(i)/heal(i)): `faults: "flag"` uses etcd-ts's --experimental-peer-fault-injection seam (PUT
// /debug/peer-faults on the member's client port: every raft message to and from it is dropped). Real etcd has
// no such seam, so `faults: "proxy"` puts a userspace TCP proxy in front of every member's peer port (members
// listen on one port and advertise the proxy's). Each peer connection is attributed to its sender by the
// X-Server-From header etcd's rafthttp puts on every stream and pipeline request; isolating member i closes, and
// then refuses, every connection into i's proxy and every connection whose first request came from i. What it
// models: a partition in which connections fail fast (refused/reset, as with an iptables REJECT) while the
// member's clock and client port keep running. What it does not: silent packet loss (a DROP rule), where TCP
// connections hang until keepalives or write deadlines notice; nor asymmetric partitions.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdClient, type ClientOptions, type Status } from "../../core/client/index.js";
import { freePort } from "./etcd_process.js";
import type { Target } from "./target.js";

interface Member {
  readonly name: string;
  readonly clientPort: number;
  /** The port the member listens on for peers. */
  readonly peerPort: number;
  /** The port other members dial (the proxy's in "proxy" fault mode, else peerPort). */
  readonly advertisedPeerPort: number;
  readonly dataDir: string;
  /** "new" for the members of start(), "existing" for one added through the Cluster API. */
  readonly state: "new" | "existing";
  child: ChildProcess | undefined;
  stderrTail: string;
  /** The member id from its first successful Status (lower-case hex, as etcd's X-Server-From header). */
  idHex: string | undefined;
  proxy: PeerProxy | undefined;
  /** Removed from the cluster (or never joined): not part of --initial-cluster for later joins. */
  gone: boolean;
  /** Highest raft term in a "became <role> at term N" log line (raft's log wording), 0 before any. */
  loggedTerm: number;
  /** The unterminated last stderr line, kept until its newline arrives. */
  partialLine: string;
}

/** raft's role-change log line (etcd logs it; Status's raft_term only moves when an entry is applied). */
const ROLE_CHANGE_RE = /became (?:pre-candidate|candidate|follower|leader) at term (\d+)/;

export type PeerFaultMode = "proxy" | "flag";

export interface EtcdClusterOptions {
  readonly bin?: string;
  /** Arguments before the member flags (the script path when bin is node). */
  readonly prefixArgs?: readonly string[];
  /** Extra flags every member gets (e.g. --pre-vote=true, --heartbeat-interval 100). */
  readonly extraArgs?: readonly string[];
  /** Report name (default etcd-N) and description prefix (default "real etcd"). */
  readonly name?: string;
  readonly label?: string;
  readonly startTimeoutMs?: number;
  /** How isolate()/heal() cut a member off (see the file comment); absent: isolate() throws. */
  readonly faults?: PeerFaultMode;
  /**
   * An outside peer proxy: called once per member with its real peer port, resolves the port the member
   * advertises instead (the robustness suite's link-level proxy). Not combined with `faults`.
   */
  readonly peerAdvertise?: (index: number, peerPort: number) => Promise<number>;
  /** Serve clients over TLS (--cert-file --key-file --trusted-ca-file, --client-cert-auth when set). */
  readonly clientTls?: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly trustedCaFile: string;
    readonly clientCertAuth: boolean;
  };
  /** Options of the readiness probe's client beyond its endpoint (TLS credentials for a clientTls cluster). */
  readonly probe?: Omit<ClientOptions, "endpoints">;
}

/** The etcd-ts flag that opens PUT /debug/peer-faults on the client port. */
export const PEER_FAULT_FLAG = "--experimental-peer-fault-injection";

export class EtcdCluster implements Target {
  readonly name: string;
  private members: Member[] = [];
  private ver = "";
  private token = "";
  /** Members cut off by isolate() (indexes). */
  private readonly isolated = new Set<number>();

  constructor(
    private readonly size: number,
    private readonly opts: EtcdClusterOptions = {},
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`cluster size must be a positive integer, got ${size}`);
    this.name = opts.name ?? `etcd-${size}`;
  }

  get describe(): string {
    const faults = this.opts.faults === undefined ? "" : `, peer faults by ${this.opts.faults}`;
    const extra = (this.opts.extraArgs ?? []).length > 0 ? `, ${(this.opts.extraArgs ?? []).join(" ")}` : "";
    return `${this.opts.label ?? "real etcd"} ${this.ver || (this.opts.label === undefined ? "3.4" : "")}, ${this.size} members on loopback${faults}${extra}`.replace(
      / ,/g,
      ",",
    );
  }

  /** Client endpoints of every member this object started (index = member index). */
  endpoints(): string[] {
    return this.members.map((m) => this.endpointOf(m));
  }

  /** endpoint is member i's client endpoint. */
  endpoint(i: number): string {
    return this.endpointOf(this.member(i));
  }

  private endpointOf(m: Member): string {
    return this.opts.clientTls === undefined ? `127.0.0.1:${m.clientPort}` : `https://127.0.0.1:${m.clientPort}`;
  }

  /** memberCount counts every member slot, joined and removed ones included. */
  get memberCount(): number {
    return this.members.length;
  }

  version(): string {
    return this.ver;
  }

  private member(i: number): Member {
    const m = this.members[i];
    if (m === undefined) throw new Error(`no member ${i} of ${this.members.length}`);
    return m;
  }

  private async newMember(i: number, state: "new" | "existing"): Promise<Member> {
    const peerPort = await freePort();
    const outside = this.opts.peerAdvertise;
    const advertisedPeerPort =
      this.opts.faults === "proxy" ? await freePort() : outside !== undefined ? await outside(i, peerPort) : peerPort;
    const m: Member = {
      name: `m${i}`,
      clientPort: await freePort(),
      peerPort,
      advertisedPeerPort,
      state,
      dataDir: mkdtempSync(join(tmpdir(), `etcd-ts-m${i}-`)),
      child: undefined,
      stderrTail: "",
      idHex: undefined,
      proxy: undefined,
      gone: false,
      loggedTerm: 0,
      partialLine: "",
    };
    if (this.opts.faults === "proxy") {
      m.proxy = new PeerProxy(
        i,
        peerPort,
        (src, dst) => this.isolated.has(dst) || (src !== undefined && this.isolated.has(src)),
        (hex) => this.indexOfId(hex),
      );
      await m.proxy.listen(advertisedPeerPort);
    }
    return m;
  }

  private indexOfId(hex: string): number | undefined {
    const i = this.members.findIndex((m) => m.idHex === hex);
    return i < 0 ? undefined : i;
  }

  async start(): Promise<void> {
    if (this.members.length > 0) throw new Error("cluster already started");
    for (let i = 0; i < this.size; i++) this.members.push(await this.newMember(i, "new"));
    this.token = `etcd-ts-${process.pid}-${this.members[0]!.peerPort}`;
    for (const m of this.members) this.spawnMember(m);
    await Promise.all(this.members.map((m) => this.waitReadyMember(m)));
  }

  /** restart starts member i again on its data dir (after kill) and resolves once it serves with a leader. */
  async restart(i: number, opts: { wait?: boolean } = {}): Promise<void> {
    const m = this.member(i);
    if (this.isRunning(i)) throw new Error(`member ${m.name} is running`);
    this.spawnMember(m);
    if (opts.wait ?? true) await this.waitReadyMember(m);
  }

  /** isRunning says whether member i's process is alive. */
  isRunning(i: number): boolean {
    const c = this.member(i).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** exitStatus: how member i's last process ended (undefined while it runs or before it first started). */
  exitStatus(i: number): { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined {
    const c = this.member(i).child;
    if (c === undefined || (c.exitCode === null && c.signalCode === null)) return undefined;
    return { code: c.exitCode, signal: c.signalCode };
  }

  /** pid of member i's process (undefined when not running). */
  pid(i: number): number | undefined {
    return this.isRunning(i) ? this.member(i).child?.pid : undefined;
  }

  /** stderrTail is the last ~2 kB member i wrote to stderr (for error reports). */
  stderrTail(i: number): string {
    return this.member(i).stderrTail;
  }

  /** peerUrl is the URL other members reach member i at. */
  peerUrl(i: number): string {
    return `http://127.0.0.1:${this.member(i).advertisedPeerPort}`;
  }

  /**
   * prepareJoin allocates ports and a data dir for one more member (not started): announce peerUrl through
   * MemberAdd, then startJoin(index).
   */
  async prepareJoin(): Promise<{ index: number; peerUrl: string }> {
    if (this.members.length === 0) throw new Error("start the cluster before adding members");
    const index = this.members.length;
    this.members.push(await this.newMember(index, "existing"));
    return { index, peerUrl: this.peerUrl(index) };
  }

  /** startJoin spawns a member made by prepareJoin with --initial-cluster-state existing; wait: until it serves with a leader. */
  async startJoin(index: number, opts: { wait?: boolean } = {}): Promise<void> {
    const m = this.member(index);
    if (m.state !== "existing") throw new Error(`member ${m.name} was not made by prepareJoin`);
    this.spawnMember(m);
    if (opts.wait ?? true) await this.waitReadyMember(m);
  }

  /** waitReady resolves once member i answers Status with a leader. */
  waitReady(i: number, timeoutMs?: number): Promise<void> {
    return this.waitReadyMember(this.member(i), timeoutMs);
  }

  /** forget marks member i as no longer in the cluster (after MemberRemove, or an add never started); kills it. */
  async forget(i: number): Promise<void> {
    await this.kill(i);
    this.member(i).gone = true;
  }

  private initialCluster(): string {
    return this.members
      .filter((m) => !m.gone)
      .map((m) => `${m.name}=http://127.0.0.1:${m.advertisedPeerPort}`)
      .join(",");
  }

  private spawnMember(m: Member): void {
    const scheme = this.opts.clientTls === undefined ? "http" : "https";
    const tls = this.opts.clientTls;
    const args = [
      ...(this.opts.prefixArgs ?? []),
      "--name",
      m.name,
      "--data-dir",
      m.dataDir,
      "--initial-cluster",
      this.initialCluster(),
      "--initial-cluster-state",
      m.state,
      "--initial-cluster-token",
      this.token,
      "--listen-client-urls",
      `${scheme}://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls",
      `${scheme}://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${m.advertisedPeerPort}`,
      "--logger",
      "zap",
      "--log-outputs",
      "stderr",
      ...(tls === undefined
        ? []
        : ["--cert-file", tls.certFile, "--key-file", tls.keyFile, "--trusted-ca-file", tls.trustedCaFile]),
      ...(tls?.clientCertAuth === true ? ["--client-cert-auth"] : []),
      ...(this.opts.faults === "flag" ? [PEER_FAULT_FLAG] : []),
      ...(this.opts.extraArgs ?? []),
    ];
    m.stderrTail = "";
    const child = spawn(this.opts.bin ?? "etcd", args, { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (b: Buffer) => {
      const text = b.toString("utf8");
      m.stderrTail = (m.stderrTail + text).slice(-2000);
      const lines = (m.partialLine + text).split("\n");
      m.partialLine = (lines.pop() ?? "").slice(-4096);
      for (const line of lines) {
        const t = ROLE_CHANGE_RE.exec(line);
        if (t !== null) m.loggedTerm = Math.max(m.loggedTerm, Number(t[1]));
      }
    });
    m.child = child;
  }

  /**
   * loggedTerm is the highest term member i logged a role change at ("became candidate at term 7"): a member
   * that campaigns while cut off raises its term without applying anything, which Status does not show.
   */
  loggedTerm(i: number): number {
    return this.member(i).loggedTerm;
  }

  private async waitReadyMember(m: Member, timeoutMs = this.opts.startTimeoutMs ?? 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // The client port is polled with plain TCP first: a gRPC connect refused before the member listens puts the
    // channel into reconnect backoff (1 s and growing), which would be timed as start-up.
    while (!(await portAccepts(m.clientPort))) {
      if (m.child?.exitCode !== null) throw new Error(`member ${m.name} exited: ${m.stderrTail.slice(-600)}`);
      if (Date.now() > deadline)
        throw new Error(`member ${m.name}: client port ${m.clientPort} not accepting after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const client = new EtcdClient({ callTimeoutMs: 1_000, ...this.opts.probe, endpoints: [this.endpointOf(m)] });
    try {
      for (;;) {
        if (m.child?.exitCode !== null) throw new Error(`member ${m.name} exited: ${m.stderrTail.slice(-600)}`);
        try {
          const st = await client.status();
          m.idHex = st.header.memberId.toString(16);
          if (st.leader !== 0n) {
            this.ver = st.version;
            return;
          }
        } catch (err) {
          if (Date.now() > deadline)
            throw new Error(`member ${m.name} not ready after ${timeoutMs} ms: ${String(err)}`);
        }
        if (Date.now() > deadline) throw new Error(`member ${m.name} has no leader after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      client.close();
    }
  }

  /** status asks member i for its Status (one call, no failover). */
  async status(i: number, timeoutMs = 1_000): Promise<Status> {
    const client = new EtcdClient({
      callTimeoutMs: timeoutMs,
      dialTimeoutMs: timeoutMs,
      ...this.opts.probe,
      endpoints: [this.endpoint(i)],
    });
    try {
      return await client.status();
    } finally {
      client.close();
    }
  }

  /** leaderIndex is the index of the member the running members agree leads (first answer wins), or -1. */
  async leaderIndex(timeoutMs = 1_000): Promise<number> {
    for (let i = 0; i < this.members.length; i++) {
      if (!this.isRunning(i) || this.member(i).gone) continue;
      try {
        const st = await this.status(i, timeoutMs);
        if (st.leader === 0n) continue;
        const at = this.indexOfId(st.leader.toString(16));
        if (at !== undefined) return at;
      } catch {
        // ask the next member
      }
    }
    return -1;
  }

  /** metricValue reads one un-labelled metric from member i's /metrics (client port); undefined when absent. */
  async metricValue(i: number, metric: string): Promise<number | undefined> {
    const text = await httpText("GET", this.member(i).clientPort, "/metrics");
    const m = new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
    return m === null ? undefined : Number(m[1]);
  }

  /** isolate cuts member i off from every other member's raft traffic (both directions) until heal(i). */
  async isolate(i: number): Promise<void> {
    await this.setFault(i, true);
  }

  async heal(i: number): Promise<void> {
    await this.setFault(i, false);
  }

  private async setFault(i: number, isolate: boolean): Promise<void> {
    const m = this.member(i);
    if (this.opts.faults === "flag") {
      await httpText("PUT", m.clientPort, "/debug/peer-faults", JSON.stringify({ isolate }));
      return;
    }
    if (this.opts.faults !== "proxy") throw new Error(`cluster ${this.name} was started without a peer fault mode`);
    if (isolate) this.isolated.add(i);
    else this.isolated.delete(i);
    for (const x of this.members) x.proxy?.cut();
  }

  /** kill signals member i and resolves once it has exited. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.member(i).child;
    if (child === undefined) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    await exited;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.members.map(async (m, i) => {
        if (m.child !== undefined) {
          const timer = setTimeout(() => m.child?.kill("SIGKILL"), 5_000);
          await this.kill(i, "SIGTERM");
          clearTimeout(timer);
        }
        await m.proxy?.close();
        rmSync(m.dataDir, { recursive: true, force: true });
      }),
    );
    this.members = [];
    this.isolated.clear();
  }
}

/** portAccepts says whether something accepts TCP connections on 127.0.0.1:port. */
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

/** httpText sends one plain HTTP/1.1 request to a member's client port; a non-2xx answer is an error. */
function httpText(method: "GET" | "PUT", port: number, path: string, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method,
        timeout: 5_000,
        headers: body === undefined ? {} : { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve(text);
          else reject(new Error(`${method} ${path} on port ${port}: HTTP ${code} ${text.slice(0, 200)}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} on port ${port}: no answer in 5 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** The most header bytes the proxy reads to find X-Server-From before deciding on a connection. */
const PROXY_HEAD_MAX_BYTES = 16 * 1024;

interface ProxiedConn {
  /**
   * The sender's member id from X-Server-From (undefined: a request without it, e.g. a version probe). Kept as
   * hex and resolved to a member index at each check: connections open before the ids are known (startup).
   */
  readonly fromHex: string | undefined;
  readonly down: Socket;
  readonly up: Socket;
}

/**
 * PeerProxy forwards one member's advertised peer port to its real one and drops what `blocked(src, dst)` says
 * is cut: new connections are closed after their request head is read, cut() closes the open ones.
 */
class PeerProxy {
  private server: Server | undefined;
  private readonly conns = new Set<ProxiedConn>();
  private readonly pending = new Set<Socket>();

  constructor(
    private readonly dst: number,
    private readonly upstreamPort: number,
    private readonly blocked: (src: number | undefined, dst: number) => boolean,
    private readonly sourceOf: (idHex: string) => number | undefined,
  ) {}

  listen(port: number): Promise<void> {
    const server = createServer((sock) => this.accept(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  }

  private accept(down: Socket): void {
    this.pending.add(down);
    let head = Buffer.alloc(0);
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b]);
      if (head.indexOf("\r\n\r\n") < 0 && head.length < PROXY_HEAD_MAX_BYTES) return;
      down.off("data", onData);
      down.pause();
      this.pending.delete(down);
      this.forward(down, head);
    };
    down.on("data", onData);
    down.on("error", () => down.destroy());
    down.on("close", () => this.pending.delete(down));
    if (this.blocked(undefined, this.dst)) down.destroy();
  }

  private forward(down: Socket, head: Buffer): void {
    const from = /\r\nx-server-from:\s*([0-9a-f]+)\r\n/i.exec(head.toString("latin1"))?.[1]?.toLowerCase();
    if (this.blocked(this.src(from), this.dst)) {
      down.destroy();
      return;
    }
    const up = connect(this.upstreamPort, "127.0.0.1");
    const conn: ProxiedConn = { fromHex: from, down, up };
    this.conns.add(conn);
    const drop = (): void => {
      this.conns.delete(conn);
      down.destroy();
      up.destroy();
    };
    up.on("error", drop).on("close", drop);
    down.on("close", drop);
    up.write(head);
    down.pipe(up);
    up.pipe(down);
  }

  private src(fromHex: string | undefined): number | undefined {
    return fromHex === undefined ? undefined : this.sourceOf(fromHex);
  }

  /** cut closes every open connection that is now blocked (and pending ones when this member is cut off). */
  cut(): void {
    for (const c of [...this.conns]) {
      if (!this.blocked(this.src(c.fromHex), this.dst)) continue;
      this.conns.delete(c);
      c.down.destroy();
      c.up.destroy();
    }
    if (this.blocked(undefined, this.dst)) for (const s of [...this.pending]) s.destroy();
  }

  close(): Promise<void> {
    for (const c of this.conns) {
      c.down.destroy();
      c.up.destroy();
    }
    for (const s of this.pending) s.destroy();
    this.conns.clear();
    this.pending.clear();
    const server = this.server;
    this.server = undefined;
    return server === undefined ? Promise.resolve() : new Promise((r) => server.close(() => r()));
  }
}
