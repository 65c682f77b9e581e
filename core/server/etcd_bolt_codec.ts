// etcd 3.4's encodings of its backend buckets, as they appear in its bbolt snapshots, and the conversions from
// and to etcd-ts's own records. etcd keys its "key" bucket by revision: main (8 bytes big-endian) + '_' + sub
// (8 bytes), with a trailing 't' for a tombstone, whose value is a KeyValue holding only the key. Its "meta"
// bucket holds consistent_index (8 bytes) and the compaction revisions in the same 17-byte form; a lease is a
// leasepb.Lease {ID=1, TTL=2, RemainingTTL=3}; a member is Go's JSON of its Member struct keyed by the id in hex;
// an alarm is an AlarmMember {MemberID=1, Alarm=2} as the key with an empty value.
import type { Member } from "../membership/member_codec.js";

export const ETCD_BUCKETS = {
  key: "key",
  meta: "meta",
  lease: "lease",
  auth: "auth",
  authUsers: "authUsers",
  authRoles: "authRoles",
  members: "members",
  membersRemoved: "members_removed",
  cluster: "cluster",
  alarm: "alarm",
} as const;

export const REV_KEY_BYTES = 17;
const TOMBSTONE_MARK = 0x74; // 't'
export const CONSISTENT_INDEX_KEY = "consistent_index";
export const SCHEDULED_COMPACT_KEY = "scheduledCompactRev";
export const FINISHED_COMPACT_KEY = "finishedCompactRev";
export const CLUSTER_VERSION_KEY = "clusterVersion";
/** The cluster version etcd 3.4 records once its members agree. */
export const CLUSTER_VERSION = "3.4.0";
export const REMOVED_MEMBER_VALUE = "removed";

export function revKey(main: number, sub: number, tombstone: boolean): Buffer {
  const b = Buffer.alloc(tombstone ? REV_KEY_BYTES + 1 : REV_KEY_BYTES);
  b.writeBigUInt64BE(BigInt(main), 0);
  b[8] = 0x5f; // '_'
  b.writeBigUInt64BE(BigInt(sub), 9);
  if (tombstone) b[REV_KEY_BYTES] = TOMBSTONE_MARK;
  return b;
}

export interface RevKey {
  readonly main: number;
  readonly sub: number;
  readonly tombstone: boolean;
}

export function parseRevKey(key: Uint8Array): RevKey {
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const tombstone = b.length === REV_KEY_BYTES + 1 && b[REV_KEY_BYTES] === TOMBSTONE_MARK;
  if (b.length !== REV_KEY_BYTES && !tombstone)
    throw new Error(`etcd snapshot: key bucket key of ${b.length} bytes is not a revision`);
  return { main: safe(b.readBigUInt64BE(0)), sub: safe(b.readBigUInt64BE(9)), tombstone };
}

function safe(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`etcd snapshot: revision ${n} out of range`);
  return Number(n);
}

// --- protobuf varints (int64/uint64 as two's complement, 10 bytes at most) ---

function putVarint(out: number[], n: bigint): void {
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

/** Reads the varint at `pos`; returns it (unsigned) and the position after it. */
function getVarint(b: Uint8Array, pos: number): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    const byte = b[pos++];
    if (byte === undefined) throw new Error("etcd snapshot: truncated varint");
    v |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [BigInt.asUintN(64, v), pos];
  }
  throw new Error("etcd snapshot: varint too long");
}

/** The varint fields of a message (other wire types are skipped); unknown fields are ignored as proto3 does. */
function varintFields(b: Uint8Array): Map<number, bigint> {
  const out = new Map<number, bigint>();
  let pos = 0;
  while (pos < b.length) {
    const [tag, next] = getVarint(b, pos);
    pos = next;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, after] = getVarint(b, pos);
      out.set(field, v);
      pos = after;
    } else if (wire === 2) {
      const [len, after] = getVarint(b, pos);
      pos = after + Number(len);
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`etcd snapshot: unsupported wire type ${wire}`);
  }
  if (pos !== b.length) throw new Error("etcd snapshot: truncated message");
  return out;
}

export interface EtcdLease {
  readonly id: bigint;
  readonly ttl: number;
  readonly remainingTtl: number;
}

export function encodeEtcdLease(l: EtcdLease): Uint8Array {
  const out: number[] = [];
  if (l.id !== 0n) out.push(0x08), putVarint(out, l.id);
  if (l.ttl !== 0) out.push(0x10), putVarint(out, BigInt(l.ttl));
  if (l.remainingTtl !== 0) out.push(0x18), putVarint(out, BigInt(l.remainingTtl));
  return Uint8Array.from(out);
}

export function decodeEtcdLease(b: Uint8Array): EtcdLease {
  const f = varintFields(b);
  const seconds = (n: bigint | undefined): number => Math.max(0, Number(BigInt.asIntN(64, n ?? 0n)));
  return { id: BigInt.asIntN(64, f.get(1) ?? 0n), ttl: seconds(f.get(2)), remainingTtl: seconds(f.get(3)) };
}

export function encodeEtcdAlarm(memberId: bigint, alarm: number): Uint8Array {
  const out: number[] = [];
  if (memberId !== 0n) out.push(0x08), putVarint(out, memberId);
  if (alarm !== 0) out.push(0x10), putVarint(out, BigInt(alarm));
  return Uint8Array.from(out);
}

export function decodeEtcdAlarm(b: Uint8Array): { memberId: bigint; alarm: number } {
  const f = varintFields(b);
  return { memberId: f.get(1) ?? 0n, alarm: Number(f.get(2) ?? 0n) };
}

export function etcdMemberKey(id: bigint): Uint8Array {
  return Buffer.from(id.toString(16));
}

/** Go's encoding/json of etcd's Member: id as a bare uint64, then peerURLs, isLearner, name, clientURLs (omitempty). */
export function encodeEtcdMember(m: Member): Uint8Array {
  const rest: Record<string, unknown> = { peerURLs: m.peerUrls };
  if (m.isLearner) rest["isLearner"] = true;
  if (m.name !== "") rest["name"] = m.name;
  if (m.clientUrls.length > 0) rest["clientURLs"] = m.clientUrls;
  return Buffer.from(`{"id":${m.id.toString(10)},${JSON.stringify(rest).slice(1)}`);
}
