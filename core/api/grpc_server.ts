// etcd's v3 gRPC services over @grpc/grpc-js, on top of EtcdServer: the listener, the per-method raw-bytes
// serializers, metrics, and the HTTP/1.1 + HTTP/2 multiplexing of the client port. Each service lives in its own
// file (kv_service.ts, watch_service.ts, lease_service.ts, cluster_service.ts, maintenance_service.ts,
// auth_service.ts): handlers turn grpc-js objects into the server's plain request types, call the server, and hand
// back either protobuf bytes framed around stored KeyValues (a per-method identity serializer lets a handler
// return bytes) or plain objects. unary.ts's toStatus is the one place where EtcdError becomes a gRPC status.
import * as grpc from "@grpc/grpc-js";
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { rmSync } from "node:fs";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { GRPC_OVERHEAD_BYTES, MAX_REQUEST_BYTES, MAX_TXN_OPS } from "../limits.js";
import type { EtcdServer } from "../server/etcd_server.js";
import type { ServerMetrics } from "../server/metrics.js";
import { loadEtcdProto, loadRecipeProto, servicePackage, type AnyServiceName } from "./proto/load.js";
import { Gateway } from "./gateway.js";
import { createSecureListener, type SecureListenerOptions } from "./tls_verify.js";
import { serveHttp2, type ConnectionInjector } from "./http2/authority_fix.js";
import { authService } from "./auth_service.js";
import { leaseService } from "./lease_service.js";
import { toStatus } from "./unary.js";
import { maintenanceService } from "./maintenance_service.js";
import { watchService } from "./watch_service.js";
import { kvService } from "./kv_service.js";
import { installLeanUnary, leanLaneServer } from "./lean_unary.js";
import type { OwnStreamServer } from "./http2/lane.js";
import { decodePutRequest } from "./kv_codec.js";
import { clusterService } from "./cluster_service.js";
import { lockService } from "./lock_service.js";
import { electionService } from "./election_service.js";

/** The etcd release whose API and behaviour etcd-ts follows; reported by Status and /version. */
export const ETCD_VERSION = "3.4.23";
export const ETCD_CLUSTER_VERSION = "3.4.0";

export type { MemberInfo } from "./cluster_service.js";

/** Largest response message: any (grpc-js's cap on a buffer length). */
const MAX_SEND_BYTES = 2 ** 31 - 1;

export interface GrpcOptions {
  /** host:port to bind (port 0 picks a free one), or unix:<socket path>. */
  readonly address: string;
  readonly maxRequestBytes?: number;
  readonly watchProgressNotifyIntervalMs?: number;
  /** --max-txn-ops. */
  readonly maxTxnOps?: number;
  /** --max-concurrent-streams: streams per client connection. */
  readonly maxConcurrentStreams?: number;
  /** --grpc-keepalive-interval / --grpc-keepalive-timeout: the server pings idle connections and drops the silent. */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Serve HTTP/1.1 on the same port: the handler gets the JSON gateway to route /v3/* to. */
  readonly http?: (req: IncomingMessage, res: ServerResponse, gateway: Gateway) => void;
  /**
   * https:// client URLs: TLS is terminated in this listener, then each connection is dispatched as a plain one
   * (ALPN h2 → grpc-js, http/1.1 → the HTTP handler). Handlers read the client certificate's CN with tls_verify.ts.
   */
  readonly tls?: Omit<SecureListenerOptions, "alpn">;
}

/**
 * A copy of a service definition whose listed methods send already-encoded response bytes, and whose methods
 * in `decoders` read their requests with a hand-written decoder (same object as proto-loader's).
 */
function withRawResponses(
  def: grpc.ServiceDefinition,
  methods: readonly string[],
  decoders: Readonly<Record<string, (b: Buffer) => unknown>> = {},
): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    const raw = methods.includes(name) ? { ...m, responseSerialize: (b: unknown) => b as Buffer } : m;
    const decode = decoders[name];
    out[name] = decode === undefined ? raw : { ...raw, requestDeserialize: decode };
  }
  return out as grpc.ServiceDefinition;
}

export interface GrpcHandle {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves etcd's gRPC services on `opts.address`. With `http`, the same port also answers HTTP/1.1 (the JSON
 * gateway, /health, /metrics, /version), as etcd multiplexes its client port: each connection's first bytes
 * tell an HTTP/2 preface (handed to grpc-js) from an HTTP/1 request (handed to node:http).
 */
export async function serveGrpc(s: EtcdServer, opts: GrpcOptions): Promise<GrpcHandle> {
  const maxBytes = (opts.maxRequestBytes ?? MAX_REQUEST_BYTES) + GRPC_OVERHEAD_BYTES;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": MAX_SEND_BYTES,
    "grpc.enable_channelz": 0,
    ...(opts.maxConcurrentStreams !== undefined ? { "grpc.max_concurrent_streams": opts.maxConcurrentStreams } : {}),
    ...(opts.keepaliveIntervalMs !== undefined ? { "grpc.keepalive_time_ms": opts.keepaliveIntervalMs } : {}),
    ...(opts.keepaliveTimeoutMs !== undefined ? { "grpc.keepalive_timeout_ms": opts.keepaliveTimeoutMs } : {}),
  });
  const protos = loadEtcdProto().services;
  const defs: Partial<Record<AnyServiceName, grpc.ServiceDefinition>> = {
    KV: withRawResponses(protos.KV.service, ["Range", "Put", "DeleteRange", "Txn", "Compact"], {
      Put: decodePutRequest,
    }),
    Watch: withRawResponses(protos.Watch.service, ["Watch"]),
    Lease: protos.Lease.service,
    Maintenance: protos.Maintenance.service,
    Cluster: protos.Cluster.service,
    Auth: protos.Auth.service,
    Lock: loadRecipeProto().Lock.service,
    Election: loadRecipeProto().Election.service,
  };
  const impls: Partial<Record<AnyServiceName, grpc.UntypedServiceImplementation>> = {
    KV: kvService(s, {
      maxTxnOps: opts.maxTxnOps ?? MAX_TXN_OPS,
      maxRequestBytes: opts.maxRequestBytes ?? MAX_REQUEST_BYTES,
    }),
    Watch: watchService(s, s.watchable, {
      maxResponseBytes: opts.maxRequestBytes ?? MAX_REQUEST_BYTES,
      ...(opts.watchProgressNotifyIntervalMs !== undefined
        ? { progressNotifyIntervalMs: opts.watchProgressNotifyIntervalMs }
        : {}),
    }),
    Lease: leaseService(s, toStatus),
    Maintenance: maintenanceService(s, { version: ETCD_VERSION }, toStatus),
    Cluster: clusterService(s),
    Auth: authService(s, toStatus),
    Lock: lockService(s),
    Election: electionService(s),
  };
  for (const name of Object.keys(impls) as AnyServiceName[]) {
    const def = defs[name];
    const impl = impls[name];
    if (def !== undefined && impl !== undefined)
      server.addService(def, instrument(`${servicePackage(name)}.${name}`, def, impl, s.metrics));
  }
  if (opts.http === undefined && opts.tls === undefined) {
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(opts.address, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });
    installLeanUnary(server, maxBytes, MAX_SEND_BYTES);
    return { port, close: () => shutdown(server) };
  }
  const gateway = new Gateway(impls, defs, maxBytes);
  const http = createServer((req, res) => opts.http?.(req, res, gateway));
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const lean = installLeanUnary(server, maxBytes, MAX_SEND_BYTES);
  // ETCD_TS_LANE=0: every stream through node:http2 and grpc-js, as without the lane (a way out, and an A/B switch).
  const lane = lean !== undefined && process.env["ETCD_TS_LANE"] !== "0" ? leanLaneServer(lean) : undefined;
  const onSocket = (socket: Socket): void => dispatch(socket, injector, http, lane);
  const listener =
    opts.tls === undefined
      ? createNetServer(onSocket)
      : createSecureListener({ ...opts.tls, alpn: ["h2", "http/1.1"] }, onSocket);
  const port = await listen(listener, opts.address);
  return {
    port,
    close: async () => {
      listener.close();
      http.closeAllConnections();
      await shutdown(server);
      injector.destroy();
    },
  };
}

/** Go's names of gRPC codes, as go-grpc-prometheus labels them. */
const GO_CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

type AnyHandler = (
  call: grpc.ServerUnaryCall<unknown, unknown> & NodeJS.EventEmitter,
  cb?: grpc.sendUnaryData<unknown>,
) => void;

/** Counts every call as go-grpc-prometheus does: grpc_server_started_total and grpc_server_handled_total. */
function instrument(
  service: string,
  def: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  m: ServerMetrics,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    const d = def[method];
    const type =
      d === undefined
        ? "unary"
        : d.requestStream
          ? d.responseStream
            ? "bidi_stream"
            : "client_stream"
          : d.responseStream
            ? "server_stream"
            : "unary";
    const labels = { grpc_method: method, grpc_service: service, grpc_type: type };
    const h = handler as unknown as AnyHandler;
    const started = m.grpcStarted.child(labels);
    const okHandled = m.grpcHandled.child({ grpc_code: "OK", ...labels });
    out[method] = ((
      call: grpc.ServerUnaryCall<unknown, unknown> & NodeJS.EventEmitter,
      cb?: grpc.sendUnaryData<unknown>,
    ) => {
      started.inc();
      if (cb === undefined) {
        let done = false;
        const handled = (code: number): void => {
          if (done) return;
          done = true;
          m.grpcHandled.inc({ grpc_code: GO_CODE_NAMES[code] ?? "Unknown", ...labels });
        };
        call.on("finish", () => handled(0));
        call.on("error", (e: { code?: number }) => handled(e.code ?? 2));
        h(call);
        return;
      }
      h(call, (err, value) => {
        if (err === null) okHandled.inc();
        else m.grpcHandled.inc({ grpc_code: GO_CODE_NAMES[err.code ?? 2] ?? "Unknown", ...labels });
        cb(err, value);
      });
    }) as unknown as grpc.UntypedHandleCall;
  }
  return out;
}

/** The HTTP/2 connection preface's first bytes; no HTTP/1 method starts with them. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * Sends a client connection to grpc-js (HTTP/2) or node:http (HTTP/1.1) by its first bytes. HTTP/2 goes through
 * serveHttp2: on the lane when there is one (http2/lane.ts: the hot KV calls answered there, the rest by grpc-js),
 * else the raw socket to grpc-js unless the client's :authority carries a scheme (etcd 3.4's clientv3 with http://
 * endpoints), which nghttp2 refuses and a rewriting pipe repairs (http2/authority_fix.ts).
 */
function dispatch(socket: Socket, injector: ConnectionInjector, http: HttpServer, lane?: OwnStreamServer): void {
  socket.on("error", () => socket.destroy());
  if (socket instanceof TLSSocket && socket.alpnProtocol === "h2") {
    serveHttp2(socket, injector, { lane });
    return;
  }
  socket.once("data", (first: Buffer) => {
    // Stop flowing and put the bytes back: both servers read what is buffered before taking over the socket.
    socket.pause();
    socket.unshift(first);
    const n = Math.min(first.length, H2_PREFACE.length);
    if (first.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
      // A TLS client that spoke HTTP/2 without ALPN: node:http2 serves a TLS socket only when ALPN said h2.
      if (socket instanceof TLSSocket) socket.alpnProtocol = "h2";
      serveHttp2(socket, injector, { lane });
    } else {
      http.emit("connection", socket);
      socket.resume();
    }
  });
}

/** Listens on host:port, or on a unix socket for "unix:<path>" (unix:// and unixs:// client URLs; port 0). */
function listen(server: NetServer, address: string): Promise<number> {
  if (address.startsWith("unix:")) {
    const path = address.slice("unix:".length);
    rmSync(path, { force: true }); // a stale socket of an earlier run, as etcd removes it
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve(0));
    });
  }
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === "object" && a !== null ? a.port : port);
    });
  });
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.tryShutdown(() => resolve());
    setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000).unref();
  });
}

export { toStatus };
