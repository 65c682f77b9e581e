// One grpc-js channel per endpoint, shared by the six service clients of that endpoint, and the round-robin
// balancer of etcd 3.4's client: there is one current endpoint; when a call to it fails with UNAVAILABLE the
// client moves to the next endpoint in order, tracking no health list (a stale "unhealthy" list is what made
// kube-apiserver lose etcd in 3.3). One TLS bundle serves every https:// endpoint, each channel checking the
// server name of its own endpoint. Which calls are retried is plain data (RETRY_POLICY). The auth token (from
// username/password) rides in every call's metadata and is refreshed once on `etcdserver: invalid auth token`.
import * as grpc from "@grpc/grpc-js";
import { loadEtcdProto, type ServiceName } from "../api/proto/load.js";
import type * as pb from "../api/proto/types.js";
import { EtcdError } from "../errors.js";
import { parseEndpoints, type Endpoint } from "./endpoints.js";
import { CLIENT_ERROR_CODES, ClientCallError, isUnavailable, toClientError } from "./errors.js";

/** One credential set for every https:// endpoint (etcd 3.4's single TLS bundle); PEM bytes or text. */
export interface TlsOptions {
  /** CA that signed the servers' certificates (absent: the system roots). */
  readonly ca?: Buffer | string;
  /** Client certificate and key, for servers started with --client-cert-auth. */
  readonly cert?: Buffer | string;
  readonly key?: Buffer | string;
}

export interface ConnectionOptions {
  readonly endpoints: readonly string[];
  /** Per-call deadline in ms unless a call gives its own. */
  readonly callTimeoutMs?: number;
  /** How long a call may wait for some endpoint to connect before DIAL_TIMEOUT (default 5000; ≤ its timeout). */
  readonly dialTimeoutMs?: number;
  /** gRPC keepalive: ping an endpoint after this long without traffic while calls are open (default 30000). */
  readonly keepAliveTimeMs?: number;
  /** gRPC keepalive: close the connection when a ping is not answered within this (default 10000). */
  readonly keepAliveTimeoutMs?: number;
  readonly tls?: TlsOptions;
  /** Authenticate as this user on first use; the token is sent with every call. */
  readonly username?: string;
  readonly password?: string;
  /** Refresh the endpoint list from MemberList every this many ms (0 = off, the default, as etcd's client). */
  readonly autoSyncIntervalMs?: number;
}

/**
 * RETRY_POLICY: when a call moves to the next endpoint and when it is sent again. A request that never left
 * the client (no connection to the endpoint) goes to the next endpoint whatever the method; one that may have
 * reached a server is sent again only for the repeatable methods (reads and calls etcd's client also repeats):
 * a Put, DeleteRange, Txn, Compact, LeaseGrant, member change … that failed with UNAVAILABLE may have been
 * applied, so the caller gets the error and decides.
 */
export const RETRY_POLICY = {
  /** gRPC status that moves the client to the next endpoint (a dead connection, or etcd's no leader etc.). */
  failoverStatus: "UNAVAILABLE",
  /** Methods sent again, on the next endpoint, after an UNAVAILABLE that may have reached the server. */
  repeatable: new Set<string>([
    "Range",
    "LeaseTimeToLive",
    "LeaseLeases",
    "Status",
    "MemberList",
    "Alarm",
    "Hash",
    "HashKV",
    "Authenticate",
    "UserGet",
    "UserList",
    "RoleGet",
    "RoleList",
  ]),
  /** Sends of a repeatable call that may reach a server = endpoints × this. */
  roundsPerEndpoint: 2,
  /** Pause after every endpoint failed once in a row: doubles from min to max, in ms. */
  backoffMinMs: 50,
  backoffMaxMs: 1_000,
  /** A call failing with `etcdserver: invalid auth token` re-authenticates and is sent again this many times. */
  authRefreshes: 1,
} as const;

const DEFAULTS = {
  callTimeoutMs: 30_000,
  dialTimeoutMs: 5_000,
  keepAliveTimeMs: 30_000,
  keepAliveTimeoutMs: 10_000,
} as const;

type ServiceClients = Record<ServiceName, grpc.Client>;

interface Slot {
  readonly endpoint: Endpoint;
  channel: grpc.Channel | undefined;
  clients: ServiceClients | undefined;
}

/** A method's path and (de)serializers, from the loaded protos. */
interface MethodDef {
  readonly path: string;
  readonly requestSerialize: (req: unknown) => Buffer;
  readonly responseDeserialize: (buf: Buffer) => unknown;
}

export interface InvokeOptions<Res> {
  readonly timeoutMs?: number;
  /** Read the response bytes yourself (rangeSummary) instead of decoding them into objects. */
  readonly deserialize?: (buf: Buffer) => Res;
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number of ms, got ${v}`);
  return v;
}

/** Connection owns the channels, the current endpoint index and the auth token. */
export class Connection {
  readonly callTimeoutMs: number;
  readonly dialTimeoutMs: number;
  /** Successful Authenticate calls so far (first use, then one per refresh). */
  authentications = 0;
  private slots: Slot[];
  private readonly credentials: grpc.ChannelCredentials | undefined;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly auth: { readonly name: string; readonly password: string } | undefined;
  private token: string | undefined;
  private authenticating: Promise<string> | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private current = 0;
  private closed = false;

  constructor(opts: ConnectionOptions) {
    this.slots = parseEndpoints(opts.endpoints).map((endpoint) => ({
      endpoint,
      channel: undefined,
      clients: undefined,
    }));
    this.callTimeoutMs = positive("callTimeoutMs", opts.callTimeoutMs, DEFAULTS.callTimeoutMs);
    this.dialTimeoutMs = positive("dialTimeoutMs", opts.dialTimeoutMs, DEFAULTS.dialTimeoutMs);
    this.channelOptions = {
      // LISTs of all pods are tens of MiB; etcd's own clients lift the receive limit too.
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": 8 * 1024 * 1024,
      // Pings only while calls are open: etcd's server refuses pings without streams (PermitWithoutStream false).
      "grpc.keepalive_time_ms": positive("keepAliveTimeMs", opts.keepAliveTimeMs, DEFAULTS.keepAliveTimeMs),
      "grpc.keepalive_timeout_ms": positive("keepAliveTimeoutMs", opts.keepAliveTimeoutMs, DEFAULTS.keepAliveTimeoutMs),
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    };
    if (opts.tls !== undefined) {
      const pem = (b: Buffer | string | undefined): Buffer | null => (b === undefined ? null : Buffer.from(b));
      if ((opts.tls.cert === undefined) !== (opts.tls.key === undefined))
        throw new Error("tls.cert and tls.key go together");
      this.credentials = grpc.credentials.createSsl(pem(opts.tls.ca), pem(opts.tls.key), pem(opts.tls.cert));
    }
    if ((opts.username === undefined) !== (opts.password === undefined))
      throw new Error("username and password go together");
    this.auth = opts.username === undefined ? undefined : { name: opts.username, password: opts.password ?? "" };
    const syncMs = opts.autoSyncIntervalMs ?? 0;
    if (!Number.isFinite(syncMs) || syncMs < 0) throw new Error(`autoSyncIntervalMs must be >= 0, got ${syncMs}`);
    if (syncMs > 0) {
      let syncing = false; // one sync at a time, however slow MemberList is
      this.syncTimer = setInterval(() => {
        if (syncing) return;
        syncing = true;
        this.syncEndpoints()
          .catch(() => undefined)
          .finally(() => (syncing = false));
      }, syncMs);
      this.syncTimer.unref();
    }
  }

  get endpointCount(): number {
    return this.slots.length;
  }

  /** endpointList is the endpoints in round-robin order. */
  endpointList(): string[] {
    return this.slots.map((s) => s.endpoint.raw);
  }

  /** currentEndpoint is the endpoint calls go to now (for messages and tests). */
  currentEndpoint(): string {
    return this.slot().endpoint.raw;
  }

  /** service returns the current endpoint's client for one service, dialling lazily. */
  service(name: ServiceName): { client: grpc.Client; endpoint: string } {
    const slot = this.slot();
    return { client: this.clients(slot)[name], endpoint: slot.endpoint.raw };
  }

  /** failover moves to the next endpoint if `endpoint` is still the current one (idempotent per failure). */
  failover(endpoint: string): void {
    if (this.slot().endpoint.raw !== endpoint) return;
    this.current = (this.current + 1) % this.slots.length;
  }

  /** metadata is what every call carries: the auth token once authenticated (authenticating on first use). */
  async metadata(): Promise<grpc.Metadata> {
    const md = new grpc.Metadata();
    if (this.auth === undefined) return md;
    md.set("token", this.token ?? (await this.authenticate()));
    return md;
  }

  /** forgetToken drops `token` if it is still the current one, so the next call authenticates again. */
  forgetToken(token: string): void {
    if (this.token === token) this.token = undefined;
  }

  /**
   * invoke calls `method` with RETRY_POLICY's failover, after authenticating if needed; a call refused with
   * `invalid auth token` authenticates again and is sent again (RETRY_POLICY.authRefreshes times).
   */
  async invoke<Req, Res>(service: ServiceName, method: string, req: Req, opts: InvokeOptions<Res> = {}): Promise<Res> {
    for (let refresh = 0; ; refresh++) {
      const md = await this.metadata();
      try {
        return await this.withFailover(method, opts.timeoutMs ?? this.callTimeoutMs, (slot) =>
          this.callOnce<Req, Res>(slot, service, method, req, md, opts),
        );
      } catch (err) {
        const stale = md.get("token")[0];
        if (
          !(err instanceof EtcdError && err.code === "INVALID_AUTH_TOKEN") ||
          typeof stale !== "string" ||
          refresh >= RETRY_POLICY.authRefreshes
        )
          throw err;
        this.forgetToken(stale);
      }
    }
  }

  /** unary is invoke with the default decoding (kept for the callers of the first version). */
  unary<Req, Res>(service: ServiceName, method: string, req: Req, timeoutMs?: number): Promise<Res> {
    return this.invoke<Req, Res>(service, method, req, timeoutMs === undefined ? {} : { timeoutMs });
  }

  /** syncEndpoints replaces the endpoint list with the members' client URLs (etcd's Sync); returns the new list. */
  async syncEndpoints(): Promise<string[]> {
    const res = await this.invoke<pb.MemberListRequest, pb.MemberListResponse__Output>("Cluster", "MemberList", {});
    const urls = res.members.flatMap((m) => m.clientURLs);
    if (urls.length > 0 && !this.closed) this.setEndpoints(urls);
    return this.endpointList();
  }

  /** close shuts every channel; in-flight calls fail with CANCELLED. */
  close(): void {
    this.closed = true;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    for (const slot of this.slots) closeSlot(slot);
  }

  private setEndpoints(raw: readonly string[]): void {
    const parsed = parseEndpoints(raw);
    const currentTarget = this.slot().endpoint.target;
    const old = new Map(this.slots.map((s) => [s.endpoint.target, s]));
    const next = parsed.map(
      (endpoint) => old.get(endpoint.target) ?? { endpoint, channel: undefined, clients: undefined },
    );
    const kept = new Set(next);
    for (const s of this.slots) if (!kept.has(s)) closeSlot(s);
    this.slots = next;
    this.current = Math.max(
      0,
      next.findIndex((s) => s.endpoint.target === currentTarget),
    );
  }

  private async authenticate(): Promise<string> {
    const auth = this.auth;
    if (auth === undefined) throw new Error("no username/password to authenticate with");
    this.authenticating ??= this.withFailover("Authenticate", this.callTimeoutMs, (slot) =>
      this.callOnce<{ name: string; password: string }, { token: string }>(
        slot,
        "Auth",
        "Authenticate",
        auth,
        new grpc.Metadata(),
        {},
      ),
    )
      .then((res) => {
        this.token = res.token;
        this.authentications++;
        return res.token;
      })
      .finally(() => (this.authenticating = undefined));
    return this.authenticating;
  }

  /**
   * withFailover runs `attempt` on the current endpoint and, on UNAVAILABLE, moves round robin to the next:
   * again for a request that was never sent (until dialTimeoutMs passes without any server answering), and
   * for a sent one only if the method is repeatable. A full round of TLS refusals ends the call at once:
   * another round will not change them. Waiting for a connection never outlasts the call's own timeout.
   */
  private async withFailover<Res>(
    method: string,
    timeoutMs: number,
    attempt: (slot: Slot) => Promise<Res>,
  ): Promise<Res> {
    const maxSent = RETRY_POLICY.repeatable.has(method) ? this.slots.length * RETRY_POLICY.roundsPerEndpoint : 1;
    const dialMs = Math.min(this.dialTimeoutMs, timeoutMs);
    let dialDeadline = Date.now() + dialMs;
    let sent = 0;
    let failures = 0;
    let tlsInARow = 0;
    for (;;) {
      const slot = this.slot();
      try {
        await this.ready(slot, dialDeadline);
        return await attempt(slot);
      } catch (err) {
        const e = toClientError(err, slot.endpoint.raw);
        if (!isUnavailable(e)) throw e;
        this.failover(slot.endpoint.raw);
        const notSent = e instanceof ClientCallError && e.notSent;
        tlsInARow = e.code === CLIENT_ERROR_CODES.TLS_HANDSHAKE_FAILED ? tlsInARow + 1 : 0;
        if (tlsInARow >= this.slots.length) throw e;
        if (!notSent && ++sent >= maxSent) throw e;
        // A server answered (UNAVAILABLE: no leader, leader changed …): the dial budget starts again from here.
        if (!notSent) dialDeadline = Date.now() + dialMs;
        if (notSent && Date.now() >= dialDeadline) throw dialTimeout(e, dialMs);
        if (++failures % this.slots.length === 0) {
          const round = failures / this.slots.length;
          await sleep(
            Math.min(
              RETRY_POLICY.backoffMaxMs,
              RETRY_POLICY.backoffMinMs * 2 ** (round - 1),
              Math.max(0, dialDeadline - Date.now()),
            ),
          );
        }
      }
    }
  }

  /**
   * ready waits until the slot's channel is connected, or has failed to connect (the call then fails at once
   * with the reason, unsent), or the dial deadline passes (DIAL_TIMEOUT, unsent).
   */
  private async ready(slot: Slot, deadline: number): Promise<void> {
    this.clients(slot);
    const channel = slot.channel!;
    let state = channel.getConnectivityState(true);
    while (state !== grpc.connectivityState.READY && state !== grpc.connectivityState.TRANSIENT_FAILURE) {
      if (state === grpc.connectivityState.SHUTDOWN) throw new Error("client is closed");
      if (Date.now() >= deadline) {
        throw new ClientCallError(grpc.status.UNAVAILABLE, `not connected within the dial timeout`, slot.endpoint.raw, {
          code: CLIENT_ERROR_CODES.DIAL_TIMEOUT,
          notSent: true,
        });
      }
      const from = state;
      await new Promise<void>((resolve) => channel.watchConnectivityState(from, deadline, () => resolve()));
      state = channel.getConnectivityState(true);
    }
  }

  private callOnce<Req, Res>(
    slot: Slot,
    service: ServiceName,
    method: string,
    req: Req,
    md: grpc.Metadata,
    opts: InvokeOptions<Res>,
  ): Promise<Res> {
    const def = methodDef(service, method);
    const client = this.clients(slot)[service];
    const deserialize = opts.deserialize ?? (def.responseDeserialize as (b: Buffer) => Res);
    const deadline = Date.now() + (opts.timeoutMs ?? this.callTimeoutMs);
    return new Promise<Res>((resolve, reject) => {
      client.makeUnaryRequest(def.path, def.requestSerialize, deserialize, req, md, { deadline }, (err, res) => {
        if (err !== null) reject(toClientError(err, slot.endpoint.raw));
        else resolve(res as Res);
      });
    });
  }

  private slot(): Slot {
    const slot = this.slots[this.current];
    if (slot === undefined) throw new Error(`endpoint index ${this.current} out of ${this.slots.length}`);
    return slot;
  }

  private clients(slot: Slot): ServiceClients {
    if (this.closed) throw new Error("client is closed");
    if (slot.clients !== undefined) return slot.clients;
    const creds = slot.endpoint.secure
      ? (this.credentials ?? grpc.credentials.createSsl())
      : grpc.credentials.createInsecure();
    const channel = new grpc.Channel(slot.endpoint.target, creds, this.channelOptions);
    const { services } = loadEtcdProto();
    const clients = {} as ServiceClients;
    for (const [name, Ctor] of Object.entries(services) as [ServiceName, grpc.ServiceClientConstructor][]) {
      clients[name] = new Ctor(slot.endpoint.target, creds, { ...this.channelOptions, channelOverride: channel });
    }
    slot.channel = channel;
    slot.clients = clients;
    return clients;
  }
}

function closeSlot(slot: Slot): void {
  if (slot.clients !== undefined) for (const c of Object.values(slot.clients)) c.close();
  slot.channel?.close();
  slot.channel = undefined;
  slot.clients = undefined;
}

/** dialTimeout is the DIAL_TIMEOUT error a call (or a watch) ends with when no endpoint connected in time. */
export function dialTimeout(last: EtcdError | ClientCallError, dialTimeoutMs: number): ClientCallError {
  if (last instanceof ClientCallError && last.code === CLIENT_ERROR_CODES.DIAL_TIMEOUT) return last;
  const reason = last instanceof ClientCallError ? last.reason : last.message;
  return new ClientCallError(
    grpc.status.UNAVAILABLE,
    `no endpoint connected within ${dialTimeoutMs} ms; last error: ${reason}`,
    last instanceof ClientCallError ? last.endpoint : "",
    { code: CLIENT_ERROR_CODES.DIAL_TIMEOUT, notSent: true },
  );
}

const methodCache = new Map<string, MethodDef>();

/** methodDef finds one method of etcd's services in the loaded protos. */
export function methodDef(service: ServiceName, method: string): MethodDef {
  const key = `${service}/${method}`;
  const cached = methodCache.get(key);
  if (cached !== undefined) return cached;
  const svc = loadEtcdProto().packageDefinition[`etcdserverpb.${service}`] as grpc.ServiceDefinition | undefined;
  const def = svc?.[method] as MethodDef | undefined;
  if (def === undefined) throw new Error(`etcdserverpb.${service}/${method} missing from the protos`);
  methodCache.set(key, def);
  return def;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
