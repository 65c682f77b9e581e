// A lean unary path on node:http2 for the KV methods, beside grpc-js. grpc-js spends per call a
// ServerInterceptingCall, a Metadata copy of the headers, a Writable stream object, listeners and several
// nextTicks; for a Put that is a large share of the request's CPU. This path serves the plain case itself, with
// grpc-js's handler table (same handler, same deserializer, same metrics wrapper) and grpc-js's stream decoder
// (same framing and size limit), and hands every other stream to grpc-js untouched: other methods, any
// grpc-encoding but identity, content types that are not gRPC.
//
// What a client sees is what grpc-js sends (but node's date header): the same response headers and trailers, the handler's status in
// trailers (or trailers only on error), grpc-timeout as a deadline answered with DEADLINE_EXCEEDED, an oversized
// message answered with RESOURCE_EXHAUSTED, a call with no or two messages with UNIMPLEMENTED. The request
// metadata (auth token) and the TLS peer certificate are read the way grpc-js reads them, on demand.
import { createRequire } from "node:module";
import type { Http2Server, ServerHttp2Stream, IncomingHttpHeaders } from "node:http2";
import { TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { takeMarked } from "./grpc_send.js";

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

/**
 * Puts the lean path in front of grpc-js's stream handler on each of `server`'s HTTP/2 servers. Returns false
 * (nothing changed: grpc-js serves everything) when grpc-js's internals are not the ones this was written for.
 */
export function installLeanUnary(server: grpc.Server, maxReceiveBytes: number, maxSendBytes: number): boolean {
  const internals = server as unknown as {
    http2Servers?: Map<Http2Server, unknown>;
    handlers?: Map<string, Handler>;
  };
  const StreamDecoder = loadDecoder();
  const servers = internals.http2Servers;
  const handlers = internals.handlers;
  if (StreamDecoder === undefined || !(servers instanceof Map) || !(handlers instanceof Map)) return false;
  const lean = new Map<string, Handler>();
  for (const path of LEAN_PATHS) {
    const h = handlers.get(path);
    if (h !== undefined && h.type === "unary" && typeof h.func === "function") lean.set(path, h);
  }
  for (const h2 of servers.keys()) {
    const grpcListeners = h2.listeners("stream") as StreamListener[];
    h2.removeAllListeners("stream");
    h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
      const handler = leanHandler(lean, headers);
      if (handler !== undefined)
        serve(stream, headers, handler, () => new StreamDecoder(maxReceiveBytes), maxReceiveBytes, maxSendBytes);
      else for (const l of grpcListeners) l.call(h2, stream, headers, flags);
    });
  }
  return true;
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

/** One unary call: read one message, run the handler, answer with its message and status. */
function serve(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  handler: Handler,
  newDecoder: () => Decoder,
  maxReceiveBytes: number,
  maxSendBytes: number,
): void {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (refused: { code: number; details: string } | undefined, response?: Buffer): void => {
    if (done) return;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    if (stream.destroyed || stream.closed) return;
    const lent = response === undefined ? undefined : takeMarked(response);
    const message = lent?.message ?? (response === undefined ? undefined : framed(response));
    const tooLarge =
      refused === undefined && message !== undefined && message.length - 5 > maxSendBytes
        ? {
            code: grpc.status.RESOURCE_EXHAUSTED,
            details: `Sent message larger than max (${message.length} vs. ${maxSendBytes})`,
          }
        : undefined;
    const status = refused ?? tooLarge;
    if (status !== undefined) {
      stream.respond(
        {
          "grpc-status": String(status.code),
          "grpc-message": encodeURI(status.details),
          ":status": 200,
          "content-type": GRPC_HEADERS["content-type"],
        },
        TRAILERS_ONLY_OPTIONS,
      );
      return;
    }
    stream.respond(GRPC_HEADERS, RESPOND_OPTIONS);
    stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    const onWritten = lent?.onWritten;
    if (onWritten === undefined) stream.end(message);
    else {
      stream.write(message, (err) => {
        if (err === null || err === undefined) onWritten();
      });
      stream.end();
    }
  };
  stream.on("error", () => undefined); // a reset stream: its close ends the call, nothing left to answer
  stream.once("close", () => {
    done = true;
    if (timer !== undefined) clearTimeout(timer);
  });
  const timeout = headers["grpc-timeout"];
  if (typeof timeout === "string") {
    const m = DEADLINE_RE.exec(timeout);
    if (m === null) {
      process.nextTick(() =>
        finish({ code: grpc.status.INTERNAL, details: `Invalid grpc-timeout value "${timeout}"` }),
      );
    } else {
      const ms = (Number(m[1]) * (DEADLINE_UNIT_MS[m[2] as string] ?? 0)) | 0;
      timer = setTimeout(() => finish({ code: grpc.status.DEADLINE_EXCEEDED, details: "Deadline exceeded" }), ms);
    }
  }
  let request: Buffer | undefined;
  let decoder: Decoder | undefined;
  stream.on("data", (chunk: Buffer) => {
    if (done) return;
    // The usual unary request: one DATA chunk holding exactly one whole message, taken as it is; anything else
    // goes through grpc-js's decoder (split or extra messages, sizes over the limit, compression flags).
    if (decoder === undefined && request === undefined && isWholeMessage(chunk, maxReceiveBytes)) {
      request = chunk;
      return;
    }
    decoder ??= newDecoder();
    let messages: Buffer[];
    try {
      messages = decoder.write(chunk);
    } catch (err) {
      finish({ code: grpc.status.RESOURCE_EXHAUSTED, details: (err as Error).message });
      return;
    }
    for (const m of messages) {
      if (request !== undefined) {
        // grpc-js's words for it (its unary handler shares them with server streaming).
        const details = `Received a second request message for server streaming method ${headers[":path"]}`;
        finish({ code: grpc.status.UNIMPLEMENTED, details });
        return;
      }
      request = m;
    }
  });
  stream.on("end", () => {
    if (done) return;
    if (request === undefined) {
      const details = `Received no request message for server streaming method ${headers[":path"]}`;
      finish({ code: grpc.status.UNIMPLEMENTED, details });
      return;
    }
    let parsed: unknown;
    try {
      parsed = handler.deserialize(request.subarray(5));
    } catch {
      finish({ code: grpc.status.INTERNAL, details: "Error deserializing request" });
      return;
    }
    try {
      handler.func(new LeanCall(stream, headers, parsed), (err, value) => {
        if (err !== null) {
          finish({ code: err.code ?? grpc.status.UNKNOWN, details: err.details ?? "Unknown Error" });
          return;
        }
        finish(undefined, value as Buffer);
      });
    } catch {
      finish({ code: grpc.status.UNKNOWN, details: "Unknown error" });
    }
  });
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
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    readonly request: unknown,
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
    return this.stream.destroyed || this.stream.closed;
  }

  getPeer(): string {
    const s = this.stream.session?.socket;
    if (s?.remoteAddress === undefined) return "unknown";
    return s.remotePort !== undefined ? `${s.remoteAddress}:${s.remotePort}` : s.remoteAddress;
  }

  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: unknown } {
    const s = this.stream.session?.socket;
    if (!(s instanceof TLSSocket) || !s.authorized) return {};
    const cert = s.getPeerCertificate();
    return { transportSecurityType: "ssl", sslPeerCertificate: cert.raw !== undefined ? cert : undefined };
  }
}
