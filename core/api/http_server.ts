// The metrics listener (--listen-metrics-urls), as etcd 3.4 serves it: GET /health ({"health":"true"} once the
// member has a leader and a linearizable read goes through) and GET /metrics (Prometheus text, etcd's metric
// names, only for values etcd-ts really tracks). The client port serves the same paths beside the JSON gateway
// and /version (clientHttpHandler; grpc_server.ts splits HTTP/1 from HTTP/2 connections on that port).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { DEBUG_BODY_MAX_BYTES } from "../limits.js";
import type { EtcdServer } from "../server/etcd_server.js";
import type { Gateway } from "./gateway.js";
import { FAILPOINTS_PATH, serveFailpoints } from "./failpoints_http.js";
import { createSecureListener, type SecureListenerOptions } from "./tls_verify.js";
import { metricsText } from "./metrics_exposition.js";
import { ETCD_CLUSTER_VERSION, ETCD_VERSION } from "./grpc_server.js";
import { isV2Route, serveV2 } from "./v2_http.js";

/** How long /health waits for its linearizable read (etcd uses its request timeout). */
const HEALTH_TIMEOUT_MS = 5000;

async function health(s: EtcdServer): Promise<boolean> {
  const ok = await checkHealth(s);
  (ok ? s.metrics.healthSuccess : s.metrics.healthFailures).inc();
  return ok;
}

async function checkHealth(s: EtcdServer): Promise<boolean> {
  if (s.leader === 0n) return false;
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), HEALTH_TIMEOUT_MS).unref());
  const read = s.range({ key: new TextEncoder().encode("health") }).then(
    () => true,
    () => false,
  );
  return Promise.race([read, timeout]);
}

/** The client port's HTTP side: the JSON gateway, /version, and what the metrics listener serves. */
export function clientHttpHandler(
  s: EtcdServer,
  versions: { readonly server: string; readonly cluster: string },
  opts: { readonly peerFaultInjection?: boolean; readonly enableV2?: boolean; readonly failpoints?: boolean } = {},
) {
  return (req: IncomingMessage, res: ServerResponse, gateway: Gateway): void => {
    const url = req.url ?? "/";
    const path = gatewayPath(url.split("?")[0] ?? "/");
    if (opts.failpoints === true && path === FAILPOINTS_PATH) {
      serveFailpoints(req, res);
      return;
    }
    if (opts.enableV2 === true && isV2Route(path)) {
      serveV2(s, req, res, path, url.includes("?") ? url.slice(url.indexOf("?") + 1) : "");
      return;
    }
    if (opts.peerFaultInjection === true && path === "/debug/peer-faults") {
      peerFaults(s, req, res);
      return;
    }
    if (gateway.handles(path)) {
      gateway.serve(req, res, path);
      return;
    }
    if (req.method === "GET" && path === "/version") {
      res
        .writeHead(200, { "Content-Type": "application/json" })
        .end(JSON.stringify({ etcdserver: versions.server, etcdcluster: versions.cluster }));
      return;
    }
    handle(s, req, res);
  };
}

/** etcd 3.4 still answers its beta gateway prefix: /v3beta/… is served as /v3/… before any routing. */
function gatewayPath(path: string): string {
  return path.startsWith("/v3beta/") ? `/v3/${path.slice("/v3beta/".length)}` : path;
}

/**
 * --experimental-peer-fault-injection: PUT {"isolate": true|false} cuts this member off its peers, or heals it.
 * A partition switch is an operator's tool: only a client on this machine (loopback) may use it, with the root
 * role when auth is enabled (token in the Authorization header, as the gateway takes it), and the body is bounded.
 */
function peerFaults(s: EtcdServer, req: IncomingMessage, res: ServerResponse): void {
  const text = (status: number, body: string): void =>
    void res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(`${body}\n`);
  if (!isLoopback(req.socket.remoteAddress)) return text(403, "peer faults: only from loopback");
  if (req.method !== "PUT") return text(405, "method not allowed");
  try {
    if (s.auth.enabled) s.auth.checkAdmin(s.auth.infoFromToken(req.headers.authorization));
  } catch (err) {
    return text(403, err instanceof Error ? err.message : String(err));
  }
  readBounded(req, DEBUG_BODY_MAX_BYTES).then(
    (body) => {
      if (body === undefined) {
        res.setHeader("Connection", "close"); // the rest of the body is never read
        return text(413, `body over ${DEBUG_BODY_MAX_BYTES} bytes`);
      }
      let isolate: unknown;
      try {
        isolate = (JSON.parse(body.toString("utf8")) as { isolate?: unknown }).isolate;
      } catch {
        isolate = undefined;
      }
      if (typeof isolate !== "boolean") return text(400, 'body must be {"isolate": true|false}');
      try {
        s.setPeerIsolation(isolate);
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ isolate }));
      } catch (err) {
        text(409, err instanceof Error ? err.message : String(err));
      }
    },
    () => undefined,
  );
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address === "::1" || /^(::ffff:)?127\./.test(address));
}

/** The request body, or undefined once it passes `max` bytes (the rest is not read; the connection closes). */
function readBounded(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function handle(s: EtcdServer, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method === "GET" && path === "/metrics") {
    s.metrics.scrapesInFlight++;
    try {
      const text = metricsText(s, {
        server: ETCD_VERSION,
        cluster: ETCD_CLUSTER_VERSION.split(".").slice(0, 2).join("."),
      });
      s.metrics.scrapes.inc({ code: "200" });
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }).end(text);
    } finally {
      s.metrics.scrapesInFlight--;
    }
    return;
  }
  if (req.method === "GET" && path === "/health") {
    void health(s).then((ok) => {
      res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain; charset=utf-8" }).end(`{"health":"${ok}"}`);
    });
    return;
  }
  res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("404 page not found\n");
}

export interface HttpHandle {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on host:port (port 0 picks a free one). With `opts.tls` (an https:// metrics URL) it is served with the
 * client certificate and client-certificate settings, as etcd serves it.
 */
export async function serveMetrics(
  s: EtcdServer,
  host: string,
  port: number,
  opts: { readonly tls?: Omit<SecureListenerOptions, "alpn"> } = {},
): Promise<HttpHandle> {
  const server: Server = createServer((req, res) => handle(s, req, res));
  const listener =
    opts.tls === undefined
      ? server
      : createSecureListener({ ...opts.tls, alpn: ["http/1.1"] }, (socket) => server.emit("connection", socket));
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => resolve());
  });
  const addr = listener.address();
  return {
    port: typeof addr === "object" && addr !== null ? addr.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        listener.close(() => resolve());
      }),
  };
}
