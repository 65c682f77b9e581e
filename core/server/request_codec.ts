// The payload of a normal Raft entry: one client write (or lease/compaction op) with the id its proposer waits
// on. Encoded with msgpackr (binary, keeps Uint8Array and bigint); the format is etcd-ts's own — mixed clusters
// with real etcd are not a goal. Every member decodes the same bytes, so apply is deterministic.
import { Packr } from "msgpackr";
import type { WriteRequest } from "../mvcc/types.js";
import type { V2Request } from "../v2store/index.js";
import type { AuthChange } from "./auth_apply.js";

/** Lease changes go through Raft like writes; the id of a grant is chosen by the proposer. */
export type LeaseRequest =
  | { readonly leaseGrant: { readonly id: bigint; readonly ttl: number } }
  | { readonly leaseRevoke: { readonly id: bigint } }
  | { readonly leaseCheckpoint: { readonly checkpoints: readonly { readonly id: bigint; readonly remainingTtl: number }[] } };

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
export type InternalRequest = Exclude<WriteRequest, { readonly effect: unknown }> | LeaseRequest | AlarmChange | AuthChange | MemberPublish | V2Change;

export interface RaftPayload {
  /** The proposer's request id (0n for entries nobody waits on). */
  readonly id: bigint;
  readonly req: InternalRequest;
  /** Who sent it, when auth is on: permissions are checked again when the entry applies (etcd's authApplier). */
  readonly auth?: { readonly username: string; readonly revision: number };
}

const packr = new Packr({ useRecords: false, int64AsType: "bigint", mapsAsObjects: true });

export function encodePayload(p: RaftPayload): Uint8Array {
  return packr.pack(p);
}

export function decodePayload(data: Uint8Array): RaftPayload {
  const p = packr.unpack(data) as RaftPayload;
  if (typeof p !== "object" || p === null || typeof p.id !== "bigint" || typeof p.req !== "object") {
    throw new Error(`raft payload of ${data.length} bytes is not an etcd-ts request`);
  }
  return p;
}
