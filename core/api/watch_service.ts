// etcd's Watch service: one bidi stream carries many watches. Watch ids are per stream, from 0, as etcd 3.4
// assigns them. Events are framed from stored KeyValue bytes. A slow client never blocks writers: when the
// stream's buffer is full the store stops sending to its watchers (they fall back to catch-up from history)
// and resumes them on 'drain'.
import type * as grpc from "@grpc/grpc-js";
import type { WatchEvent, WatchResponse, WatchableStore } from "../mvcc/watchable_store.js";
import { ERRORS } from "../errors.js";
import { MAX_REQUEST_BYTES, WATCH_PROGRESS_NOTIFY_INTERVAL_MS } from "../limits.js";
import type { EtcdServer, ResponseHeader } from "../server/etcd_server.js";
import { headerMsg, msg, serialize, type Field } from "./kv_codec.js";
import { watchCancelReason } from "./auth_service.js";
import type * as pb from "./proto/types.js";

/** etcd's progress response to a WatchProgressRequest carries watch id -1 (clientv3.InvalidWatchID). */
const PROGRESS_WATCH_ID = -1n;

type WatchRequestIn = pb.WatchRequest__Output;

export interface WatchServiceOptions {
  /** --experimental-watch-progress-notify-interval: empty responses to synced watches that asked for them. */
  readonly progressNotifyIntervalMs?: number;
  /** A fragmenting watch splits responses larger than this (etcd uses --max-request-bytes). */
  readonly maxResponseBytes?: number;
}

interface ResponseParts {
  readonly header: ResponseHeader;
  readonly watchId: bigint;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compactRevision?: number;
  readonly cancelReason?: string;
  readonly events?: readonly WatchEvent[];
  readonly fragment?: boolean;
}

/** Bytes an event adds to a WatchResponse (an upper bound: tags and lengths at their largest). */
function eventBytes(e: WatchEvent): number {
  return 16 + e.kv.length + (e.prevKv?.length ?? 0) + 16;
}

/**
 * etcd's fragmenting: a response over the limit is cut into pieces of whole events, each under the limit when
 * an event allows (one event per piece at least); every piece but the last carries fragment=true.
 */
export function fragmentEvents(events: readonly WatchEvent[], maxBytes: number): WatchEvent[][] {
  const pieces: WatchEvent[][] = [];
  let current: WatchEvent[] = [];
  let size = 64;
  for (const e of events) {
    const n = eventBytes(e);
    if (current.length > 0 && size + n > maxBytes) {
      pieces.push(current);
      current = [];
      size = 64;
    }
    current.push(e);
    size += n;
  }
  if (current.length > 0 || pieces.length === 0) pieces.push(current);
  return pieces;
}

export function encodeWatchResponse(p: ResponseParts): Buffer {
  const fields: Field[] = [
    [1, "m", headerMsg(p.header)],
    [2, "u", p.watchId],
    [3, "b", p.created ?? false],
    [4, "b", p.canceled ?? false],
    [5, "u", p.compactRevision ?? 0],
  ];
  if (p.cancelReason !== undefined && p.cancelReason !== "") fields.push([6, "y", Buffer.from(p.cancelReason)]);
  if (p.fragment === true) fields.push([7, "b", true]);
  for (const e of p.events ?? []) {
    const ev: Field[] = [
      [1, "u", e.type],
      [2, "y", e.kv],
    ];
    if (e.prevKv !== undefined) ev.push([3, "y", e.prevKv]);
    fields.push([11, "m", msg(ev)]);
  }
  return serialize(msg(fields));
}

class WatchStream {
  readonly #call: grpc.ServerDuplexStream<WatchRequestIn, Buffer>;
  readonly #server: EtcdServer;
  readonly #store: WatchableStore;
  readonly #opts: WatchServiceOptions;
  /** stream watch id → store watcher id */
  readonly #watches = new Map<bigint, number>();
  /** stream watch ids that asked for fragmenting / for periodic progress notifications */
  readonly #fragmenting = new Set<bigint>();
  readonly #progress = new Set<bigint>();
  #progressTimer: NodeJS.Timeout | undefined;
  #nextId = 0n;
  #blocked = false;
  #closed = false;

  constructor(
    call: grpc.ServerDuplexStream<WatchRequestIn, Buffer>,
    server: EtcdServer,
    store: WatchableStore,
    opts: WatchServiceOptions,
  ) {
    this.#call = call;
    this.#server = server;
    this.#store = store;
    this.#opts = opts;
    server.metrics.watchStreams++;
    call.on("data", (req: WatchRequestIn) => this.#onRequest(req));
    call.on("drain", () => {
      this.#blocked = false;
      this.#store.resume(this);
    });
    call.on("end", () => this.close());
    call.on("error", () => this.close());
    call.on("cancelled", () => this.close());
  }

  close(): void {
    if (!this.#closed) this.#server.metrics.watchStreams--;
    this.#closed = true;
    if (this.#progressTimer !== undefined) clearInterval(this.#progressTimer);
    for (const id of this.#watches.values()) this.#store.cancel(id);
    this.#watches.clear();
    this.#fragmenting.clear();
    this.#progress.clear();
    if (!this.#call.writableEnded) this.#call.end();
  }

  #write(buf: Buffer): boolean {
    if (this.#blocked || this.#call.writableEnded) return false;
    if (!this.#call.write(buf)) this.#blocked = true;
    return true;
  }

  #onRequest(req: WatchRequestIn): void {
    if (req.create_request != null) this.#create(req.create_request);
    else if (req.cancel_request != null) this.#cancel(BigInt(req.cancel_request.watch_id ?? 0));
    else if (req.progress_request != null) {
      this.#call.write(encodeWatchResponse({ header: this.#server.header(), watchId: PROGRESS_WATCH_ID }));
    }
  }

  #create(c: pb.WatchCreateRequest__Output): void {
    const asked = BigInt(c.watch_id ?? 0);
    const id = asked !== 0n ? asked : this.#nextId;
    // etcd sets no bound on the watches of one stream; only a duplicate id is refused.
    if (this.#watches.has(id)) {
      // etcd answers a refused create with created and canceled both set (and a reason).
      const reason = "mvcc: duplicate watch ID provided on the WatchStream";
      this.#call.write(
        encodeWatchResponse({
          header: this.#server.header(),
          watchId: -1n,
          created: true,
          canceled: true,
          cancelReason: reason,
        }),
      );
      return;
    }
    const reason = watchCancelReason(
      this.#server,
      this.#call.metadata,
      c.key ?? Buffer.alloc(0),
      c.range_end ?? undefined,
    );
    if (reason !== undefined) {
      // etcd 3.4 refuses a watch for auth (bad token, no user, no read permission) with a canceled create.
      this.#call.write(
        encodeWatchResponse({
          header: this.#server.header(),
          watchId: -1n,
          created: true,
          canceled: true,
          cancelReason: reason,
        }),
      );
      return;
    }
    if (asked === 0n) this.#nextId += 1n;
    this.#call.write(encodeWatchResponse({ header: this.#server.header(), watchId: id, created: true }));
    // Before the store registers the watcher: a past start revision is caught up (and sent) at once.
    if (c.fragment === true) this.#fragmenting.add(id);
    const filters = (c.filters ?? []) as readonly unknown[];
    const storeId = this.#store.watch({
      key: c.key ?? Buffer.alloc(0),
      ...(c.range_end !== undefined && c.range_end.length > 0 ? { rangeEnd: c.range_end } : {}),
      startRevision: Number(c.start_revision ?? 0),
      prevKv: c.prev_kv === true,
      noPut: filters.includes("NOPUT") || filters.includes(0),
      noDelete: filters.includes("NODELETE") || filters.includes(1),
      send: (resp) => this.#deliver(id, resp),
      group: this,
    });
    this.#watches.set(id, storeId);
    if (c.progress_notify === true) this.#startProgress(id);
  }

  /** One timer per stream sends every progress-notify watch an empty response at the current revision. */
  #startProgress(id: bigint): void {
    this.#progress.add(id);
    if (this.#progressTimer !== undefined) return;
    const every = this.#opts.progressNotifyIntervalMs ?? WATCH_PROGRESS_NOTIFY_INTERVAL_MS;
    this.#progressTimer = setInterval(() => {
      for (const wid of this.#progress) {
        const storeId = this.#watches.get(wid);
        if (storeId === undefined) this.#progress.delete(wid);
        else this.#store.requestProgress(storeId); // only a synced watcher gets one, as in etcd
      }
    }, every);
    this.#progressTimer.unref();
  }

  #deliver(id: bigint, resp: WatchResponse): boolean {
    // A full buffer refuses before any encoding: a stream with many watchers is refused once per watcher.
    if (this.#blocked || this.#call.writableEnded) return false;
    // etcd leaves the revision out of the header of a compacted-watch cancel.
    const header = { ...this.#server.header(), revision: resp.compactRevision > 0 ? 0 : resp.revision };
    if (resp.canceled) this.#watches.delete(id);
    const base = { header, watchId: id, compactRevision: resp.compactRevision, canceled: resp.canceled };
    if (!this.#fragmenting.has(id)) return this.#write(encodeWatchResponse({ ...base, events: resp.events }));
    const pieces = fragmentEvents(resp.events, this.#opts.maxResponseBytes ?? MAX_REQUEST_BYTES);
    pieces.forEach((events, i) => {
      if (!this.#call.write(encodeWatchResponse({ ...base, events, fragment: i < pieces.length - 1 })))
        this.#blocked = true;
    });
    return true;
  }

  #cancel(id: bigint): void {
    const storeId = this.#watches.get(id);
    if (storeId === undefined) return;
    this.#store.cancel(storeId);
    this.#watches.delete(id);
    this.#fragmenting.delete(id);
    this.#progress.delete(id);
    this.#call.write(encodeWatchResponse({ header: this.#server.header(), watchId: id, canceled: true }));
  }
}

export function watchService(
  server: EtcdServer,
  store: WatchableStore,
  opts: WatchServiceOptions = {},
): grpc.UntypedServiceImplementation {
  return {
    Watch: (call: grpc.ServerDuplexStream<WatchRequestIn, Buffer>) => {
      if (server.isLearner) {
        // etcd's stream interceptor: a learner serves no streams.
        call.emit(
          "error",
          Object.assign(new Error(ERRORS.NOT_SUPPORTED_FOR_LEARNER.message), {
            code: ERRORS.NOT_SUPPORTED_FOR_LEARNER.status,
          }),
        );
        return;
      }
      new WatchStream(call, server, store, opts);
    },
  };
}
