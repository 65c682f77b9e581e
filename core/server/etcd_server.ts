// EtcdServer: one member of an etcd-ts cluster, and its request front end. Every write goes propose → Raft
// commit → apply, as in etcd, so that clustering adds members, not a second code path. The parts live beside it,
// wired together in member_parts.ts: raft_node.ts runs the Ready loop (persist to the WAL, send, apply, advance),
// applier.ts applies committed entries in one backend transaction per batch, snapshots.ts cuts, sends and
// installs snapshots, read_index.ts batches the ReadIndex rounds of linearizable reads (serializable reads are
// local), and lease_front.ts and member_changes.ts serve the Lease and Cluster calls.
// Layout as etcd's: <data-dir>/member/{wal,snap} and the backend file beside them.
// With peers (config.peer), Raft messages go over core/transport; member changes are conf changes applied
// through core/membership.
import { EtcdError } from "../errors.js";
import type { Member } from "../membership/cluster.js";
import { CorruptMonitor, checkInitialHashKV, corruptCheckHost } from "./corrupt_check.js";
import { ELECTION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS, MAX_REQUEST_BYTES } from "../limits.js";
import type { Lessor } from "../lease/lessor.js";
import type { KvStore } from "../mvcc/kv_store.js";
import { WatchableStore } from "../mvcc/watchable_store.js";
import type {
  CompactResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  EffectResponse,
  TxnRequest,
  TxnResponse,
  WriteResponse,
} from "../mvcc/types.js";
import type { NodeId } from "../raft/index.js";
import type { WalStorage } from "../wal/wal_storage.js";
import { startMemberAutoCompaction } from "./compactor.js";
import { lockDataDir } from "./dir_lock.js";
import { ServerMetrics } from "./metrics.js";
import { AlarmAction, type AlarmStore, type AlarmType, type AlarmMember } from "./alarms.js";
import { encodePayload, type InternalRequest } from "./request_codec.js";
import { etcdRequestBytes, type EtcdOnlyFields } from "./request_size.js";
import type { AuthInfo } from "../auth/tokens.js";
import type { ServerAuth } from "./auth_apply.js";
import { isTxnReadOnly, txnBytes } from "./applier.js";
import { failStop } from "./fail_stop.js";
import { makeMemberDir, openMemberDir } from "./member_dir.js";
import { MemberParts } from "./member_parts.js";
import type { ResponseHeader, ServerConfig, WithHeader, LeaseTimeToLive } from "./server_config.js";
import { proposeV2, V2Keys, type V2Outcome } from "./v2_keys.js";
import type { V2Request } from "../v2store/index.js";

export type { LeaseTimeToLive, PeerConfig, ResponseHeader, ServerConfig, WithHeader } from "./server_config.js";

/** A proposal or read not answered within this many election timeouts fails with "request timed out". */
const REQUEST_TIMEOUT_ELECTIONS = 5;

export class EtcdServer {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  /** Watchers fed from every committed batch (the store registers itself as the KV store's commit listener). */
  readonly watchable: WatchableStore;
  /** What etcd-ts measures itself for /metrics (disk latencies, gRPC counts, leader changes). */
  readonly metrics = new ServerMetrics();
  /** The v2 store (served with --enable-v2; applied on every member either way). */
  readonly v2 = new V2Keys();
  /** The Raft node, applier, snapshots, fronts and the stores a snapshot replaces (member_parts.ts). */
  readonly #p: MemberParts;

  private constructor(config: ServerConfig, kv: KvStore, storage: WalStorage) {
    this.config = config;
    this.kv = kv;
    this.watchable = new WatchableStore(kv);
    this.#p = new MemberParts(this, storage);
  }

  static async start(config: ServerConfig): Promise<EtcdServer> {
    makeMemberDir(config.dataDir);
    const lock = await lockDataDir(config.dataDir);
    let server: EtcdServer | undefined;
    const onSyncError = (err: Error): void => (server === undefined ? failStop(config, err) : server.#p.fatal(err));
    try {
      // The backend commits on its own schedule (batched), so it reports each commit's duration itself.
      const onCommit = (seconds: number): void => server?.metrics.backendCommit.observe(seconds);
      const { kv, storage } = await openMemberDir(config, onSyncError, onCommit);
      server = new EtcdServer(config, kv, storage);
    } catch (err) {
      await lock.release();
      throw err;
    }
    const p = server.#p;
    p.dirLock = lock;
    try {
      await p.startPeers();
    } catch (err) {
      await server.stop();
      throw err;
    }
    p.node.startTicking();
    p.leases.start();
    server.v2.startSync(
      () => server.isLeader,
      (req) => server.propose({ v2: req }),
    );
    p.compactTimer = startMemberAutoCompaction(server);
    void p.publisher.run();
    if ((config.corruptCheckIntervalMs ?? 0) > 0) {
      p.corruptMonitor = new CorruptMonitor(corruptCheckHost(server), config.corruptCheckIntervalMs ?? 0);
      p.corruptMonitor.start();
    }
    return server;
  }

  /**
   * etcd's initial corruption check: this member's HashKV against each peer's at the same revision, before it
   * serves clients. Throws DataInconsistencyError on a mismatch.
   */
  checkInitialHashKV(): Promise<void> {
    return checkInitialHashKV(corruptCheckHost(this));
  }

  /** Resolves once this member has applied everything committed when it was called (a linearizable read's wait). */
  linearizableBarrier(): Promise<void> {
    return this.#p.reads.linearizableBarrier();
  }

  get lessor(): Lessor {
    return this.#p.leases.lessor;
  }

  get alarms(): AlarmStore {
    return this.#p.alarms;
  }

  /** Users, roles, tokens and permission checks (auth_apply.ts). */
  get auth(): ServerAuth {
    return this.#p.auth;
  }

  /** The cluster's members (sorted by id), as this member has applied them. */
  members(): Member[] {
    return this.#p.cluster.members();
  }

  /** Whether this member is a learner (it serves serializable reads only). */
  get isLearner(): boolean {
    return this.#p.cluster.member(this.config.memberId)?.isLearner === true;
  }

  /** etcd refuses writes, linearizable reads and streams on a learner: "rpc not supported for learner". */
  checkNotLearner(): void {
    if (this.isLearner) throw new EtcdError("NOT_SUPPORTED_FOR_LEARNER");
  }

  /** The peer listener's bound URLs (empty without peers). */
  get peerUrls(): readonly string[] {
    return this.#p.transport?.boundUrls ?? [];
  }

  /** Drops every Raft message to and from this member (true) or stops dropping (false): an injected partition. */
  setPeerIsolation(isolated: boolean): void {
    const t = this.#p.transport;
    if (t === undefined) throw new Error("no peer transport: this member has no peers");
    t.setFaults(isolated ? { dropOutgoing: () => true, dropIncoming: () => true } : {});
    this.config.log?.("W", "etcdserver", `peer isolation ${isolated ? "on: every raft message is dropped" : "off"}`);
  }

  get heartbeatMs(): number {
    return this.config.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
  }

  get electionTicks(): number {
    return Math.max(2, Math.round((this.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS) / this.heartbeatMs));
  }

  get requestTimeoutMs(): number {
    return REQUEST_TIMEOUT_ELECTIONS * (this.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS);
  }

  get isLeader(): boolean {
    return this.#p.node.isLeader;
  }

  get leader(): NodeId {
    return this.#p.node.leader;
  }

  get term(): number {
    return this.#p.node.raw.raft.term;
  }

  get appliedIndex(): number {
    return this.#p.applier.applied;
  }

  /** Proposals waiting to be applied (etcd_server_proposals_pending). */
  get pendingProposals(): number {
    return this.#p.proposals.size;
  }

  /** The first entry of Raft's log held in memory (the WAL may hold older ones until a snapshot). */
  get raftLogFirstIndex(): number {
    return this.#p.storage.firstIndex();
  }

  get committedIndex(): number {
    return this.#p.node.raw.raft.raftLog.committed;
  }

  header(revision = this.kv.revision): ResponseHeader {
    return { clusterId: this.config.clusterId, memberId: this.config.memberId, revision, raftTerm: this.term };
  }

  async stop(): Promise<void> {
    const p = this.#p;
    if (p.fatalError !== undefined) return p.releaseAfterFatal();
    if (p.stopped) return;
    await p.node.transferLeadershipAway();
    p.stopped = true;
    p.node.stopTicking();
    p.leases.stop();
    this.v2.stopSync();
    p.corruptMonitor?.stop();
    if (p.compactTimer !== undefined) clearInterval(p.compactTimer);
    const err = new EtcdError("STOPPED");
    p.proposals.failAll(err);
    p.reads.failAll(err);
    p.publisher.releaseWaiters();
    while (p.node.processing) await new Promise((r) => setImmediate(r));
    await p.transport?.stop();
    p.storage.close();
    await this.kv.close();
    await p.dirLock?.release();
  }

  // ---- client requests ----

  async range(r: RangeRequest & { readonly serializable?: boolean }): Promise<WithHeader<RangeResponse>> {
    if (r.serializable !== true) {
      this.checkNotLearner();
      await this.#p.reads.linearizableBarrier();
    }
    const response = await this.kv.range(r);
    return { header: this.header(response.revision), response };
  }

  /** `auth`: the sender when auth is on (its permissions were checked; they are checked again at apply). */
  async put(r: PutRequest, auth?: AuthInfo): Promise<WithHeader<PutResponse>> {
    this.#p.quota.check(r.key.length + r.value.length);
    return this.#write({ put: r }, (w) => ("put" in w ? w.put : undefined), auth);
  }

  async deleteRange(r: DeleteRangeRequest, auth?: AuthInfo): Promise<WithHeader<DeleteRangeResponse>> {
    return this.#write({ deleteRange: r }, (w) => ("deleteRange" in w ? w.deleteRange : undefined), auth);
  }

  async txn(r: TxnRequest, auth?: AuthInfo): Promise<WithHeader<TxnResponse>> {
    if (!isTxnReadOnly(r)) this.#p.quota.check(txnBytes(r));
    return this.#write({ txn: r }, (w) => ("txn" in w ? w.txn : undefined), auth);
  }

  async compact(revision: number): Promise<WithHeader<CompactResponse>> {
    return this.#write({ compact: { revision } }, (w) => ("compact" in w ? w.compact : undefined));
  }

  async #write<T extends { readonly revision: number }>(
    req: InternalRequest,
    pick: (w: WriteResponse) => T | undefined,
    auth?: AuthInfo,
  ): Promise<WithHeader<T>> {
    const result = await this.propose(req, auth);
    if (result instanceof EtcdError) throw result;
    const response = pick(result);
    if (response === undefined)
      throw new Error(`apply answered ${Object.keys(result).join()} to ${Object.keys(req).join()}`);
    return { header: this.header(response.revision), response };
  }

  /** A v2 write through Raft (--enable-v2): its event, or the v2 store's refusal. */
  v2Write(req: V2Request): Promise<V2Outcome> {
    return proposeV2((r) => this.propose(r), req);
  }

  /** Waits until this member has applied what the leader had committed when asked (a quorum v2 read). */
  async readBarrier(): Promise<void> {
    this.checkNotLearner();
    await this.#p.reads.linearizableBarrier();
  }

  /** Raft's role of this member ("StateLeader", "StateFollower", …) as etcd's stats name it. */
  get raftState(): string {
    return this.#p.node.raw.raft.state;
  }

  // ---- leases (lease_front.ts) ----

  /** Grants a lease (id 0: the server picks one); the TTL is raised to the minimum as etcd does. */
  leaseGrant(id: bigint, ttl: number): Promise<WithHeader<{ id: bigint; ttl: number }>> {
    return this.#p.leases.grant(id, ttl);
  }

  /** Revokes a lease and deletes its keys (one revision). */
  leaseRevoke(id: bigint, auth?: AuthInfo): Promise<WithHeader<EffectResponse>> {
    return this.#p.leases.revoke(id, auth);
  }

  /** A keepalive: back to the full TTL (on the leader; a follower forwards it). */
  leaseRenew(id: bigint): Promise<{ header: ResponseHeader; ttl: number }> {
    return this.#p.leases.renew(id);
  }

  /** TimeToLive is answered by the leader's lessor (a follower's does not track expiry). */
  leaseTimeToLive(id: bigint, keys: boolean): Promise<WithHeader<LeaseTimeToLive>> {
    return this.#p.leases.timeToLive(id, keys);
  }

  leaseLeases(): WithHeader<readonly bigint[]> {
    return this.#p.leases.leases();
  }

  /** Refuses a write of `bytes` while the backend quota is spent (NOSPACE). */
  checkQuota(bytes: number): void {
    this.#p.quota.check(bytes);
  }

  /** A fresh request id (unique across members and restarts, as etcd's). */
  nextRequestId(): bigint {
    return this.#p.ids.next();
  }

  /** The leader's peer URLs (NO_LEADER when there is none). */
  leaderPeerUrls(): readonly string[] {
    const leader = this.leader;
    if (leader === 0n) throw new EtcdError("NO_LEADER");
    const m = this.#p.cluster.member(leader);
    if (m === undefined) throw new EtcdError("NO_LEADER", `leader ${leader.toString(16)} is not a known member`);
    return m.peerUrls;
  }

  // ---- membership (member_changes.ts) ----

  /** Cluster.MemberAdd: a voter or a learner with these peer URLs; resolves once the change is applied here. */
  memberAdd(
    peerUrls: readonly string[],
    isLearner: boolean,
  ): Promise<{ header: ResponseHeader; member: Member; members: Member[] }> {
    return this.#p.members.add(peerUrls, isLearner);
  }

  memberRemove(id: bigint): Promise<{ header: ResponseHeader; members: Member[] }> {
    return this.#p.members.remove(id);
  }

  memberUpdate(id: bigint, peerUrls: readonly string[]): Promise<{ header: ResponseHeader; members: Member[] }> {
    return this.#p.members.update(id, peerUrls);
  }

  /** Only the leader knows whether a learner is in sync: a follower forwards the promote to it. */
  memberPromote(id: bigint): Promise<{ header: ResponseHeader; members: Member[] }> {
    return this.#p.members.promote(id);
  }

  // ---- quota and alarms ----

  get quotaBytes(): number {
    return this.#p.quota.bytes;
  }

  /** Maintenance.Alarm: GET lists (filtered by type unless NONE); ACTIVATE/DEACTIVATE go through Raft. */
  async alarm(action: number, memberId: bigint, type: number): Promise<WithHeader<AlarmMember[]>> {
    if (action === AlarmAction.GET) return { header: this.header(), response: this.alarms.list(type as AlarmType) };
    if (action !== AlarmAction.ACTIVATE && action !== AlarmAction.DEACTIVATE)
      return { header: this.header(), response: [] };
    const result = await this.propose({ alarm: { action, memberId, type } });
    if (result instanceof EtcdError) throw result;
    if (!("effect" in result)) throw new Error(`apply answered ${Object.keys(result).join()} to an alarm request`);
    return { header: this.header(), response: result.effect.value as AlarmMember[] };
  }

  /** Defragments this member's backend; its reads and writes wait meanwhile, as etcd's do. */
  async defragment(): Promise<ResponseHeader> {
    await this.kv.defragment();
    this.#p.quota.forgetSize();
    this.watchable.resume();
    return this.header();
  }

  /** Maintenance.MoveLeader: only the leader moves leadership, to a voting member; resolves when it moved. */
  async moveLeader(target: bigint): Promise<ResponseHeader> {
    await this.#p.node.moveLeader(target, this.requestTimeoutMs);
    return this.header();
  }

  /**
   * Proposes one write through Raft and resolves with its applied result. Proposals batch per event-loop turn.
   * `etcdOnly`: what etcd's proposal would carry beside the request (it counts towards the size limit only).
   */
  propose(req: InternalRequest, auth?: AuthInfo, etcdOnly?: EtcdOnlyFields): Promise<WriteResponse | EtcdError> {
    if (this.#p.stopped) return Promise.reject(new EtcdError("STOPPED"));
    if (!("publish" in req) && this.isLearner) return Promise.reject(new EtcdError("NOT_SUPPORTED_FOR_LEARNER"));
    const id = this.#p.ids.next();
    // etcd refuses a request whose protobuf proposal exceeds --max-request-bytes before it reaches Raft; its
    // length, not that of etcd-ts's own encoding, draws the line, so both accept and refuse the same requests.
    const max = this.config.maxRequestBytes ?? MAX_REQUEST_BYTES;
    const size = etcdRequestBytes(req, id, auth, etcdOnly);
    if (size > max) return Promise.reject(new EtcdError("REQUEST_TOO_LARGE", `request of ${size} bytes > ${max}`));
    const data = encodePayload(
      auth === undefined ? { id, req } : { id, req, auth: { username: auth.username, revision: auth.revision } },
    );
    const done = this.#p.proposals.register(id, this.requestTimeoutMs);
    this.#p.node.enqueue(data);
    return done;
  }

  // ---- publish, leadership, reads ----

  /** Resolves once this member has published itself (etcd serves clients only from then on). */
  whenPublished(): Promise<void> {
    return this.#p.publisher.whenPublished();
  }

  /** Drains every Ready (raft_node.ts): Ready → persist → send → apply → advance. */
  scheduleReady(): void {
    this.#p.node.scheduleReady();
  }

  /**
   * Resolves once the member knows a leader. etcd serves clients only after publishing itself through Raft,
   * which needs a leader; the CLI waits for this before it listens, so a client never meets a leaderless member
   * at start-up.
   */
  whenLeader(): Promise<void> {
    return this.#p.node.whenLeader();
  }

  /** Resolves once the applied index reaches `index` (a linearizable read's wait). */
  waitApplied(index: number): Promise<void> {
    return this.#p.applier.waitApplied(index);
  }

  /** Starts a ReadIndex round (used by the read batcher). */
  requestReadIndex(ctx: Uint8Array): void {
    this.#p.node.raw.readIndex(ctx);
    this.#p.node.scheduleReady();
  }
}
