// KV requests from their grpc-js objects to the store's plain types, and KV responses straight to protobuf
// bytes around the stored KeyValue encodings (etcdserverpb field numbers). Nested txn responses carry a header
// with only the revision, as etcd's apply does; the top-level header carries all four fields.
import { EtcdError } from "../errors.js";
import type { ResponseHeader } from "../server/etcd_server.js";
import type * as mv from "../mvcc/types.js";
import type * as pb from "./proto/types.js";
import { PbReader } from "./pb_reader.js";
import { PbWriter, boolFieldSize, bytesFieldSize, uintFieldSize } from "./pb_writer.js";
import { GRPC_PREFIX_BYTES, prefixed } from "./grpc_send.js";

// ---- requests ----

const SORT_ORDER = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
const SORT_TARGET = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
const CMP_TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;
const CMP_RESULT = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;

const num = (v: string | number | undefined): number => (v === undefined || v === "" ? 0 : Number(v));
const big = (v: string | number | undefined): bigint => (v === undefined || v === "" ? 0n : BigInt(v));
const bytes = (b: Buffer | Uint8Array | undefined | null): Uint8Array => b ?? new Uint8Array(0);

function enumValue<T extends Record<string, number>>(table: T, v: unknown, what: string): T[keyof T] {
  if (typeof v === "number") return v as T[keyof T];
  const n = table[String(v ?? Object.keys(table)[0])];
  if (n === undefined) throw new Error(`unknown ${what} ${String(v)}`);
  return n as T[keyof T];
}

export function toRangeRequest(r: pb.RangeRequest__Output): mv.RangeRequest & { serializable: boolean } {
  return {
    key: bytes(r.key),
    rangeEnd: bytes(r.range_end),
    limit: num(r.limit),
    revision: num(r.revision),
    sortOrder: enumValue(SORT_ORDER, r.sort_order, "sort order"),
    sortTarget: enumValue(SORT_TARGET, r.sort_target, "sort target"),
    keysOnly: r.keys_only === true,
    countOnly: r.count_only === true,
    minModRevision: num(r.min_mod_revision),
    maxModRevision: num(r.max_mod_revision),
    minCreateRevision: num(r.min_create_revision),
    maxCreateRevision: num(r.max_create_revision),
    serializable: r.serializable === true,
  };
}

export function toPutRequest(r: pb.PutRequest__Output): mv.PutRequest {
  return {
    key: bytes(r.key),
    value: bytes(r.value),
    lease: big(r.lease),
    prevKv: r.prev_kv === true,
    ignoreValue: r.ignore_value === true,
    ignoreLease: r.ignore_lease === true,
  };
}

/** A bytes field's default; zero-length, so sharing it is safe. */
const EMPTY: Buffer = Buffer.alloc(0);

/**
 * PutRequest bytes as the object proto-loader builds (field names kept, defaults filled, lease as a decimal
 * string): the request deserializer of the hot Put method, read by hand instead of through protobufjs.
 */
export function decodePutRequest(buf: Uint8Array): pb.PutRequest__Output {
  const r = new PbReader(buf);
  const out = { key: EMPTY, value: EMPTY, lease: "0", prev_kv: false, ignore_value: false, ignore_lease: false };
  while (!r.done) {
    const tag = r.uint();
    switch (Math.floor(tag / 8)) {
      case 1:
        out.key = r.bytes();
        break;
      case 2:
        out.value = r.bytes();
        break;
      case 3:
        out.lease = r.int64String();
        break;
      case 4:
        out.prev_kv = r.bool();
        break;
      case 5:
        out.ignore_value = r.bool();
        break;
      case 6:
        out.ignore_lease = r.bool();
        break;
      default:
        r.skip(tag % 8);
    }
  }
  return out;
}

export function toDeleteRangeRequest(r: pb.DeleteRangeRequest__Output): mv.DeleteRangeRequest {
  return { key: bytes(r.key), rangeEnd: bytes(r.range_end), prevKv: r.prev_kv === true };
}

/** How grpc-js hands the server a Compare: the oneof's chosen member is named in target_union. */
type CompareIn = pb.Compare__Output;
/** How grpc-js hands the server a RequestOp: only the chosen member is set. */
type RequestOpIn = pb.RequestOp__Output;

function toCompare(c: CompareIn): mv.Compare {
  const base = {
    key: bytes(c.key),
    rangeEnd: bytes(c.range_end),
    target: enumValue(CMP_TARGET, c.target, "compare target"),
    result: enumValue(CMP_RESULT, c.result, "compare result"),
  };
  switch (c.target_union) {
    case "version":
      return { ...base, version: num(c.version) };
    case "create_revision":
      return { ...base, createRevision: num(c.create_revision) };
    case "mod_revision":
      return { ...base, modRevision: num(c.mod_revision) };
    case "value":
      return { ...base, value: bytes(c.value) };
    case "lease":
      return { ...base, lease: big(c.lease) };
    default:
      return base;
  }
}

function toRequestOp(op: RequestOpIn): mv.RequestOp {
  if (op.request_range != null) return { range: toRangeRequest(op.request_range) };
  if (op.request_put != null) return { put: toPutRequest(op.request_put) };
  if (op.request_delete_range != null) return { deleteRange: toDeleteRangeRequest(op.request_delete_range) };
  if (op.request_txn != null) return { txn: toTxnRequest(op.request_txn) };
  throw new EtcdError("EMPTY_KEY", "request op with no request");
}

export function toTxnRequest(r: pb.TxnRequest__Output): mv.TxnRequest {
  return {
    compare: (r.compare ?? []).map(toCompare),
    success: (r.success ?? []).map(toRequestOp),
    failure: (r.failure ?? []).map(toRequestOp),
  };
}

// ---- responses ----

export type Field =
  | readonly [number, "u", number | bigint]
  | readonly [number, "b", boolean]
  | readonly [number, "y", Uint8Array]
  | readonly [number, "m", Message];
export interface Message {
  readonly fields: readonly Field[];
  size: number;
}

export function msg(fields: readonly Field[]): Message {
  let size = 0;
  for (const f of fields) {
    switch (f[1]) {
      case "u":
        size += uintFieldSize(f[0], f[2]);
        break;
      case "b":
        size += boolFieldSize(f[0], f[2]);
        break;
      case "y":
        size += bytesFieldSize(f[0], f[2].length, true);
        break;
      case "m":
        size += bytesFieldSize(f[0], f[2].size, true);
        break;
    }
  }
  return { fields, size };
}

function write(w: PbWriter, m: Message): void {
  for (const f of m.fields) {
    switch (f[1]) {
      case "u":
        w.uint(f[0], f[2]);
        break;
      case "b":
        w.bool(f[0], f[2]);
        break;
      case "y":
        w.bytes(f[0], f[2], true);
        break;
      case "m":
        w.message(f[0], f[2].size);
        write(w, f[2]);
        break;
    }
  }
}

export function serialize(m: Message): Buffer {
  const w = new PbWriter(m.size);
  write(w, m);
  return w.finish();
}

export function headerMsg(h: ResponseHeader | { readonly revision: number }): Message {
  if (!("clusterId" in h)) return msg([[3, "u", h.revision]]);
  return msg([
    [1, "u", h.clusterId],
    [2, "u", h.memberId],
    [3, "u", h.revision],
    [4, "u", h.raftTerm],
  ]);
}

type Hdr = ResponseHeader | { readonly revision: number };

export function rangeResponse(h: Hdr, r: mv.RangeResponse): Message {
  const fields: Field[] = [[1, "m", headerMsg(h)]];
  for (const kv of r.kvs) fields.push([2, "y", kv]);
  fields.push([3, "b", r.more], [4, "u", r.count]);
  return msg(fields);
}

export function putResponse(h: Hdr, r: mv.PutResponse): Message {
  const fields: Field[] = [[1, "m", headerMsg(h)]];
  if (r.prevKv !== undefined) fields.push([2, "y", r.prevKv]);
  return msg(fields);
}

/** A member's cluster and member id never change: their header fields are encoded once, not per response. */
let idFields: { readonly clusterId: bigint; readonly memberId: bigint; readonly bytes: Buffer } | undefined;

function headerIdFields(h: ResponseHeader): Buffer {
  if (idFields?.clusterId === h.clusterId && idFields.memberId === h.memberId) return idFields.bytes;
  const bytes = serialize(
    msg([
      [1, "u", h.clusterId],
      [2, "u", h.memberId],
    ]),
  );
  idFields = { clusterId: h.clusterId, memberId: h.memberId, bytes };
  return bytes;
}

/** A top-level PutResponse as wire bytes: the same bytes as serialize(putResponse(h, r)), without the field lists. */
export function encodePutResponse(h: ResponseHeader, r: mv.PutResponse): Buffer {
  const ids = headerIdFields(h);
  const headerSize = ids.length + uintFieldSize(3, h.revision) + uintFieldSize(4, h.raftTerm);
  const prev = r.prevKv;
  const w = new PbWriter(
    bytesFieldSize(1, headerSize, true) + (prev === undefined ? 0 : bytesFieldSize(2, prev.length, true)),
  );
  w.message(1, headerSize);
  w.raw(ids);
  w.uint(3, h.revision);
  w.uint(4, h.raftTerm);
  if (prev !== undefined) w.bytes(2, prev, true);
  return w.finish();
}

export function deleteRangeResponse(h: Hdr, r: mv.DeleteRangeResponse): Message {
  const fields: Field[] = [
    [1, "m", headerMsg(h)],
    [2, "u", r.deleted],
  ];
  for (const kv of r.prevKvs) fields.push([3, "y", kv]);
  return msg(fields);
}

function responseOp(op: mv.ResponseOp): Message {
  if ("range" in op) return msg([[1, "m", rangeResponse({ revision: op.range.revision }, op.range)]]);
  if ("put" in op) return msg([[2, "m", putResponse({ revision: op.put.revision }, op.put)]]);
  if ("deleteRange" in op)
    return msg([[3, "m", deleteRangeResponse({ revision: op.deleteRange.revision }, op.deleteRange)]]);
  return msg([[4, "m", txnResponse({ revision: op.txn.revision }, op.txn)]]);
}

export function txnResponse(h: Hdr, r: mv.TxnResponse): Message {
  const fields: Field[] = [
    [1, "m", headerMsg(h)],
    [2, "b", r.succeeded],
  ];
  for (const op of r.responses) fields.push([3, "m", responseOp(op)]);
  return msg(fields);
}

export function compactResponse(h: Hdr): Message {
  return msg([[1, "m", headerMsg(h)]]);
}

/**
 * A top-level RangeResponse as wire bytes. When the store handed back its kvs already framed (the range
 * task's buffer, with free room around them), the header goes into the room before and more/count into the
 * room after, the gRPC message prefix in front of the header, and the buffer is sent as it is (grpc_send.ts):
 * a LIST of tens of MB costs the main thread no copy. A lent output slab is released once the message is written.
 */
export function encodeRangeResponse(h: ResponseHeader, r: mv.RangeResponse): Buffer {
  const f = r.framed;
  if (f === undefined) return serialize(rangeResponse(h, r));
  const head = serialize(msg([[1, "m", headerMsg(h)]]));
  const tail = serialize(
    msg([
      [3, "b", r.more],
      [4, "u", r.count],
    ]),
  );
  const from = f.start - head.length;
  const to = f.end + tail.length;
  if (from < GRPC_PREFIX_BYTES || to > f.buf.length) {
    throw new Error(
      `range frame gaps too small: head ${head.length} + ${GRPC_PREFIX_BYTES} > ${f.start} or tail ${tail.length} > ${f.buf.length - f.end}`,
    );
  }
  f.buf.set(head, from);
  f.buf.set(tail, f.end);
  return prefixed(Buffer.from(f.buf.buffer, f.buf.byteOffset + from, to - from), r.release);
}
