// Serves etcd 3.4's Go clients that put a scheme in :authority. clientv3 3.4 sends the endpoint as given
// ("http://127.0.0.1:2379") as the HTTP/2 :authority; Go's server accepts it, nghttp2 (node:http2, under grpc-js)
// resets the stream with PROTOCOL_ERROR. The fix works on bytes, before grpc-js sees the connection:
//
// - The sniffer reads the client's frames until its first header block is decoded, answering PINGs meanwhile. A
//   Go client sends nothing before the server's SETTINGS (its transport waits for the server preface), and nghttp2
//   cannot speak before it owns the socket, so the sniffer sends a SETTINGS frame of its own first (empty: every
//   setting at its HTTP/2 default) and swallows the client's ACK of it; nghttp2's own SETTINGS follow later as an
//   ordinary update. Cost to every connection: that frame, and the handover waits for the ACK (one round trip).
// - First :authority fine (every grpc-js client, a Go client with host:port endpoints): the bytes read are put back
//   and the raw socket goes to grpc-js as before, with no per-frame cost for the rest of the connection.
// - First :authority with a scheme: the connection goes through a pipe (ClientFrameRewriter) that re-encodes
//   every header block with the scheme stripped and passes all else through; server → client is untouched.
//   grpc-js then sees a JS stream, not the socket; lendIdentity gives it the peer's address and TLS certificate.
// - No header block and ACK within SNIFF_TIMEOUT_MS (a client idle since it connected), or more than
//   MAX_SNIFF_BYTES held: piped, which serves any :authority, at the pipe's cost.
// A member's client connections skip the sniffing: they go on the lane (lane.ts), the same pipe extended to answer
// the hot KV calls itself, which repairs every :authority on the way.
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { ClientFrameRewriter, EMPTY_SETTINGS } from "./frames.js";
import { LanePipe, type OwnStreamServer } from "./lane.js";

export interface ConnectionInjector {
  injectConnection(connection: Duplex): void;
}

export interface AuthorityFixOptions {
  /**
   * A client that has sent no header block (and ACK) by then is piped: correct whatever it sends later. Idle clients
   * get their PINGs answered meanwhile, so this only bounds how long a connection waits outside grpc-js.
   */
  readonly sniffTimeoutMs?: number;
  /** Bytes held while sniffing before giving up and piping. */
  readonly maxSniffBytes?: number;
  /** The SETTINGS_HEADER_TABLE_SIZE the server advertises (grpc-js keeps nghttp2's 4096). */
  readonly decoderTableBytes?: number;
  /** Told how the connection was handed over (tests and metrics). */
  readonly onHandover?: (how: Handover) => void;
  /**
   * Serve the connection on the lane (lane.ts): at once, without sniffing, every :authority repaired, the streams
   * this server wants answered by it and the rest by grpc-js.
   */
  readonly lane?: OwnStreamServer | undefined;
  /** Told the lane's pipe (tests). */
  readonly onLane?: (pipe: LanePipe) => void;
}

export type Handover = "raw" | "pipe" | "lane";

const SNIFF_TIMEOUT_MS = 30_000;
const MAX_SNIFF_BYTES = 256 * 1024;

/** Hands an HTTP/2 connection (preface seen or ALPN h2; may hold unshifted bytes) to grpc-js, fixing :authority. */
export function serveHttp2(socket: Socket, injector: ConnectionInjector, opts: AuthorityFixOptions = {}): void {
  const rw = new ClientFrameRewriter(opts.decoderTableBytes);
  if (opts.lane !== undefined) {
    // No sniffer: nghttp2 sends the server preface itself, so there is no extra SETTINGS whose ACK to drop.
    rw.ackSeen = true;
    rw.answerPings = false;
    rw.keepRaw = false;
    const pipe = new LanePipe(socket, rw, opts.lane);
    injector.injectConnection(pipe);
    adoptSession(pipe, socket, rw);
    opts.onHandover?.("lane");
    opts.onLane?.(pipe);
    return;
  }
  let decided = false;
  const decide = (how: Handover): void => {
    if (decided) return;
    decided = true;
    clearTimeout(timer);
    socket.removeListener("data", onData);
    socket.pause();
    socket.ref();
    rw.answerPings = false;
    if (how === "raw") {
      socket.unshift(rw.takeAll());
      injector.injectConnection(socket);
    } else {
      rw.keepRaw = false;
      const pipe = new RewritingPipe(socket, rw);
      injector.injectConnection(pipe);
      adoptSession(pipe, socket, rw);
    }
    opts.onHandover?.(how);
  };
  const onData = (chunk: Buffer): void => {
    try {
      rw.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    const replies = rw.takeReplies();
    if (replies !== undefined) socket.write(replies);
    if (rw.first === "fixed") decide("pipe");
    else if (rw.first === "fine" && rw.ackSeen) decide("raw");
    else if (rw.heldBytes > (opts.maxSniffBytes ?? MAX_SNIFF_BYTES)) decide("pipe");
  };
  const timer = setTimeout(() => decide("pipe"), opts.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.write(EMPTY_SETTINGS);
  socket.unref(); // a connection still sniffing does not keep the process up; grpc-js's own connections decide that
  socket.on("data", onData);
  socket.resume();
}

/** The client side rewritten into a stream for grpc-js; what grpc-js writes goes to the socket unchanged. */
class RewritingPipe extends Duplex {
  constructor(
    private readonly socket: Socket,
    rw: ClientFrameRewriter,
  ) {
    super();
    const first = rw.take().rewritten;
    if (first.length > 0) this.push(first);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      try {
        rw.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      const out = rw.take().rewritten;
      if (out.length > 0 && !this.push(out)) socket.pause();
    });
    socket.once("end", () => this.push(null));
    socket.once("close", () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

const SELF = Symbol("authority_fix.self");

interface BoundSession {
  readonly socket?: Record<string | symbol, unknown>;
  readonly localSettings?: { readonly headerTableSize?: number };
}

/**
 * The Http2Session node:http2 bound to `pipe`. Node stores it on the stream under its kBoundSession key, which
 * Node 20 spells as the string "undefined" (an import that resolves to undefined), so look by shape, not by name.
 */
function boundSession(pipe: Duplex): BoundSession | undefined {
  for (const key of Reflect.ownKeys(pipe)) {
    const v: unknown = (pipe as unknown as Record<string | symbol, unknown>)[key];
    if (typeof v === "object" && v !== null && "localSettings" in v && "socket" in v) return v as BoundSession;
  }
  return undefined;
}

/**
 * Once grpc-js owns the pipe: the decoder follows the header table size nghttp2 advertises (its SETTINGS reach the
 * client after the sniffer's empty one), and the peer's identity is lent to node:http2's wrapper (lendIdentity).
 */
function adoptSession(pipe: Duplex, socket: Socket, rw: ClientFrameRewriter): void {
  const session = boundSession(pipe);
  const tableBytes = session?.localSettings?.headerTableSize;
  // Never below 4096: the client may have encoded against the sniffer's SETTINGS (HTTP/2's default) until it saw
  // nghttp2's; a smaller table then arrives as a size update in its next block, which the decoder follows.
  if (tableBytes !== undefined) rw.decoder.setMaxTableSize(Math.max(tableBytes, 4096));
  const view = session?.socket;
  if (view !== undefined) lendIdentity(view, socket);
}

/**
 * node:http2 wraps a JS stream in an internal socket (JSStreamSocket) without an address or certificate, which
 * grpc-js reads for getPeer() and getAuthContext() (the client certificate's CN is etcd's user under
 * --client-cert-auth). This copies them from the real socket onto that wrapper, reached through the session's
 * socket view; a TLS peer's wrapper also answers `instanceof TLSSocket`, as grpc-js checks. Best effort: should
 * node:http2's internals differ, the connection works and only the identity is missing.
 */
function lendIdentity(view: Record<string | symbol, unknown>, socket: Socket): void {
  try {
    // Sets go through node:http2's socket view to the wrapper; a function read back is bound to the wrapper.
    view[SELF] = function self(this: object): object {
      return this;
    };
    const inner = (view[SELF] as () => Record<string, unknown>)();
    inner._peername = { address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily };
    inner._sockname = { address: socket.localAddress, port: socket.localPort, family: socket.localFamily };
    if (!(socket instanceof TLSSocket)) return;
    inner.authorized = socket.authorized;
    inner.encrypted = true;
    inner.alpnProtocol = socket.alpnProtocol;
    inner.getPeerCertificate = (detailed?: boolean) => socket.getPeerCertificate(detailed === true);
    inner.getProtocol = () => socket.getProtocol();
    inner.getCipher = () => socket.getCipher();
    const proto = Object.getPrototypeOf(inner) as object;
    Object.setPrototypeOf(inner, new Proxy(proto, { getPrototypeOf: () => TLSSocket.prototype }));
  } catch {
    // identity is a nicety here; the connection itself is already served
  }
}
