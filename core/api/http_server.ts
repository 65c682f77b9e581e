// The metrics listener (--listen-metrics-urls), as etcd 3.4 serves it: GET /health ({"health":"true"} once the
// member has a leader and a linearizable read goes through) and GET /metrics (Prometheus text, etcd's metric
// names, only for values etcd-ts really tracks). The client port serves the same paths beside the JSON gateway
// and /version (clientHttpHandler; grpc_server.ts splits HTTP/1 from HTTP/2 connections on that port).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { EtcdServer } from "../server/etcd_server.js";
import type { Gateway } from "./gateway.js";
import { FAILPOINTS_PATH, serveFailpoints } from "./failpoints_http.js";
import { createSecureListener, type SecureListenerOptions } from "./tls_verify.js";

/** How long /health waits for its linearizable read (etcd uses its request timeout). */
const HEALTH_TIMEOUT_MS = 5000;

interface Metric {
  readonly name: string;
  readonly type: "gauge" | "counter";
  readonly help: string;
  readonly value: number;
}

export function metricsText(s: EtcdServer): string {
  const size = s.kv.size();
  const metrics: Metric[] = [
    { name: "etcd_debugging_mvcc_compact_revision", type: "gauge", help: "The revision of the last compaction in store.", value: s.kv.compactRevision },
    { name: "etcd_debugging_mvcc_current_revision", type: "gauge", help: "The current revision of store.", value: s.kv.revision },
    { name: "etcd_mvcc_db_total_size_in_bytes", type: "gauge", help: "Total size of the underlying database physically allocated in bytes.", value: size.dbSizeBytes },
    { name: "etcd_mvcc_db_total_size_in_use_in_bytes", type: "gauge", help: "Total size of the underlying database logically in use in bytes.", value: size.dbSizeInUseBytes },
    { name: "etcd_server_has_leader", type: "gauge", help: "Whether or not a leader exists. 1 is existence, 0 is not.", value: s.leader === 0n ? 0 : 1 },
    { name: "etcd_server_is_leader", type: "gauge", help: "Whether or not this member is a leader. 1 if is, 0 otherwise.", value: s.isLeader ? 1 : 0 },
    { name: "etcd_server_proposals_applied_total", type: "gauge", help: "The total number of consensus proposals applied.", value: s.appliedIndex },
    { name: "etcd_server_proposals_committed_total", type: "gauge", help: "The total number of consensus proposals committed.", value: s.committedIndex },
    { name: "etcd_server_proposals_pending", type: "gauge", help: "The current number of pending proposals to commit.", value: s.pendingProposals },
    { name: "etcd_debugging_mvcc_keys_total", type: "gauge", help: "Total number of keys.", value: s.kv.keyCount },
    { name: "etcd_debugging_mvcc_watcher_total", type: "gauge", help: "Total number of watchers.", value: s.watchable.watcherCount },
    { name: "etcd_server_quota_backend_bytes", type: "gauge", help: "Current backend storage quota size in bytes.", value: Math.max(0, s.quotaBytes) },
    { name: "etcd_debugging_lease_granted_total", type: "counter", help: "The total number of granted leases.", value: s.lessor.granted },
    { name: "etcd_debugging_lease_revoked_total", type: "counter", help: "The total number of revoked leases.", value: s.lessor.revoked },
    { name: "etcd_debugging_lease_renewed_total", type: "counter", help: "The number of renewed leases seen by the leader.", value: s.lessor.renewed },
    { name: "process_resident_memory_bytes", type: "gauge", help: "Resident memory size in bytes.", value: process.memoryUsage.rss() },
    { name: "process_cpu_seconds_total", type: "counter", help: "Total user and system CPU time spent in seconds.", value: cpuSeconds() },
  ];
  return metrics.map((m) => `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n${m.name} ${m.value}\n`).join("") + s.metrics.text();
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function health(s: EtcdServer): Promise<boolean> {
  if (s.leader === 0n) return false;
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), HEALTH_TIMEOUT_MS).unref());
  const read = s.range({ key: new TextEncoder().encode("health") }).then(() => true, () => false);
  return Promise.race([read, timeout]);
}

/** The client port's HTTP side: the JSON gateway, /version, and what the metrics listener serves. */
export function clientHttpHandler(
  s: EtcdServer,
  versions: { readonly server: string; readonly cluster: string },
  opts: { readonly peerFaultInjection?: boolean; readonly failpoints?: boolean } = {},
) {
  return (req: IncomingMessage, res: ServerResponse, gateway: Gateway): void => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (opts.failpoints === true && path === FAILPOINTS_PATH) {
      serveFailpoints(req, res);
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
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ etcdserver: versions.server, etcdcluster: versions.cluster }));
      return;
    }
    handle(s, req, res);
  };
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
    res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }).end(metricsText(s));
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
