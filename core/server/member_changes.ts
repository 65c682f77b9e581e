// Proposing member changes: the checks a reconfiguration needs from the transport (etcd's --strict-reconfig-check)
// and the wait for a proposed conf change to apply with its outcome.
import { EtcdError } from "../errors.js";
import { toConfChange, type MemberChange } from "../membership/conf_change.js";
import { RaftError } from "../raft/index.js";
import type { PeerTransport } from "../transport/index.js";
import type { Applier } from "./applier.js";
import type { ConfOutcome } from "./membership_apply.js";
import type { RaftNode } from "./raft_node.js";
import type { ServerConfig } from "./server_config.js";

/** etcd's HealthInterval: a peer counts as up for reconfiguration checks once connected this long. */
const PEER_HEALTH_INTERVAL_MS = 5_000;

export interface ReconfigOptions {
  strictReconfigCheck: boolean;
  activeSince: (id: bigint) => boolean;
  isConnected: (id: bigint) => boolean;
  localId: bigint;
}

export function reconfigOptions(config: ServerConfig, t: PeerTransport | undefined): ReconfigOptions {
  const since = (id: bigint): number | undefined => t?.activeSince(id);
  return {
    strictReconfigCheck: config.strictReconfigCheck ?? true,
    localId: config.memberId,
    // etcd's HealthInterval: a peer counts as up once connected for 5 s.
    activeSince: (id) => id === config.memberId || (since(id) ?? Infinity) <= Date.now() - PEER_HEALTH_INTERVAL_MS,
    isConnected: (id) => id === config.memberId || since(id) !== undefined,
  };
}

/** Proposes a conf change and resolves once it applied here (rejects with its refusal or a timeout). */
export async function proposeMemberChange(
  node: RaftNode,
  applier: Applier,
  change: MemberChange,
  timeoutMs: number,
): Promise<void> {
  const cc = toConfChange(change);
  const key = `${cc.type}:${cc.nodeId}`;
  const waiters = applier.confWaiters;
  if (waiters.has(key))
    throw new EtcdError("TIMEOUT", `a change of member ${cc.nodeId.toString(16)} is already in flight`);
  const applied = new Promise<ConfOutcome>((resolve) => waiters.set(key, { resolve }));
  try {
    node.raw.proposeConfChange(cc);
  } catch (err) {
    waiters.delete(key);
    throw err instanceof RaftError ? new EtcdError(node.leader === 0n ? "NO_LEADER" : "NOT_CAPABLE", err.message) : err;
  }
  node.scheduleReady();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      waiters.delete(key);
      reject(new EtcdError("TIMEOUT", `member change ${change.kind} ${cc.nodeId.toString(16)}`));
    }, timeoutMs);
  });
  try {
    const outcome = await Promise.race([applied, timeout]);
    if (outcome.error !== undefined) throw outcome.error;
  } finally {
    clearTimeout(timer);
  }
}
