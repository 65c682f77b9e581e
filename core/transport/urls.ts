// Peer URLs as etcd accepts them: http://host:port and https://host:port over TCP, unix://addr and unixs://addr
// over a unix socket. As etcd, the socket path of unix://localhost:2380 is "localhost:2380" (host plus path, relative
// to the working directory), and unix:///tmp/p.sock is "/tmp/p.sock". HTTP/2 sessions to a peer and the listening
// side are both made here, so plaintext (h2c) and TLS differ only in the options passed.

import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { TransportError } from "./errors.js";
import { HTTP2_MAX_FRAME_BYTES, HTTP2_SESSION_WINDOW_BYTES, HTTP2_STREAM_WINDOW_BYTES } from "./transport_limits.js";

export type PeerTarget =
  | {
      readonly kind: "tcp";
      readonly secure: boolean;
      readonly host: string;
      readonly port: number;
      readonly url: string;
    }
  | { readonly kind: "unix"; readonly secure: boolean; readonly path: string; readonly url: string };

/** TLS seam for the security work: options for the listening side and for sessions to peers (https/unixs). */
export interface TransportTls {
  readonly server?: http2.SecureServerOptions;
  readonly client?: http2.SecureClientSessionOptions;
  /**
   * Inbound enforcement after each handshake (--peer-client-cert-auth, --peer-crl-file, --peer-cert-allowed-cn,
   * --peer-cert-allowed-hostname, the SAN check): the line to log when the connection is refused (etcd's
   * "rejected connection from …"), or undefined to accept it. A refused connection is closed before any HTTP/2
   * byte is read, so the peer never gets a raft message through. Without it, node:tls's own requestCert /
   * rejectUnauthorized apply, silently.
   */
  readonly refuseInbound?: (socket: tls.TLSSocket) => Promise<string | undefined>;
  /** The line to log for a failed TLS handshake (etcd's wording); a plain one without it. */
  readonly handshakeFailure?: (socket: tls.TLSSocket, err: Error) => string;
}

/** parsePeerUrl validates one peer URL and says how to reach it; a bad URL throws BAD_URL naming it. */
export function parsePeerUrl(raw: string): PeerTarget {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TransportError("BAD_URL", JSON.stringify(raw));
  }
  const scheme = u.protocol.replace(/:$/, "");
  if (scheme === "unix" || scheme === "unixs") {
    const path = decodeURIComponent(u.host + u.pathname);
    if (path === "") throw new TransportError("BAD_URL", `${JSON.stringify(raw)} has no socket path`);
    return { kind: "unix", secure: scheme === "unixs", path, url: raw };
  }
  if (scheme !== "http" && scheme !== "https") {
    throw new TransportError("BAD_URL", `${JSON.stringify(raw)}: scheme must be http, https, unix or unixs`);
  }
  if (u.port === "") throw new TransportError("BAD_URL", `${JSON.stringify(raw)} has no port`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return { kind: "tcp", secure: scheme === "https", host, port: Number(u.port), url: raw };
}

const SETTINGS: http2.Settings = {
  initialWindowSize: HTTP2_STREAM_WINDOW_BYTES,
  maxFrameSize: HTTP2_MAX_FRAME_BYTES,
  enablePush: false,
};

function clientTls(target: PeerTarget, opts: TransportTls | undefined): http2.SecureClientSessionOptions {
  if (opts?.client === undefined) throw new TransportError("BAD_URL", `${target.url} needs TLS client options`);
  return opts.client;
}

/** connectSession opens an HTTP/2 session to a peer (h2c for http/unix, TLS for https/unixs). */
export function connectSession(target: PeerTarget, opts: TransportTls | undefined): http2.ClientHttp2Session {
  const base: http2.SecureClientSessionOptions = { settings: SETTINGS, maxSessionMemory: 64 };
  let session: http2.ClientHttp2Session;
  if (target.kind === "unix") {
    const secure = target.secure ? clientTls(target, opts) : undefined;
    const createConnection = (): net.Socket =>
      secure !== undefined
        ? tls.connect({ ...secure, path: target.path, ALPNProtocols: ["h2"] })
        : net.connect(target.path);
    session = http2.connect(target.secure ? "https://localhost" : "http://localhost", { ...base, createConnection });
  } else {
    // Our own sockets, so Nagle is off (raft's small messages must not wait for an ACK); SNI only for names.
    const { host, port } = target;
    const secure = target.secure ? clientTls(target, opts) : undefined;
    const servername = net.isIP(host) === 0 ? host : undefined;
    const createConnection = (): net.Socket =>
      secure !== undefined
        ? tls
            .connect({
              ...secure,
              host,
              port,
              ...(servername !== undefined ? { servername } : {}),
              ALPNProtocols: ["h2"],
            })
            .setNoDelay(true)
        : net.connect({ host, port, noDelay: true });
    const authorityHost = host.includes(":") ? `[${host}]` : host;
    session = http2.connect(`${target.secure ? "https" : "http"}://${authorityHost}:${port}`, {
      ...base,
      createConnection,
    });
  }
  session.once("connect", () => {
    if (!session.destroyed) session.setLocalWindowSize(HTTP2_SESSION_WINDOW_BYTES);
  });
  return session;
}

/**
 * The listening side of one peer URL. `listener` binds and accepts; `h2` is the HTTP/2 server whose 'session' and
 * 'stream' events carry the requests. For https/unixs they differ: a tls.Server of our own accepts, runs the
 * inbound checks, and only then hands the socket to a plaintext-mode HTTP/2 server (which takes a TLS socket as
 * any duplex), so a refused peer is logged and closed before HTTP/2 starts.
 */
export interface PeerServer {
  readonly listener: net.Server;
  readonly h2: http2.Http2Server;
}

export interface PeerServerHooks {
  /** A refused connection or failed handshake, as the line to log. */
  readonly onRejected: (line: string) => void;
  /** Whether the transport is still taking connections (a check that ends after stop() must not hand over). */
  readonly isOpen: () => boolean;
}

/** createPeerServer makes the listening side: TLS when `secure`, else h2c. */
export function createPeerServer(secure: boolean, opts: TransportTls | undefined, hooks: PeerServerHooks): PeerServer {
  const base = { settings: SETTINGS, maxSessionMemory: 64 };
  const h2 = http2.createServer(base);
  if (!secure) return { listener: h2, h2 };
  if (opts?.server === undefined)
    throw new TransportError("BAD_URL", "https/unixs listen URLs need TLS server options");
  const refuse = opts.refuseInbound;
  const listener = tls.createServer({ ...opts.server, ALPNProtocols: ["h2"] }, (socket) => {
    void (refuse?.(socket) ?? Promise.resolve(undefined)).then(
      (line) => handOver(socket, line),
      (err: unknown) =>
        handOver(
          socket,
          `rejected connection (error ${JSON.stringify(err instanceof Error ? err.message : String(err))})`,
        ),
    );
  });
  const handOver = (socket: tls.TLSSocket, line: string | undefined): void => {
    if (line !== undefined) hooks.onRejected(line);
    if (line !== undefined || !hooks.isOpen() || socket.destroyed) {
      socket.destroy();
      return;
    }
    h2.emit("connection", socket);
  };
  listener.on("tlsClientError", (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    if (err.code === "ECONNRESET") return; // a port probe that left without a handshake
    const remote = `${socket.remoteAddress ?? ""}:${socket.remotePort ?? ""}`;
    hooks.onRejected(
      opts.handshakeFailure?.(socket, err) ??
        `rejected connection from ${JSON.stringify(remote)} (error ${JSON.stringify(err.message)})`,
    );
  });
  return { listener, h2 };
}
