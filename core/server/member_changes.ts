// Member changes from the client side: the checks a reconfiguration needs from the transport (etcd's
// --strict-reconfig-check), the wait for a proposed conf change to apply with its outcome, and the Cluster service's
// front end over both.
import { EtcdError } from "../errors.js";
import { newMemberForAdd, type Cluster, type Member } from "../membership/cluster.js";
import { toConfChange, type MemberChange } from "../membership/conf_change.js";
import { LearnerReadiness, learnerReadiness } from "../membership/learner.js";
import { RaftError } from "../raft/index.js";
import type { PeerTransport } from "../transport/index.js";
import type { Applier } from "./applier.js";
import type { ConfOutcome } from "./membership_apply.js";
import { forwardPromote } from "./peer_link.js";
import type { RaftNode } from "./raft_node.js";
import type { ResponseHeader, ServerConfig } from "./server_config.js";

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

/** The member's public side the membership front end uses. */
export interface MemberFrontServer {
  readonly config: ServerConfig;
  readonly isLeader: boolean;
  readonly requestTimeoutMs: number;
  checkNotLearner(): void;
  header(): ResponseHeader;
  /** The leader's peer URLs; NO_LEADER when there is none. */
  leaderPeerUrls(): readonly string[];
}

/** What the membership front end reads from its member (the cluster and transport through getters). */
export interface MemberFrontHost {
  readonly server: MemberFrontServer;
  readonly cluster: Cluster;
  readonly transport: PeerTransport | undefined;
  readonly node: RaftNode;
  readonly applier: Applier;
  readonly stopped: boolean;
}

type Members = { header: ResponseHeader; members: Member[] };

/**
 * Cluster.MemberAdd/Remove/Update/Promote: each is checked against the applied members (and, with
 * --strict-reconfig-check, against which peers are up), proposed as a conf change, and answered once it applied here.
 */
export class MemberFront {
  readonly #host: MemberFrontHost;

  constructor(host: MemberFrontHost) {
    this.#host = host;
  }

  #answer(): Members {
    return { header: this.#host.server.header(), members: this.#host.cluster.members() };
  }

  #options(): ReconfigOptions {
    return reconfigOptions(this.#host.server.config, this.#host.transport);
  }

  /** A voter or a learner with these peer URLs; resolves once the change is applied here. */
  async add(peerUrls: readonly string[], isLearner: boolean): Promise<Members & { member: Member }> {
    this.#host.server.checkNotLearner();
    const member = newMemberForAdd(peerUrls, { isLearner, nowUnixSeconds: Math.floor(Date.now() / 1000) });
    this.#host.cluster.validateAdd(member, this.#options());
    await this.#propose({ kind: "add", member });
    return { ...this.#answer(), member };
  }

  async remove(id: bigint): Promise<Members> {
    this.#host.server.checkNotLearner();
    this.#host.cluster.validateRemove(id, this.#options());
    await this.#propose({ kind: "remove", id });
    return this.#answer();
  }

  async update(id: bigint, peerUrls: readonly string[]): Promise<Members> {
    this.#host.server.checkNotLearner();
    this.#host.cluster.validateUpdate(id, peerUrls);
    await this.#propose({ kind: "update", id, peerUrls: [...peerUrls].sort() });
    return this.#answer();
  }

  /** Only the leader knows whether a learner is in sync: a follower forwards the promote to it. */
  async promote(id: bigint): Promise<Members> {
    const h = this.#host;
    const s = h.server;
    s.checkNotLearner();
    if (!s.isLeader) {
      await forwardPromote(s.leaderPeerUrls(), id, s.config.peer?.tls, s.requestTimeoutMs);
      await h.applier.waitApplied(h.node.raw.raft.raftLog.committed);
      return this.#answer();
    }
    const ready = learnerReadiness(h.node.raw.status(), id);
    h.cluster.validatePromote(id, ready !== LearnerReadiness.NotReady, this.#options());
    await this.#propose({ kind: "promote", id });
    return this.#answer();
  }

  async #propose(change: MemberChange): Promise<void> {
    if (this.#host.stopped) throw new EtcdError("STOPPED");
    await proposeMemberChange(this.#host.node, this.#host.applier, change, this.#host.server.requestTimeoutMs);
  }
}
