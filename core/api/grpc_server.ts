// etcd's v3 gRPC services over @grpc/grpc-js, on top of EtcdServer. Handlers turn grpc-js objects into the
// server's plain request types, call the server, and hand back either protobuf bytes framed around stored
// KeyValues (KV: a per-method identity serializer lets a handler return bytes) or plain objects. This is the
// one place where EtcdError becomes a gRPC status (code + etcd's exact message).
import * as grpc from "@grpc/grpc-js";
import { isEtcdError } from "../errors.js";
import { GRPC_OVERHEAD_BYTES, MAX_REQUEST_BYTES } from "../limits.js";
import { checkDelete, checkPut, checkRange, checkTxn } from "../mvcc/validate.js";
import type { EtcdServer } from "../server/etcd_server.js";
import * as kc from "./kv_codec.js";
import { loadEtcdProto } from "./proto/load.js";
import { leaseService } from "./lease_service.js";
import { maintenanceService } from "./maintenance_service.js";
import { watchService } from "./watch_service.js";
import type * as pb from "./proto/types.js";

/** The etcd release whose API and behaviour etcd-ts follows; reported by Status and /version. */
export const ETCD_VERSION = "3.4.23";
export const ETCD_CLUSTER_VERSION = "3.4.0";

export interface MemberInfo {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export interface GrpcOptions {
  /** host:port to bind; port 0 picks a free one. */
  readonly address: string;
  readonly members: () => readonly MemberInfo[];
  readonly maxRequestBytes?: number;
  readonly watchProgressNotifyIntervalMs?: number;
}

type Handler<Req> = (req: Req) => Promise<unknown>;

function unary<Req>(fn: Handler<Req>): grpc.handleUnaryCall<Req, unknown> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toStatus(err)),
    );
  };
}

export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (isEtcdError(err)) return { code: err.grpcStatus as number, details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.UNKNOWN, details: message };
}

/** A copy of a service definition whose listed methods send already-encoded response bytes. */
function withRawResponses(def: grpc.ServiceDefinition, methods: readonly string[]): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = methods.includes(name) ? { ...m, responseSerialize: (b: unknown) => b as Buffer } : m;
  }
  return out as grpc.ServiceDefinition;
}

function kvService(s: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    Range: unary(async (req: pb.RangeRequest) => {
      const r = kc.toRangeRequest(req);
      checkRange(r);
      const { header, response } = await s.range(r);
      return kc.encodeRangeResponse(header, response);
    }),
    Put: unary(async (req: pb.PutRequest) => {
      const r = kc.toPutRequest(req);
      checkPut(r);
      const { header, response } = await s.put(r);
      return kc.serialize(kc.putResponse(header, response));
    }),
    DeleteRange: unary(async (req: pb.DeleteRangeRequest) => {
      const r = kc.toDeleteRangeRequest(req);
      checkDelete(r);
      const { header, response } = await s.deleteRange(r);
      return kc.serialize(kc.deleteRangeResponse(header, response));
    }),
    Txn: unary(async (req: pb.TxnRequest) => {
      const r = kc.toTxnRequest(req);
      checkTxn(r);
      const { header, response } = await s.txn(r);
      return kc.serialize(kc.txnResponse(header, response));
    }),
    Compact: unary(async (req: pb.CompactionRequest) => {
      const { header } = await s.compact(Number(req.revision));
      return kc.serialize(kc.compactResponse(header));
    }),
  };
}

/** A response header as a grpc-js object; etcd's Cluster service leaves the revision out (etcdctl shows none). */
function pbHeader(s: EtcdServer, withRevision = true): Record<string, string> {
  const h = s.header();
  return {
    cluster_id: h.clusterId.toString(), member_id: h.memberId.toString(),
    revision: withRevision ? String(h.revision) : "0", raft_term: String(h.raftTerm),
  };
}

function clusterService(s: EtcdServer, members: () => readonly MemberInfo[]): grpc.UntypedServiceImplementation {
  return {
    MemberList: unary(async () => ({
      header: pbHeader(s, false),
      members: members().map((m) => ({
        ID: m.id.toString(), name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner,
      })),
    })),
  };
}

export interface GrpcHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function serveGrpc(s: EtcdServer, opts: GrpcOptions): Promise<GrpcHandle> {
  const maxBytes = (opts.maxRequestBytes ?? MAX_REQUEST_BYTES) + GRPC_OVERHEAD_BYTES;
  const server = new grpc.Server({ "grpc.max_receive_message_length": maxBytes, "grpc.max_send_message_length": 2 ** 31 - 1, "grpc.enable_channelz": 0 });
  const defs = loadEtcdProto().services;
  server.addService(withRawResponses(defs.KV.service, ["Range", "Put", "DeleteRange", "Txn", "Compact"]), kvService(s));
  server.addService(withRawResponses(defs.Watch.service, ["Watch"]), watchService(s, s.watchable, {
    maxResponseBytes: opts.maxRequestBytes ?? MAX_REQUEST_BYTES,
    ...(opts.watchProgressNotifyIntervalMs !== undefined ? { progressNotifyIntervalMs: opts.watchProgressNotifyIntervalMs } : {}),
  }));
  server.addService(defs.Lease.service, leaseService(s, toStatus));
  server.addService(defs.Maintenance.service, maintenanceService(s, { version: ETCD_VERSION, isLearner: false }, toStatus));
  server.addService(defs.Cluster.service, clusterService(s, opts.members));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => { server.forceShutdown(); resolve(); }, 2000).unref();
    }),
  };
}
