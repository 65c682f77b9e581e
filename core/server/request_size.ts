// How long etcd 3.4's encoding of a request would be: the protobuf InternalRaftRequest its proposer marshals (a
// RequestHeader with the request id and, with auth, the sender's name and auth revision, then the request in its
// own field), which etcd compares with --max-request-bytes before proposing. etcd-ts stores its own, shorter or
// longer, encoding in the log, but draws the size line where etcd does, so the same request is accepted or refused
// on both. The length is counted field by field, never encoded: this runs on every write.
//
// v2 writes and a member's publish travel in etcd as a bare v2 Request (proto2, every non-nullable field written
// even when zero), which etcd does not check against the limit; etcd-ts sizes them that way and still checks them,
// so no entry it proposes is larger than the configured limit allows for (a deliberate difference).
import type { AuthInfo } from "../auth/tokens.js";
import type { Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../mvcc/types.js";
import type { V2Request } from "../v2store/index.js";
import type { AuthOp } from "./auth_apply.js";
import type { InternalRequest, MemberPublish } from "./request_codec.js";

/**
 * What etcd's proposal carries that the etcd-ts request does not: the plaintext password of a user add or a
 * password change (etcd 3.4 logs it; etcd-ts logs its hash), and the sender of an auth change.
 */
export interface EtcdOnlyFields {
  readonly passwordBytes?: number;
  readonly sender?: AuthInfo | undefined;
}

/** Bytes of a varint holding a non-negative integer below 2^53; a negative int64 takes ten. */
function varint(n: number): number {
  if (n < 0) return 10;
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  for (let v = Math.floor(n / 0x10000000); v > 0; v = Math.floor(v / 128)) size++;
  return size;
}

/** 2^7, 2^14, …, 2^63: a varint takes one byte more for each of these its value reaches. */
const VARINT_STEPS = Array.from({ length: 9 }, (_, i) => 1n << BigInt(7 * (i + 1)));

/** Bytes of a varint holding a 64-bit integer (two's complement when negative); compares only, no shifts. */
function varintBig(n: bigint): number {
  if (n < 0n) return 10;
  for (let i = VARINT_STEPS.length - 1; i >= 0; i--) if (n >= (VARINT_STEPS[i] as bigint)) return i + 2;
  return 1;
}

const tag = (field: number): number => varint(field << 3);
/** A length-delimited field that is always written (a set message, a oneof's bytes). */
const lenField = (field: number, len: number): number => tag(field) + varint(len) + len;
/** proto3 bytes or string: omitted when empty. */
const bytesField = (field: number, len: number): number => (len === 0 ? 0 : lenField(field, len));
/** proto3 integer: omitted when zero. */
const intField = (field: number, n: number | undefined): number =>
  n === undefined || n === 0 ? 0 : tag(field) + varint(n);
const bigField = (field: number, n: bigint | undefined): number =>
  n === undefined || n === 0n ? 0 : tag(field) + varintBig(n);
const boolField = (field: number, b: boolean | undefined): number => (b === true ? tag(field) + 1 : 0);
const strBytes = (s: string): number => Buffer.byteLength(s, "utf8");
const strField = (field: number, s: string | undefined): number =>
  s === undefined ? 0 : bytesField(field, strBytes(s));

/** InternalRaftRequest's field of each v3 request kind (etcdserverpb/raft_internal.proto). */
const FIELD = {
  header: 100,
  put: 4,
  deleteRange: 5,
  txn: 6,
  compaction: 7,
  leaseGrant: 8,
  leaseRevoke: 9,
  alarm: 10,
  leaseCheckpoint: 11,
} as const;

/** InternalRaftRequest's field of each auth change. */
const AUTH_FIELD: Record<AuthOp["op"], number> = {
  enable: 1000,
  disable: 1011,
  authenticate: 1012,
  userAdd: 1100,
  userDelete: 1101,
  userChangePassword: 1103,
  userGrantRole: 1104,
  userRevokeRole: 1105,
  roleAdd: 1200,
  roleDelete: 1201,
  roleGrantPermission: 1203,
  roleRevokePermission: 1204,
};

/** The bytes etcd 3.4 would propose for `req` with request id `id`, sent by `auth` (auth on) or nobody. */
export function etcdRequestBytes(
  req: InternalRequest,
  id: bigint,
  auth: AuthInfo | undefined,
  etcdOnly?: EtcdOnlyFields,
): number {
  if ("v2" in req) return v2RequestBytes(req.v2, v2Path(req.v2), id);
  if ("publish" in req) return publishBytes(req.publish, id);
  const sender = auth ?? etcdOnly?.sender;
  const header =
    bigField(1, id) + (sender === undefined ? 0 : strField(2, sender.username) + intField(3, sender.revision));
  return lenField(FIELD.header, header) + requestField(req, etcdOnly?.passwordBytes ?? 0);
}

function requestField(req: Exclude<InternalRequest, { v2: unknown } | { publish: unknown }>, password: number): number {
  if ("put" in req) return lenField(FIELD.put, putBytes(req.put));
  if ("deleteRange" in req) return lenField(FIELD.deleteRange, deleteBytes(req.deleteRange));
  if ("txn" in req) return lenField(FIELD.txn, txnBytes(req.txn));
  // etcd-ts does not carry CompactionRequest.physical: a physical compaction is two bytes longer on etcd.
  if ("compact" in req) return lenField(FIELD.compaction, intField(1, req.compact.revision));
  if ("leaseGrant" in req)
    return lenField(FIELD.leaseGrant, intField(1, req.leaseGrant.ttl) + bigField(2, req.leaseGrant.id));
  if ("leaseRevoke" in req) return lenField(FIELD.leaseRevoke, bigField(1, req.leaseRevoke.id));
  if ("leaseCheckpoint" in req) {
    let size = 0;
    for (const c of req.leaseCheckpoint.checkpoints)
      size += lenField(1, bigField(1, c.id) + intField(2, c.remainingTtl));
    return lenField(FIELD.leaseCheckpoint, size);
  }
  if ("alarm" in req) {
    const a = req.alarm;
    return lenField(FIELD.alarm, intField(1, a.action) + bigField(2, a.memberId) + intField(3, a.type));
  }
  return lenField(AUTH_FIELD[req.auth.op], authBytes(req.auth, password));
}

function putBytes(p: PutRequest): number {
  return (
    bytesField(1, p.key.length) +
    bytesField(2, p.value.length) +
    bigField(3, p.lease) +
    boolField(4, p.prevKv) +
    boolField(5, p.ignoreValue) +
    boolField(6, p.ignoreLease)
  );
}

function deleteBytes(d: DeleteRangeRequest): number {
  return bytesField(1, d.key.length) + bytesField(2, d.rangeEnd?.length ?? 0) + boolField(3, d.prevKv);
}

function rangeBytes(r: RangeRequest & { readonly serializable?: boolean }): number {
  return (
    bytesField(1, r.key.length) +
    bytesField(2, r.rangeEnd?.length ?? 0) +
    intField(3, r.limit) +
    intField(4, r.revision) +
    intField(5, r.sortOrder) +
    intField(6, r.sortTarget) +
    boolField(7, r.serializable) +
    boolField(8, r.keysOnly) +
    boolField(9, r.countOnly) +
    intField(10, r.minModRevision) +
    intField(11, r.maxModRevision) +
    intField(12, r.minCreateRevision) +
    intField(13, r.maxCreateRevision)
  );
}

/** A Compare's target_union is a oneof: the chosen member is written even when it is zero. */
function compareBytes(c: Compare): number {
  let size = intField(1, c.result) + intField(2, c.target) + bytesField(3, c.key.length);
  if (c.version !== undefined) size += tag(4) + varint(c.version);
  else if (c.createRevision !== undefined) size += tag(5) + varint(c.createRevision);
  else if (c.modRevision !== undefined) size += tag(6) + varint(c.modRevision);
  else if (c.value !== undefined) size += lenField(7, c.value.length);
  else if (c.lease !== undefined) size += tag(8) + varintBig(c.lease);
  return size + bytesField(64, c.rangeEnd?.length ?? 0);
}

/** A RequestOp holds one request in a oneof: its message is written even when empty. */
function opBytes(op: RequestOp): number {
  if ("range" in op) return lenField(1, rangeBytes(op.range));
  if ("put" in op) return lenField(2, putBytes(op.put));
  if ("deleteRange" in op) return lenField(3, deleteBytes(op.deleteRange));
  return lenField(4, txnBytes(op.txn));
}

function txnBytes(t: TxnRequest): number {
  let size = 0;
  for (const c of t.compare) size += lenField(1, compareBytes(c));
  for (const op of t.success) size += lenField(2, opBytes(op));
  for (const op of t.failure) size += lenField(3, opBytes(op));
  return size;
}

function authBytes(a: AuthOp, password: number): number {
  switch (a.op) {
    case "enable":
    case "disable":
      return 0;
    case "authenticate":
      // InternalAuthenticateRequest: the name and the simple token's prefix; etcd leaves the password out.
      return strField(1, a.name) + strField(3, a.prefix);
    case "userAdd":
      // clientv3 always sends UserAddOptions, so etcd's request carries the (possibly empty) message.
      return strField(1, a.name) + bytesField(2, password) + lenField(3, boolField(1, a.noPassword));
    case "userChangePassword":
      return strField(1, a.name) + bytesField(2, password);
    case "userGrantRole":
    case "userRevokeRole":
      return strField(1, a.name) + strField(2, a.role);
    case "userDelete":
    case "roleAdd":
    case "roleDelete":
      return strField(1, a.name);
    case "roleGrantPermission": {
      const p = a.perm;
      const perm = intField(1, p.permType) + bytesField(2, p.key.length) + bytesField(3, p.rangeEnd.length);
      return strField(1, a.name) + lenField(2, perm);
    }
    case "roleRevokePermission":
      return strField(1, a.name) + bytesField(2, a.key.length) + bytesField(3, a.rangeEnd.length);
  }
}

/** etcd keeps v2 keys under "/1"; its SYNC carries no path. */
function v2Path(r: V2Request): string {
  return r.method === "SYNC" ? "" : `/1${r.path}`;
}

/** etcd's v2 Request (proto2): every field but the nullable PrevExist and Refresh is written, zero or not. */
function v2RequestBytes(r: V2Request, path: string, id: bigint): number {
  const always = (field: number, len: number): number => lenField(field, len);
  const num = (field: number, n: number | bigint): number =>
    tag(field) + (typeof n === "bigint" ? varintBig(n) : varint(n));
  const bool = (field: number): number => tag(field) + 1;
  return (
    num(1, id) +
    always(2, strBytes(r.method)) +
    always(3, strBytes(path)) +
    always(4, strBytes(r.value ?? "")) +
    bool(5) +
    always(6, strBytes(r.prevValue ?? "")) +
    num(7, r.prevIndex ?? 0) +
    (r.prevExist === undefined ? 0 : bool(8)) +
    num(9, r.expireNs ?? 0n) +
    bool(10) + // Wait
    num(11, 0) + // Since
    bool(12) + // Recursive
    bool(13) + // Sorted
    bool(14) + // Quorum
    num(15, r.timeNs ?? 0n) +
    bool(16) + // Stream
    (r.refresh === undefined ? 0 : bool(17))
  );
}

/** etcd publishes a member as a v2 PUT of its attributes (Go's JSON) under /0/members/<hex id>/attributes. */
function publishBytes(p: MemberPublish["publish"], id: bigint): number {
  const json = JSON.stringify({
    ...(p.name !== "" ? { name: p.name } : {}),
    ...(p.clientUrls.length > 0 ? { clientURLs: p.clientUrls } : {}),
  }).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const path = `/0/members/${p.memberId.toString(16)}/attributes`;
  return v2RequestBytes({ method: "PUT", path, value: json }, path, id);
}
