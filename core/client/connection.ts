// One grpc-js channel per endpoint, shared by the six service clients of that endpoint, and the round-robin
// balancer of etcd 3.4's client: there is one current endpoint; when a call to it fails with UNAVAILABLE the
// client moves to the next endpoint in order, tracking no health list (a stale "unhealthy" list is what made
// kube-apiserver lose etcd in 3.3). Which calls are retried is plain data (RETRY_POLICY).
import * as grpc from "@grpc/grpc-js";
import { loadEtcdProto, type ServiceName } from "../api/proto/load.js";
import { parseEndpoints, type Endpoint } from "./endpoints.js";
import { isUnavailable, toClientError, type ClientCallError } from "./errors.js";
import type { EtcdError } from "../errors.js";

export interface ConnectionOptions {
  readonly endpoints: readonly string[];
  /** Per-call deadline in ms unless a call gives its own (a refused connection fails fast with UNAVAILABLE). */
  readonly callTimeoutMs?: number;
  /** One credential set for every https:// endpoint (etcd 3.4's single TLS bundle). */
  readonly credentials?: grpc.ChannelCredentials;
}

/** RETRY_POLICY: which methods are retried on the next endpoint after UNAVAILABLE, and how often. */
export const RETRY_POLICY = {
  /** Calls that read, or that etcd's client also repeats: safe to send again after an UNAVAILABLE. */
  repeatable: new Set<string>(["Range", "LeaseTimeToLive", "LeaseLeases", "Status", "MemberList", "Alarm", "HashKV"]),
  /** Attempts per call = endpoints × this (each endpoint is tried at most this many times). */
  roundsPerEndpoint: 1,
  /** Pause before re-dialling after every endpoint failed in a round, in ms. */
  backoffMs: 50,
} as const;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // LISTs of all pods are tens of MiB; etcd's own clients lift the receive limit too.
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": 8 * 1024 * 1024,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
};

type ServiceClients = Record<ServiceName, grpc.Client>;

interface Slot {
  readonly endpoint: Endpoint;
  channel: grpc.Channel | undefined;
  clients: ServiceClients | undefined;
}

/** Connection owns the channels and the current endpoint index. */
export class Connection {
  readonly callTimeoutMs: number;
  private readonly slots: Slot[];
  private readonly credentials: grpc.ChannelCredentials | undefined;
  private current = 0;
  private closed = false;

  constructor(opts: ConnectionOptions) {
    this.slots = parseEndpoints(opts.endpoints).map((endpoint) => ({ endpoint, channel: undefined, clients: undefined }));
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    this.credentials = opts.credentials;
  }

  get endpointCount(): number {
    return this.slots.length;
  }

  /** endpointList is the endpoints as given, in order. */
  endpointList(): string[] {
    return this.slots.map((s) => s.endpoint.raw);
  }

  /** currentEndpoint is the endpoint calls go to now (for messages and tests). */
  currentEndpoint(): string {
    return this.slot().endpoint.raw;
  }

  /** service returns the current endpoint's client for one service, dialling lazily. */
  service(name: ServiceName): { client: grpc.Client; endpoint: string } {
    if (this.closed) throw new Error("client is closed");
    const slot = this.slot();
    if (slot.clients === undefined) this.dial(slot);
    return { client: slot.clients![name], endpoint: slot.endpoint.raw };
  }

  /** failover moves to the next endpoint if `endpoint` is still the current one (idempotent per failure). */
  failover(endpoint: string): void {
    if (this.slot().endpoint.raw !== endpoint) return;
    this.current = (this.current + 1) % this.slots.length;
  }

  /**
   * unary calls `method` on the current endpoint; on UNAVAILABLE it moves to the next endpoint and, for
   * repeatable methods, tries again until every endpoint was tried RETRY_POLICY.roundsPerEndpoint times.
   */
  async unary<Req, Res>(service: ServiceName, method: string, req: Req, timeoutMs?: number): Promise<Res> {
    const attempts = RETRY_POLICY.repeatable.has(method) ? this.slots.length * RETRY_POLICY.roundsPerEndpoint : 1;
    let last: EtcdError | ClientCallError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0 && attempt % this.slots.length === 0) await sleep(RETRY_POLICY.backoffMs);
      const { client, endpoint } = this.service(service);
      try {
        return await callUnary<Req, Res>(client, method, req, timeoutMs ?? this.callTimeoutMs);
      } catch (err) {
        last = toClientError(err, endpoint);
        if (!isUnavailable(last)) throw last;
        this.failover(endpoint);
      }
    }
    throw last!;
  }

  /** close shuts every channel; in-flight calls fail with CANCELLED. */
  close(): void {
    this.closed = true;
    for (const slot of this.slots) {
      if (slot.clients !== undefined) for (const c of Object.values(slot.clients)) c.close();
      slot.channel?.close();
      slot.channel = undefined;
      slot.clients = undefined;
    }
  }

  private slot(): Slot {
    const slot = this.slots[this.current];
    if (slot === undefined) throw new Error(`endpoint index ${this.current} out of ${this.slots.length}`);
    return slot;
  }

  private dial(slot: Slot): void {
    const creds = slot.endpoint.secure
      ? (this.credentials ?? grpc.credentials.createSsl())
      : grpc.credentials.createInsecure();
    const channel = new grpc.Channel(slot.endpoint.target, creds, CHANNEL_OPTIONS);
    const { services } = loadEtcdProto();
    const clients = {} as ServiceClients;
    for (const [name, Ctor] of Object.entries(services) as [ServiceName, grpc.ServiceClientConstructor][]) {
      clients[name] = new Ctor(slot.endpoint.target, creds, { ...CHANNEL_OPTIONS, channelOverride: channel });
    }
    slot.channel = channel;
    slot.clients = clients;
  }
}

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

function callUnary<Req, Res>(client: grpc.Client, method: string, req: Req, timeoutMs: number): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryFn | undefined>)[method];
  if (typeof fn !== "function") return Promise.reject(new Error(`no gRPC method ${method}`));
  return new Promise<Res>((resolve, reject) => {
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err !== null) reject(err);
      else resolve(res as Res);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
