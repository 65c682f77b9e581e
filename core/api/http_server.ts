// The metrics listener (--listen-metrics-urls), as etcd 3.4 serves it: GET /health ({"health":"true"} once the
// member has a leader and a linearizable read goes through) and GET /metrics (Prometheus text, etcd's metric
// names, only for values etcd-ts really tracks). The client port serves the same paths beside the JSON gateway
// and /version (clientHttpHandler; grpc_server.ts splits HTTP/1 from HTTP/2 connections on that port).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { EtcdServer } from "../server/etcd_server.js";
import type { Gateway } from "./gateway.js";
import { createSecureListener, type SecureListenerOptions } from "./tls_verify.js";
import { metricsText } from "./metrics_exposition.js";
import { ETCD_CLUSTER_VERSION, ETCD_VERSION } from "./grpc_server.js";

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
  const read = s.range({ key: new TextEncoder().encode("health") }).then(() => true, () => false);
  return Promise.race([read, timeout]);
}

/** The client port's HTTP side: the JSON gateway, /version, and what the metrics listener serves. */
export function clientHttpHandler(
  s: EtcdServer,
  versions: { readonly server: string; readonly cluster: string },
  opts: { readonly peerFaultInjection?: boolean } = {},
) {
  return (req: IncomingMessage, res: ServerResponse, gateway: Gateway): void => {
    const path = gatewayPath((req.url ?? "/").split("?")[0] ?? "/");
    if (opts.peerFaultInjection === true && path === "/debug/peer-faults") {
      peerFaults(s, req, res);
      return;
    }
    if (gateway.handles(path)) {
      gateway.serve(req, res, path);
      return;
    }
    if (req.method === "GET" && path === "/version") {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ etcdserver: versions.server, etcdcluster: versions.cluster }));
      return;
    }
    handle(s, req, res);
  };
}

/** etcd 3.4 still answers its beta gateway prefix: /v3beta/… is served as /v3/… before any routing. */
function gatewayPath(path: string): string {
  return path.startsWith("/v3beta/") ? `/v3/${path.slice("/v3beta/".length)}` : path;
}

/** --experimental-peer-fault-injection: PUT {"isolate": true|false} cuts this member off its peers, or heals it. */
function peerFaults(s: EtcdServer, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== "PUT") {
    res.writeHead(405, { "Content-Type": "text/plain; charset=utf-8" }).end("method not allowed\n");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let isolate: unknown;
    try {
      isolate = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { isolate?: unknown }).isolate;
    } catch {
      isolate = undefined;
    }
    if (typeof isolate !== "boolean") {
      res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8" }).end('body must be {"isolate": true|false}\n');
      return;
    }
    try {
      s.setPeerIsolation(isolate);
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ isolate }));
    } catch (err) {
      res.writeHead(409, { "Content-Type": "text/plain; charset=utf-8" }).end(`${err instanceof Error ? err.message : String(err)}\n`);
    }
  });
}

function handle(s: EtcdServer, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method === "GET" && path === "/metrics") {
    s.metrics.scrapesInFlight++;
    try {
      const text = metricsText(s, { server: ETCD_VERSION, cluster: ETCD_CLUSTER_VERSION.split(".").slice(0, 2).join(".") });
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
export async function serveMetrics(s: EtcdServer, host: string, port: number, opts: { readonly tls?: Omit<SecureListenerOptions, "alpn"> } = {}): Promise<HttpHandle> {
  const server: Server = createServer((req, res) => handle(s, req, res));
  const listener = opts.tls === undefined ? server : createSecureListener({ ...opts.tls, alpn: ["http/1.1"] }, (socket) => server.emit("connection", socket));
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => resolve());
  });
  const addr = listener.address();
  return {
    port: typeof addr === "object" && addr !== null ? addr.port : port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      listener.close(() => resolve());
    }),
  };
}
