// The payload of a normal Raft entry: one client write (or lease/compaction op) with the id its proposer waits
// on. The format is etcd-ts's own — mixed clusters with real etcd are not a goal. Every member decodes the same
// bytes, so apply is deterministic. A put without auth, the bulk of all entries, has a fixed binary form
// (PUT_TAG); everything else is msgpackr (binary, keeps Uint8Array and bigint), whose encoding of an object never
// starts with PUT_TAG, so entries written in either form decode.
import { Packr } from "msgpackr";
import type { PutRequest, WriteRequest } from "../mvcc/types.js";
import type { V2Request } from "../v2store/index.js";
import type { AuthChange } from "./auth_apply.js";

/** Lease changes go through Raft like writes; the id of a grant is chosen by the proposer. */
export type LeaseRequest =
  | { readonly leaseGrant: { readonly id: bigint; readonly ttl: number } }
  | { readonly leaseRevoke: { readonly id: bigint } }
  | {
      readonly leaseCheckpoint: {
        readonly checkpoints: readonly { readonly id: bigint; readonly remainingTtl: number }[];
      };
    };

/** Raising (1) or clearing (2) a cluster alarm (etcdserverpb.AlarmRequest's action and type numbers). */
export interface AlarmChange {
  readonly alarm: { readonly action: 1 | 2; readonly memberId: bigint; readonly type: number };
}

/** A member announcing its name and client URLs once it runs (etcd's publish, through Raft like a write). */
export interface MemberPublish {
  readonly publish: { readonly memberId: bigint; readonly name: string; readonly clientUrls: readonly string[] };
}

/** A write to the v2 store (--enable-v2), or the leader's SYNC that expires its TTL keys. */
export interface V2Change {
  readonly v2: V2Request;
}

/** What a Raft entry carries: a KV write, a lease, alarm, auth change, publish or v2 write (never an in-process effect). */
export type InternalRequest =
  | Exclude<WriteRequest, { readonly effect: unknown }>
  | LeaseRequest
  | AlarmChange
  | AuthChange
  | MemberPublish
  | V2Change;

export interface RaftPayload {
  /** The proposer's request id (0n for entries nobody waits on). */
  readonly id: bigint;
  readonly req: InternalRequest;
  /** Who sent it, when auth is on: permissions are checked again when the entry applies (etcd's authApplier). */
  readonly auth?: { readonly username: string; readonly revision: number };
}

const packr = new Packr({ useRecords: false, int64AsType: "bigint", mapsAsObjects: true });

/**
 * A put without auth: PUT_TAG, flags (1 prev_kv, 2 ignore_value, 4 ignore_lease), id (u64 BE), lease (i64 BE),
 * key length (u32 BE), key, value. msgpackr's form of an object starts with a map byte (0x80–0x8f, 0xde, 0xdf).
 */
const PUT_TAG = 0x00;
const PUT_HEAD_BYTES = 1 + 1 + 8 + 8 + 4;

export function encodePayload(p: RaftPayload): Uint8Array {
  if (p.auth === undefined && "put" in p.req) return encodePut(p.id, p.req.put);
  return packr.pack(p);
}

function encodePut(id: bigint, put: PutRequest): Uint8Array {
  // From node's shared pool (no zero fill, no backing store of its own for payloads under 4 KiB).
  const out = Buffer.allocUnsafe(PUT_HEAD_BYTES + put.key.length + put.value.length);
  out[0] = PUT_TAG;
  out[1] = (put.prevKv === true ? 1 : 0) | (put.ignoreValue === true ? 2 : 0) | (put.ignoreLease === true ? 4 : 0);
  out.writeBigUInt64BE(BigInt.asUintN(64, id), 2);
  const lease = put.lease ?? 0n;
  if (lease === 0n) out.fill(0, 10, 18);
  else out.writeBigInt64BE(BigInt.asIntN(64, lease), 10);
  out.writeUInt32BE(put.key.length, 18);
  out.set(put.key, PUT_HEAD_BYTES);
  out.set(put.value, PUT_HEAD_BYTES + put.key.length);
  return out;
}

function decodePut(data: Uint8Array): RaftPayload {
  if (data.length < PUT_HEAD_BYTES) throw new Error(`raft payload of ${data.length} bytes is a truncated put`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const flags = data[1]!;
  const keyLen = view.getUint32(18);
  if (PUT_HEAD_BYTES + keyLen > data.length)
    throw new Error(`raft payload of ${data.length} bytes has a key of ${keyLen}`);
  const put: PutRequest = {
    key: data.subarray(PUT_HEAD_BYTES, PUT_HEAD_BYTES + keyLen),
    value: data.subarray(PUT_HEAD_BYTES + keyLen),
    lease: view.getBigInt64(10),
    prevKv: (flags & 1) !== 0,
    ignoreValue: (flags & 2) !== 0,
    ignoreLease: (flags & 4) !== 0,
  };
  return { id: view.getBigUint64(2), req: { put } };
}

export function decodePayload(data: Uint8Array): RaftPayload {
  if (data[0] === PUT_TAG) return decodePut(data);
  const p = packr.unpack(data) as RaftPayload;
  if (typeof p !== "object" || p === null || typeof p.id !== "bigint" || typeof p.req !== "object") {
    throw new Error(`raft payload of ${data.length} bytes is not an etcd-ts request`);
  }
  return p;
}
