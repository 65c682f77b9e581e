// The cluster's members as etcd 3.4 keeps them: members and removed member ids in two backend buckets, changed
// only by applying committed conf changes (and publish requests) in Raft order, inside the batch's write txn.
// Two kinds of checks, split as etcd splits them:
// - check*: etcd's ValidateConfigurationChange, run by every member when it applies a conf change (deterministic:
//   depends only on the stored members). A failing change is applied as a no-op with the error.
// - validate*: what the proposing server checks first (v3rpc URL check, mayAddMember / mayRemoveMember /
//   mayPromoteMember under --strict-reconfig-check), then check*.
// Over the wire a removed id answers "member not found" (etcd maps ErrIDRemoved to it); `detail` says which.
import type { ReadView, WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import { MAX_LEARNERS } from "../limits.js";
import { computeMemberId } from "./ids.js";
import { membersFromInitialCluster, type LocalMember } from "./initial_cluster.js";
import { decodeMember, encodeMember, memberIdOfKey, memberKey, type Member } from "./member_codec.js";
import { isActiveQuorumAfterRemove, isReadyToAddVoter, isReadyToPromote, isReadyToRemoveVoter } from "./quorum.js";
import { checkMemberUrls } from "./urls.js";

export type { Member } from "./member_codec.js";

export const MEMBERS_BUCKET = "members";
export const REMOVED_MEMBERS_BUCKET = "members_removed";
/** The buckets to pass to Backend.open. */
export const MEMBERSHIP_BUCKETS: readonly string[] = [MEMBERS_BUCKET, REMOVED_MEMBERS_BUCKET];

const REMOVED_VALUE = new TextEncoder().encode("removed");

/** What the proposing server knows about its peers (etcd's rafthttp transport). */
export interface ReconfigOptions {
  readonly strictReconfigCheck: boolean;
  /**
   * Whether the transport has been connected to `id` for at least etcd's HealthInterval (5 s) — etcd's
   * isConnectedSince(now − 5 s); false for ids the transport has no peer for. The local member (`localId`) always
   * counts as connected.
   */
  readonly activeSince: (id: bigint) => boolean;
  /** The proposing member. */
  readonly localId?: bigint;
  /** Whether the transport is connected to `id` at all (etcd: ActiveSince(id) is not zero). Default: activeSince. */
  readonly isConnected?: (id: bigint) => boolean;
}

const byId = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

export class Cluster {
  private readonly byId = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();

  private constructor() {}

  /** See initial_cluster.ts; `local` adds etcd's checks of this member's --name and advertise URLs. */
  static fromInitialCluster(
    initialCluster: string,
    token: string,
    local?: LocalMember,
  ): { members: Member[]; clusterId: bigint } {
    return membersFromInitialCluster(initialCluster, token, local);
  }

  /** The stored members (an empty cluster for a new backend). */
  static load(view: ReadView): Cluster {
    const c = new Cluster();
    for (const { key, value } of view.range(MEMBERS_BUCKET, {})) {
      const m = decodeMember(value);
      const id = memberIdOfKey(key);
      if (m.id !== id)
        throw new Error(`membership: member stored under ${id.toString(16)} has id ${m.id.toString(16)}`);
      c.byId.set(id, m);
    }
    for (const { key } of view.range(REMOVED_MEMBERS_BUCKET, {})) c.removed.add(memberIdOfKey(key));
    for (const id of c.byId.keys()) {
      if (c.removed.has(id)) throw new Error(`membership: member ${id.toString(16)} is both present and removed`);
    }
    return c;
  }

  /** Members sorted by id. */
  members(): Member[] {
    return [...this.byId.values()].sort((a, b) => byId(a.id, b.id));
  }

  member(id: bigint): Member | undefined {
    return this.byId.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  /** Ids removed for good (a removed member's messages are refused). */
  removedIds(): bigint[] {
    return [...this.removed].sort(byId);
  }

  voters(): bigint[] {
    return this.members()
      .filter((m) => !m.isLearner)
      .map((m) => m.id);
  }

  learners(): bigint[] {
    return this.members()
      .filter((m) => m.isLearner)
      .map((m) => m.id);
  }

  /** etcd's IsStarted: the member has a name (published, or named in --initial-cluster). */
  isStarted(id: bigint): boolean {
    return (this.byId.get(id)?.name ?? "") !== "";
  }

  // ---- apply-time checks (etcd's ValidateConfigurationChange) ----

  checkAdd(m: Member): void {
    if (this.removed.has(m.id))
      throw new EtcdError("MEMBER_NOT_FOUND", `membership: ID removed (${m.id.toString(16)})`);
    if (this.byId.has(m.id)) throw new EtcdError("MEMBER_EXIST", `member ${m.id.toString(16)}`);
    const used = this.peerUrlsExcept(undefined);
    const clash = m.peerUrls.find((u) => used.has(u));
    if (clash !== undefined) throw new EtcdError("PEER_URL_EXIST", clash);
    if (m.isLearner) {
      const learners = this.learners().length;
      if (learners + 1 > MAX_LEARNERS)
        throw new EtcdError("TOO_MANY_LEARNERS", `${learners} learners, limit ${MAX_LEARNERS}`);
    }
  }

  checkRemove(id: bigint): void {
    this.mustBeMember(id);
  }

  checkUpdate(id: bigint, peerUrls: readonly string[]): void {
    this.mustBeMember(id);
    const used = this.peerUrlsExcept(id);
    const clash = peerUrls.find((u) => used.has(u));
    if (clash !== undefined) throw new EtcdError("PEER_URL_EXIST", clash);
  }

  checkPromote(id: bigint): void {
    const m = this.mustBeMember(id);
    if (!m.isLearner) throw new EtcdError("MEMBER_NOT_LEARNER", `member ${id.toString(16)} is a voter`);
  }

  // ---- proposal-time checks (the server's, then the apply-time ones) ----

  validateAdd(m: Member, o: ReconfigOptions): void {
    checkMemberUrls(m.peerUrls);
    if (o.strictReconfigCheck) {
      const voters = this.voters();
      if (!m.isLearner && !isReadyToAddVoter(voters.length, this.countStarted(voters))) {
        throw new EtcdError(
          "MEMBER_NOT_ENOUGH_STARTED",
          `add voter: ${this.countStarted(voters)} of ${voters.length} voters started`,
        );
      }
      const notConnected = voters.find((v) => v !== o.localId && !o.activeSince(v));
      if (notConnected !== undefined)
        throw new EtcdError("UNHEALTHY", `add: not connected to voter ${notConnected.toString(16)}`);
    }
    this.checkAdd(m);
  }

  validateRemove(id: bigint, o: ReconfigOptions): void {
    if (o.strictReconfigCheck && this.byId.get(id)?.isLearner !== true) this.strictRemove(id, o);
    this.checkRemove(id);
  }

  validateUpdate(id: bigint, peerUrls: readonly string[]): void {
    const urls = checkMemberUrls(peerUrls);
    this.checkUpdate(id, urls);
  }

  /**
   * `learnerInSync` comes from learner.ts over the leader's Raft progress (true when the id has no progress, as
   * etcd's isLearnerReady, so a missing or non-learner member gets its own error below).
   */
  validatePromote(id: bigint, learnerInSync: boolean, o?: Pick<ReconfigOptions, "strictReconfigCheck">): void {
    if (!learnerInSync) throw new EtcdError("LEARNER_NOT_READY", `member ${id.toString(16)}`);
    if (o?.strictReconfigCheck === true) {
      const voters = this.voters();
      if (!isReadyToPromote(voters.length, this.countStarted(voters))) {
        throw new EtcdError(
          "MEMBER_NOT_ENOUGH_STARTED",
          `promote: ${this.countStarted(voters)} of ${voters.length} voters started`,
        );
      }
    }
    this.checkPromote(id);
  }

  // ---- apply side ----

  add(tx: WriteView, m: Member): void {
    assert(!this.byId.has(m.id) && !this.removed.has(m.id), `add: member ${m.id.toString(16)} exists or was removed`);
    assert(m.peerUrls.length > 0, `add: member ${m.id.toString(16)} has no peer URLs`);
    this.store(tx, m);
  }

  /** Removes a member for good: its id can never come back. */
  remove(tx: WriteView, id: bigint): void {
    assert(!this.removed.has(id), `remove: member ${id.toString(16)} already removed`);
    tx.del(MEMBERS_BUCKET, memberKey(id));
    tx.put(REMOVED_MEMBERS_BUCKET, memberKey(id), REMOVED_VALUE);
    this.byId.delete(id);
    this.removed.add(id);
  }

  /**
   * New peer URLs (sorted); the learner flag, name and client URLs stay. (etcd 3.4 overwrites the learner flag
   * with the update's, which MemberUpdate leaves false — a learner's stored record then says voter while Raft
   * still has a learner. The flag is kept so the two agree.)
   */
  update(tx: WriteView, id: bigint, peerUrls: readonly string[]): void {
    const m = this.mustExistForApply(id, "update");
    assert(peerUrls.length > 0, `update: member ${id.toString(16)} given no peer URLs`);
    this.store(tx, { ...m, peerUrls: [...peerUrls].sort() });
  }

  promote(tx: WriteView, id: bigint): void {
    const m = this.mustExistForApply(id, "promote");
    assert(m.isLearner, `promote: member ${id.toString(16)} is not a learner`);
    this.store(tx, { ...m, isLearner: false });
  }

  /** A member's own name and client URLs (etcd's publish). A removed member's late publish is ignored, as etcd. */
  publish(tx: WriteView, id: bigint, name: string, clientUrls: readonly string[]): void {
    if (this.removed.has(id)) return;
    const m = this.mustExistForApply(id, "publish");
    this.store(tx, { ...m, name, clientUrls: [...clientUrls] });
  }

  // ---- helpers ----

  private strictRemove(id: bigint, o: ReconfigOptions): void {
    const voters = this.voters();
    const others = voters.filter((v) => v !== id);
    if (!isReadyToRemoveVoter(others.length, this.countStarted(others))) {
      throw new EtcdError(
        "MEMBER_NOT_ENOUGH_STARTED",
        `remove: ${this.countStarted(others)} of ${others.length} remaining voters started`,
      );
    }
    const connected = o.isConnected ?? o.activeSince;
    if (id !== o.localId && !connected(id)) return; // a member that is down is not part of the active quorum
    const active = voters.filter((v) => v === o.localId || o.activeSince(v)).length;
    if (!isActiveQuorumAfterRemove(voters.length, active)) {
      throw new EtcdError("UNHEALTHY", `remove: ${active} of ${voters.length} voters connected`);
    }
  }

  private countStarted(ids: readonly bigint[]): number {
    return ids.filter((id) => this.isStarted(id)).length;
  }

  private peerUrlsExcept(id: bigint | undefined): Set<string> {
    const used = new Set<string>();
    for (const m of this.byId.values()) if (m.id !== id) for (const u of m.peerUrls) used.add(u);
    return used;
  }

  private mustBeMember(id: bigint): Member {
    if (this.removed.has(id)) throw new EtcdError("MEMBER_NOT_FOUND", `membership: ID removed (${id.toString(16)})`);
    const m = this.byId.get(id);
    if (m === undefined) throw new EtcdError("MEMBER_NOT_FOUND", `membership: ID not found (${id.toString(16)})`);
    return m;
  }

  private mustExistForApply(id: bigint, what: string): Member {
    const m = this.byId.get(id);
    assert(m !== undefined, `${what}: member ${id.toString(16)} unknown (removed=${this.removed.has(id)})`);
    return m;
  }

  private store(tx: WriteView, m: Member): void {
    tx.put(MEMBERS_BUCKET, memberKey(m.id), encodeMember(m));
    this.byId.set(m.id, m);
  }
}

/**
 * A member to add at runtime (etcd's MemberAdd): URLs checked (MEMBER_BAD_URLS) and sorted, no name yet, and the id
 * hashed from the URLs with an empty token and the Unix time in seconds, as etcd 3.4 does.
 */
export function newMemberForAdd(
  peerUrls: readonly string[],
  o: { isLearner: boolean; nowUnixSeconds: number },
): Member {
  const urls = checkMemberUrls(peerUrls);
  return {
    id: computeMemberId(urls, "", o.nowUnixSeconds),
    name: "",
    peerUrls: urls,
    clientUrls: [],
    isLearner: o.isLearner,
  };
}

function assert(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(`membership: ${message}`);
}
