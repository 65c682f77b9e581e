// Watcher: one etcd watch on its own bidi stream, read as an async iterator of batches. It remembers the
// next revision it needs; if the endpoint goes away (UNAVAILABLE) it moves to the next endpoint and re-creates
// the watch from that revision, so no event is replayed or dropped. A canceled watch with compact_revision set
// ends the iterator with EtcdError COMPACTED. The consumer paces the stream: past WATCH_STREAM_BUFFER queued
// batches the stream is paused (gRPC flow control then holds the server back).
import type * as grpc from "@grpc/grpc-js";
import { codeForMessage, EtcdError } from "../errors.js";
import { WATCH_STREAM_BUFFER } from "../limits.js";
import type * as pb from "../api/proto/types.js";
import { dialTimeout, sleep, type Connection } from "./connection.js";
import { ClientCallError, isUnavailable, toClientError } from "./errors.js";
import { big, keyValue, prefixEnd, type Bytes, type KeyValue, toBuf } from "./wire.js";

export interface WatchOptions {
  readonly rangeEnd?: Bytes;
  readonly prefix?: boolean;
  /** First revision to deliver (inclusive); absent = from now. */
  readonly startRevision?: bigint;
  readonly prevKv?: boolean;
  readonly progressNotify?: boolean;
}

export interface WatchEvent {
  readonly type: "PUT" | "DELETE";
  readonly kv: KeyValue;
  readonly prevKv: KeyValue | undefined;
}

export interface WatchBatch {
  /** The response header's revision. */
  readonly revision: bigint;
  readonly events: WatchEvent[];
}

/** Consecutive re-dials without a created watch before the watcher gives up. */
const MAX_REOPENS_PER_ENDPOINT = 3;

export class Watcher implements AsyncIterable<WatchBatch> {
  /** Resolves with the header revision once the server has created the watch. */
  readonly created: Promise<bigint>;
  private resolveCreated!: (rev: bigint) => void;
  private rejectCreated!: (err: Error) => void;
  private readonly queue: WatchBatch[] = [];
  private waiter: { resolve: () => void } | undefined;
  private failure: Error | undefined;
  private done = false;
  private stream: grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse__Output> | undefined;
  private paused = false;
  /** nextRevision: the first revision not yet delivered (0n = "from now" until the watch is created). */
  private nextRevision: bigint;
  private failedOpens = 0;
  /**
   * While no endpoint connects (every open fails unsent), the watch goes round the endpoints until this time
   * (the connection's dial timeout after the first such failure), then ends with DIAL_TIMEOUT, as a unary call.
   */
  private dialDeadline: number | undefined;
  private unsentOpens = 0;
  /** The auth token the current stream was opened with, and whether a refused one was already replaced. */
  private tokenUsed: string | undefined;
  private tokenRefreshed = false;
  private readonly rangeEnd: Buffer | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly key: Buffer,
    private readonly opts: WatchOptions,
  ) {
    this.created = new Promise<bigint>((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    this.created.catch(() => undefined); // also surfaced through the iterator
    this.nextRevision = opts.startRevision ?? 0n;
    this.rangeEnd =
      opts.prefix === true ? prefixEnd(key) : opts.rangeEnd === undefined ? undefined : toBuf(opts.rangeEnd);
    this.open();
  }

  /** cancel closes the stream; the iterator ends after the batches already queued. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.stream?.cancel();
    this.rejectCreated(new Error("watch canceled before it was created"));
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    for (;;) {
      const batch = this.queue.shift();
      if (batch !== undefined) {
        if (this.paused && this.queue.length < WATCH_STREAM_BUFFER / 2) {
          this.paused = false;
          this.stream?.resume();
        }
        yield batch;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.done) return;
      await new Promise<void>((resolve) => (this.waiter = { resolve }));
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.failure = err;
    this.done = true;
    this.rejectCreated(err);
    this.stream?.cancel();
    this.wake();
  }

  /** open (re)creates the watch on the current endpoint, with the auth token when the client has one. */
  private open(): void {
    this.conn.metadata().then(
      (md) => {
        if (!this.done) this.openWith(md);
      },
      (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
    );
  }

  private openWith(md: grpc.Metadata): void {
    let service: { client: grpc.Client; endpoint: string };
    try {
      service = this.conn.service("Watch");
    } catch (err) {
      return this.fail(err instanceof Error ? err : new Error(String(err)));
    }
    const { client, endpoint } = service;
    const token = md.get("token")[0];
    this.tokenUsed = typeof token === "string" ? token : undefined;
    md.set("hasleader", "true"); // clientv3.WithRequireLeader: the server cancels the watch if it loses its leader
    const watchFn = (
      client as unknown as {
        Watch(md: grpc.Metadata): grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse__Output>;
      }
    ).Watch;
    const stream = watchFn.call(client, md);
    this.stream = stream;
    this.paused = false;
    const create: pb.WatchCreateRequest = { key: this.key, start_revision: this.nextRevision.toString() };
    if (this.rangeEnd !== undefined) create.range_end = this.rangeEnd;
    if (this.opts.prevKv === true) create.prev_kv = true;
    if (this.opts.progressNotify === true) create.progress_notify = true;
    stream.on("data", (res: pb.WatchResponse__Output) => {
      if (stream === this.stream) this.onResponse(res);
    });
    stream.on("error", (err: unknown) => this.onStreamError(stream, toClientError(err, endpoint), endpoint));
    stream.on("end", () => {
      if (stream === this.stream && !this.done)
        this.onStreamError(stream, new Error(`watch stream ended by ${endpoint}`), endpoint);
    });
    stream.write({ create_request: create });
  }

  private onResponse(res: pb.WatchResponse__Output): void {
    if (this.done) return;
    if (res.canceled && this.maybeRefreshToken(res.cancel_reason)) return;
    const revision = big(res.header?.revision);
    if (res.created && !res.canceled) this.tokenRefreshed = false;
    if (res.created) {
      this.failedOpens = 0;
      this.dialDeadline = undefined;
      this.unsentOpens = 0;
      if (this.nextRevision === 0n) this.nextRevision = revision + 1n;
      this.resolveCreated(revision);
    }
    if (res.canceled) {
      const compactRev = big(res.compact_revision);
      this.fail(
        compactRev > 0n
          ? new EtcdError("COMPACTED", `watch from ${this.nextRevision}, compacted at ${compactRev}`)
          : cancelError(res.cancel_reason),
      );
      return;
    }
    if (res.events.length === 0) {
      if (!res.created && revision + 1n > this.nextRevision) this.nextRevision = revision + 1n; // progress notify
      return;
    }
    const events = res.events.map(watchEvent);
    const lastMod = events[events.length - 1]!.kv.modRevision;
    if (lastMod < this.nextRevision) {
      this.fail(new Error(`watch event at ${lastMod} before next ${this.nextRevision}: a replayed event`));
      return;
    }
    this.nextRevision = lastMod + 1n;
    this.queue.push({ revision, events });
    if (!this.paused && this.queue.length >= WATCH_STREAM_BUFFER) {
      this.paused = true;
      this.stream?.pause();
    }
    this.wake();
  }

  /**
   * maybeRefreshToken: etcd cancels a watch created with a token it no longer knows, giving `invalid auth token`
   * as the reason; the watch then re-authenticates once and opens again (as unary calls do).
   */
  private maybeRefreshToken(reason: string): boolean {
    const err = cancelError(reason);
    if (
      this.tokenUsed === undefined ||
      this.tokenRefreshed ||
      !(err instanceof EtcdError && err.code === "INVALID_AUTH_TOKEN")
    )
      return false;
    this.tokenRefreshed = true;
    this.conn.forgetToken(this.tokenUsed);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.open();
    return true;
  }

  private onStreamError(
    stream: grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse__Output>,
    err: EtcdError | ClientCallError | Error,
    endpoint: string,
  ): void {
    if (this.done || stream !== this.stream) return;
    // One reopen per broken stream: its "error" and "end" may both arrive, and a second reopen would run two
    // streams at once and deliver every event twice.
    this.stream = undefined;
    stream.cancel();
    if (err instanceof ClientCallError && err.notSent) return this.retryUnsent(err, endpoint);
    // A lost connection, or etcd's own UNAVAILABLE (the member lost its leader: WithRequireLeader ends the watch).
    const retriable = !("grpcStatus" in err) || isUnavailable(err as ClientCallError | EtcdError);
    this.failedOpens++;
    if (!retriable || this.failedOpens > this.conn.endpointCount * MAX_REOPENS_PER_ENDPOINT) {
      this.fail(err);
      return;
    }
    this.conn.failover(endpoint);
    void sleep(Math.min(1000, 50 * this.failedOpens)).then(() => {
      if (!this.done) this.open();
    });
  }

  /** retryUnsent: no connection to `endpoint`; try the next one (backing off per round) until the dial deadline. */
  private retryUnsent(err: ClientCallError, endpoint: string): void {
    const now = Date.now();
    this.dialDeadline ??= now + this.conn.dialTimeoutMs;
    if (now >= this.dialDeadline) {
      this.fail(dialTimeout(err, this.conn.dialTimeoutMs));
      return;
    }
    this.conn.failover(endpoint);
    const round = Math.floor(++this.unsentOpens / this.conn.endpointCount);
    void sleep(Math.min(1000, 50 * 2 ** round, Math.max(0, this.dialDeadline - now))).then(() => {
      if (!this.done) this.open();
    });
  }
}

/** cancelError types a server cancel: etcd sends "rpc error: code = X desc = <etcd message>" as the reason. */
function cancelError(reason: string): Error {
  const code = codeForMessage(/desc = (.*)$/.exec(reason)?.[1] ?? reason);
  return code !== undefined
    ? new EtcdError(code, "watch canceled by the server")
    : new Error(`watch canceled by the server: ${reason}`);
}

function watchEvent(e: pb.Event__Output): WatchEvent {
  if (e.kv === null) throw new Error("watch event without kv");
  return { type: e.type, kv: keyValue(e.kv), prevKv: e.prev_kv === null ? undefined : keyValue(e.prev_kv) };
}
