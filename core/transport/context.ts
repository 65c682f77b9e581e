// What the per-peer senders and the receivers need from their PeerTransport: identity, TLS options, the fault
// seam, and the callbacks into the server (raft's ReportUnreachable / ReportSnapshot, logging). A plain interface,
// so a sender can be tested or benchmarked without the listening side.

import type { Message, NodeId } from "../raft/types.js";
import type { RefusalReason } from "./protocol.js";
import type { TransportTls } from "./urls.js";

export type LogLevel = "info" | "warn" | "error";
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/**
 * Injectable faults, for tests and experiments (partition a member without iptables, corrupt a snapshot in
 * flight). Everything is optional; with no faults set the transport behaves normally.
 */
export interface TransportFaults {
  /** true: drop this outgoing message as a lossy network would (it still counts as sent). */
  readonly dropOutgoing?: (m: Message) => boolean;
  /** true: drop this received message before onMessage. */
  readonly dropIncoming?: (m: Message) => boolean;
  /** Replace a snapshot chunk on the wire after it was hashed: corrupt it, or "truncate" to end the body there. */
  readonly snapshotChunk?: (attempt: number, chunkIndex: number, chunk: Buffer) => Buffer | "truncate";
}

/** Liveness timing of peer streams (defaults in transport_limits.ts; tests shorten them). */
export interface PeerTimeouts {
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
  /** A stream not answered (response headers) within this long counts as failed. */
  readonly dialTimeoutMs: number;
  /** Reconnect backoff: the first retry waits the minimum, each failure doubles it up to the maximum (a refusal
   * waits the maximum at once). */
  readonly reconnectBackoffMinMs: number;
  readonly reconnectBackoffMaxMs: number;
}

export interface SenderContext {
  readonly memberId: NodeId;
  readonly timeouts: PeerTimeouts;
  readonly clusterId: bigint;
  readonly tls: TransportTls | undefined;
  log: Logger;
  faults(): TransportFaults;
  reportUnreachable(peer: NodeId): void;
  reportSnapshot(peer: NodeId, ok: boolean): void;
  peerStatus(peer: NodeId, active: boolean): void;
  refused(peer: NodeId, reason: RefusalReason, direction: "inbound" | "outbound"): void;
}
