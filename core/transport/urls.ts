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
  | { readonly kind: "tcp"; readonly secure: boolean; readonly host: string; readonly port: number; readonly url: string }
  | { readonly kind: "unix"; readonly secure: boolean; readonly path: string; readonly url: string };

/** TLS seam for the security work: options for the listening side and for sessions to peers (https/unixs). */
export interface TransportTls {
  readonly server?: http2.SecureServerOptions;
  readonly client?: http2.SecureClientSessionOptions;
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

const SETTINGS: http2.Settings = { initialWindowSize: HTTP2_STREAM_WINDOW_BYTES, maxFrameSize: HTTP2_MAX_FRAME_BYTES, enablePush: false };

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
      secure !== undefined ? tls.connect({ ...secure, path: target.path, ALPNProtocols: ["h2"] }) : net.connect(target.path);
    session = http2.connect(target.secure ? "https://localhost" : "http://localhost", { ...base, createConnection });
  } else {
    // Our own sockets, so Nagle is off (raft's small messages must not wait for an ACK); SNI only for names.
    const { host, port } = target;
    const secure = target.secure ? clientTls(target, opts) : undefined;
    const servername = net.isIP(host) === 0 ? host : undefined;
    const createConnection = (): net.Socket =>
      secure !== undefined
        ? tls.connect({ ...secure, host, port, ...(servername !== undefined ? { servername } : {}), ALPNProtocols: ["h2"] }).setNoDelay(true)
        : net.connect({ host, port, noDelay: true });
    const authorityHost = host.includes(":") ? `[${host}]` : host;
    session = http2.connect(`${target.secure ? "https" : "http"}://${authorityHost}:${port}`, { ...base, createConnection });
  }
  session.once("connect", () => {
    if (!session.destroyed) session.setLocalWindowSize(HTTP2_SESSION_WINDOW_BYTES);
  });
  return session;
}

/** createPeerServer makes the listening HTTP/2 server: TLS when `secure`, else h2c. */
export function createPeerServer(secure: boolean, opts: TransportTls | undefined): http2.Http2Server | http2.Http2SecureServer {
  const base = { settings: SETTINGS, maxSessionMemory: 64 };
  if (!secure) return http2.createServer(base);
  if (opts?.server === undefined) throw new TransportError("BAD_URL", "https/unixs listen URLs need TLS server options");
  return http2.createSecureServer({ ...base, ...opts.server, allowHTTP1: false });
}
