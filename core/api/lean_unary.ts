// A lean unary path for the KV methods, beside grpc-js. grpc-js spends per call a ServerInterceptingCall, a
// Metadata copy of the headers, a Writable stream object, listeners and several nextTicks; for a Put that is a
// large share of the request's CPU. This path serves the plain case itself, with grpc-js's handler table (same
// handler, same deserializer, same metrics wrapper) and grpc-js's stream decoder (same framing and size limit), and
// hands every other stream to grpc-js untouched: other methods, any grpc-encoding but identity, content types that
// are not gRPC. It runs in two places: on the lane (http2/lane.ts: the member's client connections, node:http2
// bypassed for these streams) and on node:http2's stream event (a server bound by grpc-js alone).
//
// What a client sees is what grpc-js sends (but node's date header): the same response headers and trailers, the
// handler's status in trailers (or trailers only on error), grpc-timeout as a deadline answered with
// DEADLINE_EXCEEDED, an oversized message answered with RESOURCE_EXHAUSTED, a call with no or two messages with
// UNIMPLEMENTED. The request metadata (auth token) and the TLS peer certificate are read the way grpc-js reads
// them, on demand.
import { createRequire } from "node:module";
import type { Http2Server, ServerHttp2Stream, IncomingHttpHeaders } from "node:http2";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { takeMarked } from "./grpc_send.js";
import { encodeLiterals, type HeaderField } from "./http2/hpack.js";
import type { OwnStreamServer } from "./http2/lane.js";

/**
 * Paths served here (when grpc-js registered them as unary). A Range's framed response goes out as it is, as
 * through grpc_send.ts's hook into grpc-js: no copy, its slab released once written.
 */
export const LEAN_PATHS: readonly string[] = [
  "/etcdserverpb.KV/Range",
  "/etcdserverpb.KV/Put",
  "/etcdserverpb.KV/Txn",
  "/etcdserverpb.KV/DeleteRange",
  "/etcdserverpb.KV/Compact",
];

interface Handler {
  readonly type: string;
  readonly func: (call: unknown, cb: (err: Partial<grpc.StatusObject> | null, value?: unknown) => void) => void;
  readonly deserialize: (b: Buffer) => unknown;
}

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => void;

interface Decoder {
  write(data: Buffer): Buffer[];
}

const GRPC_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc+proto",
  "grpc-accept-encoding": "identity,deflate,gzip",
  "grpc-encoding": "identity",
};
const OK_TRAILERS = { "grpc-status": "0", "grpc-message": "OK" };
// No date header: gRPC does not use it (etcd's Go server sends none) and node would format and encode one per call.
const RESPOND_OPTIONS = { waitForTrailers: true, sendDate: false };
const TRAILERS_ONLY_OPTIONS = { endStream: true, sendDate: false };
const DEADLINE_RE = /(\d{1,8})\s*([HMSmun])/;
const DEADLINE_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

function loadDecoder(): (new (maxBytes: number) => Decoder) | undefined {
  try {
    const require = createRequire(import.meta.url);
    const mod = require("@grpc/grpc-js/build/src/stream-decoder.js") as { StreamDecoder?: new (n: number) => Decoder };
    return mod.StreamDecoder;
  } catch {
    return undefined;
  }
}

/** The lean paths' grpc-js handlers and the size limits they are served with. */
export interface LeanHandlers {
  readonly handlers: Map<string, Handler>;
  readonly limits: Limits;
}

/**
 * Puts the lean path in front of grpc-js's stream handler on each of `server`'s HTTP/2 servers. Returns undefined
 * (nothing changed: grpc-js serves everything) when grpc-js's internals are not the ones this was written for,
 * else the handlers, for the lane (leanLaneServer).
 */
export function installLeanUnary(
  server: grpc.Server,
  maxReceiveBytes: number,
  maxSendBytes: number,
): LeanHandlers | undefined {
  const internals = server as unknown as {
    http2Servers?: Map<Http2Server, unknown>;
    handlers?: Map<string, Handler>;
  };
  const StreamDecoder = loadDecoder();
  const servers = internals.http2Servers;
  const handlers = internals.handlers;
  if (StreamDecoder === undefined || !(servers instanceof Map) || !(handlers instanceof Map)) return undefined;
  const lean = new Map<string, Handler>();
  for (const path of LEAN_PATHS) {
    const h = handlers.get(path);
    if (h !== undefined && h.type === "unary" && typeof h.func === "function") lean.set(path, h);
  }
  const limits: Limits = {
    receive: maxReceiveBytes,
    send: maxSendBytes,
    newDecoder: () => new StreamDecoder(maxReceiveBytes),
  };
  for (const h2 of servers.keys()) {
    const grpcListeners = h2.listeners("stream") as StreamListener[];
    h2.removeAllListeners("stream");
    h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
      const handler = leanHandler(lean, headers);
      if (handler !== undefined) serve(stream, headers, handler, limits);
      else for (const l of grpcListeners) l.call(h2, stream, headers, flags);
    });
  }
  return { handlers: lean, limits };
}

function leanHandler(lean: Map<string, Handler>, headers: IncomingHttpHeaders): Handler | undefined {
  const path = headers[":path"];
  if (typeof path !== "string") return undefined;
  const h = lean.get(path);
  if (h === undefined) return undefined;
  const type = headers["content-type"];
  if (typeof type !== "string" || !type.startsWith("application/grpc")) return undefined;
  const encoding = headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity" ? h : undefined;
}

/** Whether `chunk` is exactly one uncompressed gRPC message within the size limit (negative: no limit). */
function isWholeMessage(chunk: Buffer, maxReceiveBytes: number): boolean {
  if (chunk.length < 5 || chunk[0] !== 0) return false;
  const length = chunk.readUInt32BE(1);
  return length === chunk.length - 5 && (maxReceiveBytes < 0 || length <= maxReceiveBytes);
}

/** How an exchange answers: node:http2's stream, or a stream claimed on the lane (http2/lane.ts). */
interface Answer {
  readonly cancelled: boolean;
  /** gRPC's trailers-only answer with a non-OK status. */
  fail(code: number, details: string): void;
  /** Response headers, the framed message, OK trailers; onWritten once the message is written out. */
  reply(message: Buffer, onWritten: (() => void) | undefined): void;
}

/** One unary call: read one message, run the handler, answer with its message and status. */
class UnaryExchange {
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  private request: Buffer | undefined;
  private decoder: Decoder | undefined;

  private readonly path: string;

  constructor(
    private readonly headers: IncomingHttpHeaders,
    private readonly handler: Handler,
    private readonly answer: Answer,
    private readonly socket: () => Socket | undefined,
    private readonly limits: Limits,
  ) {
    this.path = String(headers[":path"]);
    const timeout = headers["grpc-timeout"];
    if (typeof timeout !== "string") return;
    const m = DEADLINE_RE.exec(timeout);
    if (m === null) {
      this.finish({ code: grpc.status.INTERNAL, details: `Invalid grpc-timeout value "${timeout}"` });
    } else {
      const ms = (Number(m[1]) * (DEADLINE_UNIT_MS[m[2] as string] ?? 0)) | 0;
      this.timer = setTimeout(
        () => this.finish({ code: grpc.status.DEADLINE_EXCEEDED, details: "Deadline exceeded" }),
        ms,
      );
    }
  }

  data(chunk: Buffer): void {
    if (this.done) return;
    // The usual unary request: one DATA chunk holding exactly one whole message, taken as it is; anything else
    // goes through grpc-js's decoder (split or extra messages, sizes over the limit, compression flags).
    if (this.decoder === undefined && this.request === undefined && isWholeMessage(chunk, this.limits.receive)) {
      this.request = chunk;
      return;
    }
    this.decoder ??= this.limits.newDecoder();
    let messages: Buffer[];
    try {
      messages = this.decoder.write(chunk);
    } catch (err) {
      this.finish({ code: grpc.status.RESOURCE_EXHAUSTED, details: (err as Error).message });
      return;
    }
    for (const m of messages) {
      if (this.request !== undefined) {
        // grpc-js's words for it (its unary handler shares them with server streaming).
        const details = `Received a second request message for server streaming method ${this.path}`;
        this.finish({ code: grpc.status.UNIMPLEMENTED, details });
        return;
      }
      this.request = m;
    }
  }

  end(): void {
    if (this.done) return;
    if (this.request === undefined) {
      const details = `Received no request message for server streaming method ${this.path}`;
      this.finish({ code: grpc.status.UNIMPLEMENTED, details });
      return;
    }
    let parsed: unknown;
    try {
      parsed = this.handler.deserialize(this.request.subarray(5));
    } catch {
      this.finish({ code: grpc.status.INTERNAL, details: "Error deserializing request" });
      return;
    }
    try {
      const call = new LeanCall(this.headers, parsed, () => this.answer.cancelled, this.socket);
      this.handler.func(call, (err, value) => {
        if (err !== null) {
          this.finish({ code: err.code ?? grpc.status.UNKNOWN, details: err.details ?? "Unknown Error" });
          return;
        }
        this.finish(undefined, value as Buffer);
      });
    } catch {
      this.finish({ code: grpc.status.UNKNOWN, details: "Unknown error" });
    }
  }

  /** The stream closed or was reset: nothing left to answer. */
  close(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private finish(refused: { code: number; details: string } | undefined, response?: Buffer): void {
    if (this.done) return;
    this.close();
    if (this.answer.cancelled) return;
    const lent = response === undefined ? undefined : takeMarked(response);
    const message = lent?.message ?? (response === undefined ? undefined : framed(response));
    const max = this.limits.send;
    if (refused !== undefined) this.answer.fail(refused.code, refused.details);
    else if (message === undefined) this.answer.fail(grpc.status.INTERNAL, "No response message");
    else if (message.length - 5 > max)
      this.answer.fail(grpc.status.RESOURCE_EXHAUSTED, `Sent message larger than max (${message.length} vs. ${max})`);
    else this.answer.reply(message, lent?.onWritten);
  }
}

interface Limits {
  readonly receive: number;
  readonly send: number;
  readonly newDecoder: () => Decoder;
}

/** One unary call on a node:http2 stream. */
function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, handler: Handler, limits: Limits): void {
  const answer: Answer = {
    get cancelled() {
      return stream.destroyed || stream.closed;
    },
    fail(code, details) {
      stream.respond(
        {
          "grpc-status": String(code),
          "grpc-message": encodeURI(details),
          ":status": 200,
          "content-type": GRPC_HEADERS["content-type"],
        },
        TRAILERS_ONLY_OPTIONS,
      );
    },
    reply(message, onWritten) {
      stream.respond(GRPC_HEADERS, RESPOND_OPTIONS);
      stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
      if (onWritten === undefined) stream.end(message);
      else {
        stream.write(message, (err) => {
          if (err === null || err === undefined) onWritten();
        });
        stream.end();
      }
    },
  };
  const x = new UnaryExchange(headers, handler, answer, () => stream.session?.socket, limits);
  stream.on("error", () => undefined); // a reset stream: its close ends the call, nothing left to answer
  stream.once("close", () => x.close());
  stream.on("data", (chunk: Buffer) => x.data(chunk));
  stream.on("end", () => x.end());
}

// Header blocks of the lane's answers, encoded once (literals and static indices: no dynamic-table state).
const LANE_HEADERS = encodeLiterals(Object.entries(GRPC_HEADERS).map(([k, v]) => [k, String(v)]));
const LANE_OK_TRAILERS = encodeLiterals(Object.entries(OK_TRAILERS));

/**
 * The lane's server for the lean paths (http2/lane.ts): the same exchange as on node:http2, answered with
 * pre-encoded header blocks. Streams it does not take go to grpc-js.
 */
export function leanLaneServer(lean: LeanHandlers): OwnStreamServer {
  return {
    open(fields, reply, socket) {
      const headers = headersOf(fields);
      if (headers[":method"] !== "POST") return undefined;
      const handler = leanHandler(lean.handlers, headers);
      if (handler === undefined) return undefined;
      const answer: Answer = {
        get cancelled() {
          return reply.closed || socket.destroyed;
        },
        fail(code, details) {
          reply.sendOnly(
            encodeLiterals([
              [":status", "200"],
              ["content-type", GRPC_HEADERS["content-type"]],
              ["grpc-status", String(code)],
              ["grpc-message", encodeURI(details)],
            ]),
          );
        },
        reply(message, onWritten) {
          reply.send(LANE_HEADERS, message, LANE_OK_TRAILERS, onWritten);
        },
      };
      const x = new UnaryExchange(headers, handler, answer, () => socket, lean.limits);
      return { data: (chunk) => x.data(chunk), end: () => x.end(), cancel: () => x.close() };
    },
  };
}

/** Header fields as node:http2 presents them: a repeated name's values joined with ", " (set-cookie aside). */
function headersOf(fields: readonly HeaderField[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of fields) {
    const had = out[name];
    if (had === undefined) out[name] = value;
    else if (name === "set-cookie") out[name] = Array.isArray(had) ? [...had, value] : [had, value];
    else out[name] = `${String(had)}, ${value}`;
  }
  return out;
}

/** A raw response as a gRPC message (1 flag byte, 4 length bytes, the bytes). */
function framed(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 5);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** What the KV handlers read from a call: the request, its metadata (auth token) and the TLS peer. */
class LeanCall {
  #metadata: grpc.Metadata | undefined;

  constructor(
    private readonly headers: IncomingHttpHeaders,
    readonly request: unknown,
    private readonly isCancelled: () => boolean,
    private readonly socket: () => Socket | undefined,
  ) {}

  get metadata(): grpc.Metadata {
    if (this.#metadata === undefined) {
      const md = grpc.Metadata.fromHttp2Headers(this.headers);
      for (const k of [
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "accept-encoding",
        "te",
        "content-type",
      ])
        md.remove(k);
      this.#metadata = md;
    }
    return this.#metadata;
  }

  get cancelled(): boolean {
    return this.isCancelled();
  }

  getPeer(): string {
    const s = this.socket();
    if (s?.remoteAddress === undefined) return "unknown";
    return s.remotePort !== undefined ? `${s.remoteAddress}:${s.remotePort}` : s.remoteAddress;
  }

  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: unknown } {
    const s = this.socket();
    if (!(s instanceof TLSSocket) || !s.authorized) return {};
    const cert = s.getPeerCertificate();
    return { transportSecurityType: "ssl", sslPeerCertificate: cert.raw !== undefined ? cert : undefined };
  }
}
