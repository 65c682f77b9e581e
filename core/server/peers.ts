// The member's side of the peer transport: what it does with each Raft message, snapshot and refusal that
// arrives, and keeping the transport's peer list equal to the applied member list.
import { join } from "node:path";
import type { Cluster } from "../membership/cluster.js";
import type { MemberChange } from "../membership/conf_change.js";
import type { Message } from "../raft/index.js";
import { PeerTransport } from "../transport/index.js";
import { peerHandlers, type LeaderSide } from "./peer_link.js";
import type { PeerConfig, ServerConfig } from "./server_config.js";

export interface PeerHost {
  readonly config: ServerConfig;
  onMessage(m: Message): void;
  onSnapshot(m: Message, bodyPath: string): void;
  onUnreachable(id: bigint): void;
  onSnapshotStatus(id: bigint, ok: boolean): void;
  /** A peer knows this member as removed. */
  onRemoved(why: string): void;
  readonly handlers: LeaderSide;
}

export function newPeerTransport(peer: PeerConfig, host: PeerHost): PeerTransport {
  const config = host.config;
  const log = config.log;
  return new PeerTransport({
    memberId: config.memberId,
    clusterId: config.clusterId,
    listenUrls: peer.listenUrls,
    snapshotDir: join(config.dataDir, "member", "snap", "incoming"),
    onMessage: (m) => host.onMessage(m),
    onSnapshot: (m, path) => host.onSnapshot(m, path),
    onUnreachable: (id) => host.onUnreachable(id),
    onSnapshotStatus: (id, ok) => host.onSnapshotStatus(id, ok),
    onRefused: (id, reason, direction) => {
      if (direction === "outbound" && reason === "member-removed")
        host.onRemoved(`peer ${id.toString(16)} knows this member as removed`);
      else
        log?.(
          "W",
          "rafthttp",
          `${direction} peer request ${direction === "outbound" ? "to" : "from"} ${id.toString(16)} refused (${reason})`,
        );
    },
    logger: (level, msg, fields) =>
      log?.(
        level === "info" ? "I" : level === "warn" ? "W" : "E",
        "rafthttp",
        fields === undefined
          ? msg
          : `${msg} ${JSON.stringify(fields, (_k, v: unknown) => (typeof v === "bigint" ? v.toString(16) : v))}`,
      ),
    httpHandlers: peerHandlers(host.handlers),
    ...(peer.tls !== undefined ? { tls: peer.tls } : {}),
    ...(peer.timeouts !== undefined ? { peerTimeouts: peer.timeouts } : {}),
  });
}

/** The transport talks to exactly the current members (after start-up and after a snapshot). */
export function syncPeers(t: PeerTransport | undefined, cluster: Cluster, self: bigint): void {
  if (t === undefined) return;
  for (const m of cluster.members()) {
    if (m.id === self) continue;
    t.addPeer(m.id, m.peerUrls);
    t.updatePeer(m.id, m.peerUrls);
  }
  for (const id of cluster.removedIds()) if (id !== self) t.removePeer(id);
}

/** An accepted member change was applied: the transport follows it; a member removed itself stops. */
export function followMemberChange(
  t: PeerTransport | undefined,
  change: MemberChange,
  config: ServerConfig,
  removedSelf: (why: string) => void,
): void {
  const self = config.memberId;
  if (change.kind === "add" && change.member.id !== self) t?.addPeer(change.member.id, change.member.peerUrls);
  if (change.kind === "update" && change.id !== self) t?.updatePeer(change.id, change.peerUrls);
  if (change.kind === "remove") {
    if (change.id === self) removedSelf("removed through a conf change");
    else t?.removePeer(change.id);
  }
  config.log?.(
    "I",
    "membership",
    `applied ${change.kind} of member ${(change.kind === "add" ? change.member.id : change.id).toString(16)}`,
  );
}
