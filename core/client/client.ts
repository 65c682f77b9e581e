// EtcdClient: the etcd-ts client the harness uses. KV (range, put, deleteRange, txn, compact), a LIST-oriented
// range that reads only a summary of the response, Watch (watch.ts), Lease (grant, revoke, keepalive, leases),
// and the Cluster, Maintenance and Auth wrappers (cluster_api.ts, maintenance_api.ts, auth_api.ts), over
// Connection's round-robin failover, TLS, auth token and retry policy. 64-bit numbers are bigint in and out.
import type * as pb from "../api/proto/types.js";
import { AuthApi } from "./auth_api.js";
import { ClusterApi } from "./cluster_api.js";
import { Connection, type ConnectionOptions } from "./connection.js";
import { MaintenanceApi } from "./maintenance_api.js";
import { LeaseKeepAlive } from "./lease_keepalive.js";
import { Watcher, type WatchOptions } from "./watch.js";
import {
  big,
  header,
  keyValue,
  prefixEnd,
  summariseRange,
  toBuf,
  type Bytes,
  type KeyValue,
  type RangeSummary,
  type ResponseHeader,
} from "./wire.js";
import type { Status } from "./maintenance_api.js";

export interface RangeOptions {
  readonly rangeEnd?: Bytes;
  /** Select every key starting with `key` (sets rangeEnd to the prefix end). */
  readonly prefix?: boolean;
  readonly limit?: number;
  readonly revision?: bigint;
  readonly serializable?: boolean;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly timeoutMs?: number;
}

export interface RangeResult {
  readonly header: ResponseHeader;
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: bigint;
}

export interface PutOptions {
  readonly lease?: bigint;
  readonly prevKv?: boolean;
}

export interface PutResult {
  readonly header: ResponseHeader;
  readonly prevKv: KeyValue | undefined;
}

export interface DeleteOptions {
  readonly rangeEnd?: Bytes;
  readonly prefix?: boolean;
  readonly prevKv?: boolean;
}

export interface DeleteResult {
  readonly header: ResponseHeader;
  readonly deleted: bigint;
  readonly prevKvs: KeyValue[];
}

/** Compare is one Txn guard: `target(key) result value`, e.g. { key, target: "MOD", result: "EQUAL", value: 0n }. */
export interface Compare {
  readonly key: Bytes;
  readonly target: pb.CompareTarget;
  readonly result: pb.CompareResult;
  readonly value: bigint | Bytes;
  readonly rangeEnd?: Bytes;
}

export type Op =
  | { readonly range: RangeOptions & { readonly key: Bytes } }
  | { readonly put: PutOptions & { readonly key: Bytes; readonly value: Bytes } }
  | { readonly delete: DeleteOptions & { readonly key: Bytes } };

export type OpResult =
  | { readonly range: RangeResult }
  | { readonly put: PutResult }
  | { readonly delete: DeleteResult };

export interface TxnSpec {
  readonly compare: readonly Compare[];
  readonly success: readonly Op[];
  readonly failure?: readonly Op[];
}

export interface TxnResult {
  readonly header: ResponseHeader;
  readonly succeeded: boolean;
  readonly responses: OpResult[];
}

export interface LeaseGrant {
  readonly header: ResponseHeader;
  readonly id: bigint;
  readonly ttlSeconds: bigint;
}

export type ClientOptions = ConnectionOptions;

export class EtcdClient {
  readonly connection: Connection;
  /** Member list/add/remove/update/promote (etcd's Cluster service). */
  readonly cluster: ClusterApi;
  /** Alarms, defragment, hashes, snapshot, move-leader, status (etcd's Maintenance service). */
  readonly maintenance: MaintenanceApi;
  /** Auth enable/disable and users and roles (etcd's Auth service). */
  readonly auth: AuthApi;

  constructor(opts: ClientOptions) {
    this.connection = new Connection(opts);
    this.cluster = new ClusterApi(this.connection);
    this.maintenance = new MaintenanceApi(this.connection);
    this.auth = new AuthApi(this.connection);
  }

  /** syncEndpoints replaces the endpoints with the members' client URLs (what autoSyncIntervalMs runs). */
  syncEndpoints(): Promise<string[]> {
    return this.connection.syncEndpoints();
  }

  async get(key: Bytes, opts: RangeOptions = {}): Promise<RangeResult> {
    const res = await this.connection.unary<pb.RangeRequest, pb.RangeResponse__Output>(
      "KV",
      "Range",
      rangeRequest(key, opts),
      opts.timeoutMs,
    );
    return rangeResult(res);
  }

  /**
   * rangeSummary is a Range whose response is not decoded into key-values: it returns the revision, the number
   * of kvs, `more`, `count`, the response size and the last key (enough to page a LIST and to measure it).
   */
  async rangeSummary(key: Bytes, opts: RangeOptions = {}): Promise<RangeSummary> {
    const call =
      opts.timeoutMs === undefined
        ? { deserialize: summariseRange }
        : { deserialize: summariseRange, timeoutMs: opts.timeoutMs };
    return this.connection.invoke<pb.RangeRequest, RangeSummary>("KV", "Range", rangeRequest(key, opts), call);
  }

  async put(key: Bytes, value: Bytes, opts: PutOptions = {}): Promise<PutResult> {
    const res = await this.connection.unary<pb.PutRequest, pb.PutResponse__Output>(
      "KV",
      "Put",
      putRequest(key, value, opts),
    );
    return { header: header(res.header), prevKv: res.prev_kv === null ? undefined : keyValue(res.prev_kv) };
  }

  async deleteRange(key: Bytes, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const res = await this.connection.unary<pb.DeleteRangeRequest, pb.DeleteRangeResponse__Output>(
      "KV",
      "DeleteRange",
      deleteRequest(key, opts),
    );
    return deleteResult(res);
  }

  async txn(spec: TxnSpec): Promise<TxnResult> {
    const req: pb.TxnRequest = {
      compare: spec.compare.map(compareRequest),
      success: spec.success.map(opRequest),
      failure: (spec.failure ?? []).map(opRequest),
    };
    const res = await this.connection.unary<pb.TxnRequest, pb.TxnResponse__Output>("KV", "Txn", req);
    return { header: header(res.header), succeeded: res.succeeded, responses: res.responses.map(opResult) };
  }

  async compact(revision: bigint, opts: { physical?: boolean } = {}): Promise<ResponseHeader> {
    const req: pb.CompactionRequest = { revision: revision.toString(), physical: opts.physical ?? false };
    const res = await this.connection.unary<pb.CompactionRequest, pb.CompactionResponse__Output>("KV", "Compact", req);
    return header(res.header);
  }

  /** watch opens a watch stream; iterate it with `for await`, close it with cancel(). */
  watch(key: Bytes, opts: WatchOptions = {}): Watcher {
    return new Watcher(this.connection, toBuf(key), opts);
  }

  async leaseGrant(ttlSeconds: number, id = 0n): Promise<LeaseGrant> {
    const res = await this.connection.unary<pb.LeaseGrantRequest, pb.LeaseGrantResponse__Output>(
      "Lease",
      "LeaseGrant",
      {
        TTL: ttlSeconds,
        ID: id.toString(),
      },
    );
    return { header: header(res.header), id: big(res.ID), ttlSeconds: big(res.TTL) };
  }

  async leaseRevoke(id: bigint): Promise<ResponseHeader> {
    const res = await this.connection.unary<pb.LeaseRevokeRequest, pb.LeaseRevokeResponse__Output>(
      "Lease",
      "LeaseRevoke",
      {
        ID: id.toString(),
      },
    );
    return header(res.header);
  }

  async leaseTimeToLive(
    id: bigint,
    keys = false,
  ): Promise<{ ttlSeconds: bigint; grantedTtlSeconds: bigint; keys: Buffer[] }> {
    const res = await this.connection.unary<pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse__Output>(
      "Lease",
      "LeaseTimeToLive",
      { ID: id.toString(), keys },
    );
    return { ttlSeconds: big(res.TTL), grantedTtlSeconds: big(res.grantedTTL), keys: res.keys };
  }

  /** leaseKeepAlive refreshes the lease every TTL/3 until stop() (etcd's clientv3 rhythm). */
  leaseKeepAlive(id: bigint): LeaseKeepAlive {
    return new LeaseKeepAlive(this.connection, id);
  }

  /** leases lists the ids of every lease the cluster holds. */
  async leases(): Promise<bigint[]> {
    const res = await this.connection.unary<pb.LeaseLeasesRequest, pb.LeaseLeasesResponse__Output>(
      "Lease",
      "LeaseLeases",
      {},
    );
    return res.leases.map((l) => big(l.ID));
  }

  /** status of the current endpoint's member (Maintenance.Status). */
  status(): Promise<Status> {
    return this.maintenance.status();
  }

  close(): void {
    this.connection.close();
  }
}

function rangeEndOf(key: Buffer, opts: { rangeEnd?: Bytes; prefix?: boolean }): Buffer | undefined {
  if (opts.prefix === true) return prefixEnd(key);
  return opts.rangeEnd === undefined ? undefined : toBuf(opts.rangeEnd);
}

function rangeRequest(key: Bytes, opts: RangeOptions): pb.RangeRequest {
  const k = toBuf(key);
  const req: pb.RangeRequest = { key: k };
  const end = rangeEndOf(k, opts);
  if (end !== undefined) req.range_end = end;
  if (opts.limit !== undefined) req.limit = opts.limit;
  if (opts.revision !== undefined) req.revision = opts.revision.toString();
  if (opts.serializable === true) req.serializable = true;
  if (opts.keysOnly === true) req.keys_only = true;
  if (opts.countOnly === true) req.count_only = true;
  return req;
}

function putRequest(key: Bytes, value: Bytes, opts: PutOptions): pb.PutRequest {
  const req: pb.PutRequest = { key: toBuf(key), value: toBuf(value) };
  if (opts.lease !== undefined) req.lease = opts.lease.toString();
  if (opts.prevKv === true) req.prev_kv = true;
  return req;
}

function deleteRequest(key: Bytes, opts: DeleteOptions): pb.DeleteRangeRequest {
  const k = toBuf(key);
  const req: pb.DeleteRangeRequest = { key: k };
  const end = rangeEndOf(k, opts);
  if (end !== undefined) req.range_end = end;
  if (opts.prevKv === true) req.prev_kv = true;
  return req;
}

function compareRequest(c: Compare): pb.Compare {
  const req: pb.Compare = { key: toBuf(c.key), target: c.target, result: c.result };
  if (c.rangeEnd !== undefined) req.range_end = toBuf(c.rangeEnd);
  if (c.target === "VALUE") {
    if (typeof c.value === "bigint") throw new Error(`VALUE compare needs bytes, got ${c.value}`);
    req.value = toBuf(c.value);
    return req;
  }
  if (typeof c.value !== "bigint") throw new Error(`${c.target} compare needs a bigint, got ${typeof c.value}`);
  const v = c.value.toString();
  if (c.target === "VERSION") req.version = v;
  else if (c.target === "CREATE") req.create_revision = v;
  else if (c.target === "MOD") req.mod_revision = v;
  else req.lease = v;
  return req;
}

function opRequest(op: Op): pb.RequestOp {
  if ("range" in op) return { request_range: rangeRequest(op.range.key, op.range) };
  if ("put" in op) return { request_put: putRequest(op.put.key, op.put.value, op.put) };
  return { request_delete_range: deleteRequest(op.delete.key, op.delete) };
}

function rangeResult(res: pb.RangeResponse__Output): RangeResult {
  return { header: header(res.header), kvs: res.kvs.map(keyValue), more: res.more, count: big(res.count) };
}

function deleteResult(res: pb.DeleteRangeResponse__Output): DeleteResult {
  return { header: header(res.header), deleted: big(res.deleted), prevKvs: res.prev_kvs.map(keyValue) };
}

function opResult(r: pb.ResponseOp__Output): OpResult {
  if (r.response_range != null) return { range: rangeResult(r.response_range) };
  if (r.response_put != null) {
    const p = r.response_put;
    return { put: { header: header(p.header), prevKv: p.prev_kv === null ? undefined : keyValue(p.prev_kv) } };
  }
  if (r.response_delete_range != null) return { delete: deleteResult(r.response_delete_range) };
  throw new Error(`unsupported txn response op ${String(r.response)}`);
}
