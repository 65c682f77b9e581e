// The HTTP/2 protocol between members, in one place: paths, headers, and the receiver's checks on every incoming
// request. As etcd's rafthttp, every request carries the sender's member id and cluster id; a receiver of another
// cluster answers 412 with its own cluster id ("request cluster ID mismatch"), a receiver that knows the sender as
// removed answers 410 ("removed member"), a request meant for another member answers 412 ("to field mismatch").

import type { IncomingHttpHeaders } from "node:http2";
import type { NodeId } from "../raft/types.js";

/** Long-lived stream of framed raft messages, sender → receiver. */
export const STREAM_PATH = "/raft/stream";
/** One snapshot: the MsgSnap frame, the body in chunk frames, then the trailer with length and sha256. */
export const SNAPSHOT_PATH = "/raft/snapshot";

export const HEADER = {
  clusterId: "x-etcd-cluster-id",
  from: "x-server-from",
  to: "x-raft-to",
  codec: "x-etcd-ts-codec",
  /** On a refusal: which check failed (a RefusalReason), so the sender needs no body parsing. */
  refusal: "x-etcd-ts-refusal",
} as const;

/** Version of codec.ts's message layout; a receiver refuses a stream of another version. */
export const CODEC_VERSION = "1";

export const RefusalReason = {
  ClusterIdMismatch: "cluster-id-mismatch",
  MemberRemoved: "member-removed",
  ToMismatch: "to-mismatch",
  BadRequest: "bad-request",
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

export interface Refusal {
  readonly reason: RefusalReason;
  readonly status: number;
  readonly body: string;
  /** Log fields for the receiver's warning. */
  readonly fields: Record<string, unknown>;
}

/** Member and cluster ids travel as etcd prints them: lowercase hex without padding. */
export function idToHex(id: bigint): string {
  return id.toString(16);
}

export function hexToId(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^[0-9a-f]{1,16}$/i.test(s)) return undefined;
  return BigInt("0x" + s);
}

export function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface LocalIdentity {
  readonly memberId: NodeId;
  readonly clusterId: bigint;
  isRemoved(id: NodeId): boolean;
}

/** refusalOf runs the receiver's checks on a request's headers; undefined means accept. */
export function refusalOf(headers: IncomingHttpHeaders, local: LocalIdentity): Refusal | undefined {
  const from = hexToId(headerString(headers, HEADER.from));
  const to = hexToId(headerString(headers, HEADER.to));
  const codec = headerString(headers, HEADER.codec);
  if (from === undefined || to === undefined || codec !== CODEC_VERSION) {
    const fields = { from: headers[HEADER.from], to: headers[HEADER.to], codec };
    return { reason: RefusalReason.BadRequest, status: 400, body: "bad peer request headers", fields };
  }
  const gotCluster = headerString(headers, HEADER.clusterId);
  const wantCluster = idToHex(local.clusterId);
  if (gotCluster !== wantCluster) {
    const fields = { "remote-peer-id": idToHex(from), got: gotCluster, want: wantCluster };
    return { reason: RefusalReason.ClusterIdMismatch, status: 412, body: "cluster ID mismatch", fields };
  }
  if (local.isRemoved(from)) {
    return {
      reason: RefusalReason.MemberRemoved,
      status: 410,
      body: "removed member",
      fields: { "remote-peer-id": idToHex(from) },
    };
  }
  if (to !== local.memberId) {
    const fields = { "remote-peer-id": idToHex(from), got: idToHex(to), want: idToHex(local.memberId) };
    return { reason: RefusalReason.ToMismatch, status: 412, body: "to field mismatch", fields };
  }
  return undefined;
}

/** The request headers a sender puts on every stream and snapshot request. */
export function requestHeaders(path: string, from: NodeId, to: NodeId, clusterId: bigint): Record<string, string> {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/octet-stream",
    [HEADER.clusterId]: idToHex(clusterId),
    [HEADER.from]: idToHex(from),
    [HEADER.to]: idToHex(to),
    [HEADER.codec]: CODEC_VERSION,
  };
}
