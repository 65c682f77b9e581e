// An N-member cluster of child processes on 127.0.0.1 (free ports, one temp data dir each): real etcd 3.4 by
// default, or etcd-ts (`bin: process.execPath`, `prefixArgs: [dist/core/cli/main.js]`, see etcdTsCluster in
// make.ts). kill(i) sends a signal to one member (kill -9 = SIGKILL), restart(i) starts it again on its data dir;
// prepareJoin/startJoin bring up a member added through the Cluster API (--initial-cluster-state existing).
// With `clientTls` the members serve clients on https:// URLs only.
//
// Peer faults (isolate(i)/heal(i)): `faults: "flag"` uses etcd-ts's --experimental-peer-fault-injection seam (PUT
// /debug/peer-faults on the member's client port: every raft message to and from it is dropped). Real etcd has
// no such seam, so `faults: "proxy"` puts every member's peer port behind the harness's peer proxy
// (peer_proxy.ts), which cuts an isolated member's connections and refuses new ones.
import { request } from "node:http";
import { EtcdClient, type ClientOptions, type Status } from "../../core/client/index.js";
import { freePort, makeDataDir, portAccepts, ServerProcess, waitUntil } from "./launcher.js";
import { PeerLinks } from "./peer_proxy.js";
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
  readonly proc: ServerProcess;
  /** The member id from its first successful Status (lower-case hex, as etcd's X-Server-From header). */
  idHex: string | undefined;
  /** Removed from the cluster (or never joined): not part of --initial-cluster for later joins. */
  gone: boolean;
  /** Highest raft term in a "became <role> at term N" log line (raft's log wording), 0 before any. */
  loggedTerm: number;
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
  /** The peer proxy of "proxy" fault mode (made by start()). */
  private links: PeerLinks | undefined;

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
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const outside = this.opts.peerAdvertise;
    const advertisedPeerPort =
      this.links !== undefined
        ? await this.links.listen(i, peerPort)
        : outside !== undefined
          ? await outside(i, peerPort)
          : peerPort;
    const name = `m${i}`;
    const dataDir = makeDataDir(`etcd-ts-m${i}-`);
    const m: Member = {
      name,
      clientPort,
      peerPort,
      advertisedPeerPort,
      state,
      dataDir,
      proc: new ServerProcess({
        label: `member ${name}`,
        dataDir,
        ports: [clientPort, peerPort],
        onLine: (line) => {
          const t = ROLE_CHANGE_RE.exec(line);
          if (t !== null) m.loggedTerm = Math.max(m.loggedTerm, Number(t[1]));
        },
      }),
      idHex: undefined,
      gone: false,
      loggedTerm: 0,
    };
    return m;
  }

  private indexOfId(hex: string): number | undefined {
    const i = this.members.findIndex((m) => m.idHex === hex);
    return i < 0 ? undefined : i;
  }

  async start(): Promise<void> {
    if (this.members.length > 0) throw new Error("cluster already started");
    if (this.opts.faults === "proxy") this.links = new PeerLinks();
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
    return this.member(i).proc.running;
  }

  /** exitStatus: how member i's last process ended (undefined while it runs or before it first started). */
  exitStatus(i: number): { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined {
    return this.member(i).proc.exitStatus;
  }

  /** pid of member i's process (undefined when not running). */
  pid(i: number): number | undefined {
    return this.member(i).proc.pid;
  }

  /** stderrTail is the last ~2 kB member i wrote to stderr (for error reports). */
  stderrTail(i: number): string {
    return this.member(i).proc.stderrTail;
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
    m.proc.spawn(this.opts.bin ?? "etcd", args);
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
    await waitUntil(m.proc, `client port ${m.clientPort} accepting`, { deadline, intervalMs: 20 }, () =>
      portAccepts(m.clientPort),
    );
    const client = new EtcdClient({ callTimeoutMs: 1_000, ...this.opts.probe, endpoints: [this.endpointOf(m)] });
    try {
      await waitUntil(m.proc, "a Status naming a leader", { deadline, intervalMs: 50 }, async () => {
        const st = await client.status();
        m.idHex = st.header.memberId.toString(16);
        this.links?.ids.set(m.idHex, this.members.indexOf(m));
        if (st.leader === 0n) return false;
        this.ver = st.version;
        return true;
      });
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
    const links = this.links;
    if (links === undefined) throw new Error(`cluster ${this.name} was started without a peer fault mode`);
    if (isolate) links.isolate(i);
    else links.heal(i);
  }

  /** kill signals member i and resolves once it has exited. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.member(i).proc.kill(signal);
  }

  /** signal sends member i a signal without waiting (SIGSTOP to pause it, SIGCONT to resume). */
  signal(i: number, signal: NodeJS.Signals): void {
    this.member(i).proc.signal(signal);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.proc.dispose()));
    await this.links?.close();
    this.members = [];
    this.links = undefined;
  }
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
