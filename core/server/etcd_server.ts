// EtcdServer: one member of an etcd-ts cluster, and its request front end. Every write goes propose → Raft
// commit → apply, as in etcd, so that clustering adds members, not a second code path. The parts live beside it:
// raft_node.ts runs the Ready loop (persist to the WAL, send, apply, advance), applier.ts applies committed
// entries in one backend transaction per batch, snapshots.ts cuts, sends and installs snapshots, read_index.ts
// batches the ReadIndex rounds of linearizable reads (serializable reads are local), and lease_front.ts and
// member_changes.ts serve the Lease and Cluster calls.
// Layout as etcd's: <data-dir>/member/{wal,snap} and the backend file beside them.
// With peers (config.peer), Raft messages go over core/transport; member changes are conf changes applied
// through core/membership.
import { EtcdError } from "../errors.js";
import { Cluster, type Member } from "../membership/cluster.js";
import type { MemberChange } from "../membership/conf_change.js";
import type { PeerTransport } from "../transport/index.js";
import { CorruptMonitor, checkInitialHashKV, corruptCheckHost } from "./corrupt_check.js";
import { AUTH_TOKEN_TTL_SECONDS, ELECTION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS, MAX_REQUEST_BYTES } from "../limits.js";
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
import { SnapshotStatus, type Message, type NodeId, type Snapshot } from "../raft/index.js";
import type { WalStorage } from "../wal/wal_storage.js";
import { IdGenerator } from "./id_gen.js";
import { LeaseFront } from "./lease_front.js";
import { startMemberAutoCompaction } from "./compactor.js";
import { lockDataDir, type DirLock } from "./dir_lock.js";
import { ServerMetrics } from "./metrics.js";
import { AlarmAction, AlarmStore, type AlarmType, type AlarmMember } from "./alarms.js";
import { encodePayload, type InternalRequest } from "./request_codec.js";
import { etcdRequestBytes, type EtcdOnlyFields } from "./request_size.js";
import { Wait } from "./wait.js";
import { SimpleTokenProvider, type AuthInfo } from "../auth/tokens.js";
import { ServerAuth } from "./auth_apply.js";
import { Applier, isTxnReadOnly, txnBytes, type ApplyHost } from "./applier.js";
import { RaftNode, type RaftNodeHost } from "./raft_node.js";
import { ReadIndexBatcher } from "./read_index.js";
import { Snapshots, saveBootstrapSnapshot } from "./snapshots.js";
import { BackendQuota } from "./quota.js";
import { MemberFront } from "./member_changes.js";
import { followMemberChange, newPeerTransport, syncPeers } from "./peers.js";
import { failStop } from "./fail_stop.js";
import { makeMemberDir, openMemberDir } from "./member_dir.js";
import { Publisher } from "./publish.js";
import type { ResponseHeader, ServerConfig, WithHeader, LeaseTimeToLive } from "./server_config.js";
import { proposeV2, V2Keys, type V2Outcome } from "./v2_keys.js";
import type { V2Request } from "../v2store/index.js";

export type { LeaseTimeToLive, PeerConfig, ResponseHeader, ServerConfig, WithHeader } from "./server_config.js";

/** Proposals waiting for their entry to apply (etcd has no fixed bound; ours keeps memory bounded). */
export const MAX_PENDING_PROPOSALS = 100_000;
/** A proposal or read not answered within this many election timeouts fails with "request timed out". */
const REQUEST_TIMEOUT_ELECTIONS = 5;

export class EtcdServer {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  /** Watchers fed from every committed batch (the store registers itself as the KV store's commit listener). */
  readonly watchable: WatchableStore;
  readonly #leases: LeaseFront;
  readonly #members: MemberFront;
  #alarms: AlarmStore;
  #auth: ServerAuth;
  /** The members, as applied from the log (reloaded from a snapshot's backend). */
  #cluster: Cluster;
  #transport: PeerTransport | undefined;
  readonly #publisher: Publisher;
  /** What etcd-ts measures itself for /metrics (disk latencies, gRPC counts, leader changes). */
  readonly metrics = new ServerMetrics();
  /** The v2 store (served with --enable-v2; applied on every member either way). */
  readonly v2 = new V2Keys();
  readonly #quota: BackendQuota;
  #wasLeader = false;
  #compactTimer: NodeJS.Timeout | undefined;
  #dirLock: DirLock | undefined;
  readonly #storage: WalStorage;
  readonly #ids: IdGenerator;
  readonly #proposals = new Wait<WriteResponse | EtcdError>({ maxPending: MAX_PENDING_PROPOSALS });
  readonly #snapshots: Snapshots;
  readonly #applier: Applier;
  readonly #node: RaftNode;
  readonly #reads: ReadIndexBatcher;
  #corruptMonitor: CorruptMonitor | undefined;
  #stopped = false;
  /** The storage failure that stopped this member (fail-stop), if any. */
  #fatalError: unknown;

  private constructor(config: ServerConfig, kv: KvStore, storage: WalStorage) {
    const server = this;
    this.config = config;
    this.kv = kv;
    this.watchable = new WatchableStore(kv);
    this.#leases = new LeaseFront(this);
    this.#alarms = kv.backend.readNow((view) => AlarmStore.load(view));
    this.#auth = this.#loadAuth();
    this.#cluster = kv.backend.readNow((view) => Cluster.load(view));
    this.#ids = new IdGenerator(config.memberId, Date.now());
    this.#quota = new BackendQuota({
      config,
      kv,
      get alarms() {
        return server.#alarms;
      },
      propose: (req) => this.propose(req),
    });
    this.#storage = storage;
    this.#publisher = new Publisher({
      config,
      get stopped() {
        return server.#stopped;
      },
      get heartbeatMs() {
        return server.heartbeatMs;
      },
      whenLeader: () => this.whenLeader(),
      propose: (req) => this.propose(req),
    });
    if (storage.lastIndex() === 0 && config.joinExisting !== true)
      saveBootstrapSnapshot(storage, config, this.#cluster.members());
    kv.backend.readNow((view) => this.v2.load(view));
    this.#snapshots = new Snapshots({ config, kv, storage, nextId: () => this.#ids.next() });
    this.#applier = new Applier(this.#applyHost(), Math.max(kv.consistentIndex(), this.#snapshots.index));
    const raftStorage = this.#snapshots.raftStorage(() => this.#node.raw.raft.confState());
    // A commit index alone is written without an fsync (as etcd's), so after a power cut the backend may have
    // applied past the WAL's commit: Raft resumes from the commit it has and the applier skips what is applied.
    const walCommit = storage.initialState().hardState.commit;
    this.#node = new RaftNode(
      this.#raftNodeHost(),
      raftStorage,
      Math.max(this.#snapshots.index, Math.min(this.#applier.applied, walCommit)),
    );
    this.#reads = new ReadIndexBatcher(this);
    this.#members = new MemberFront({
      server: this,
      get cluster() {
        return server.#cluster;
      },
      get transport() {
        return server.#transport;
      },
      node: this.#node,
      applier: this.#applier,
      get stopped() {
        return server.#stopped;
      },
    });
    // A snapshot body from the leader can be ahead of its snapshot's index, and so of this member's log: conf
    // changes past the log come from the leader again, and the applier replays them as they arrive.
    this.#applier.replayConfChanges(this.#snapshots.index + 1, Math.min(this.#applier.applied, storage.lastIndex()));
  }

  /** What the applier reads from this member (the stores through getters: a snapshot replaces them). */
  #applyHost(): ApplyHost {
    const server = this;
    return {
      kv: this.kv,
      storage: this.#storage,
      metrics: this.metrics,
      get alarms() {
        return server.#alarms;
      },
      get auth() {
        return server.#auth;
      },
      get lessor() {
        return server.#leases.lessor;
      },
      get cluster() {
        return server.#cluster;
      },
      v2: this.v2,
      applyConfChangeToRaft: (cc) => this.#node.raw.applyConfChange(cc),
      onMemberChange: (change) => this.#onMemberChange(change),
      answer: (id, result) => this.#proposals.trigger(id, result),
      afterApply: (index) => this.#snapshots.maybeCut(index, this.#node.raw.raft.confState()),
      warn: (message) => this.config.log?.("W", "etcdserver", message),
    };
  }

  /** What the Raft loop hands to this member and reads from it. */
  #raftNodeHost(): RaftNodeHost {
    const server = this;
    return {
      config: this.config,
      metrics: this.metrics,
      storage: this.#storage,
      get stopped() {
        return server.#stopped;
      },
      get transport() {
        return server.#transport;
      },
      get heartbeatMs() {
        return server.heartbeatMs;
      },
      get electionTicks() {
        return server.electionTicks;
      },
      onTick: () => this.#reads.onTick(),
      onReadState: (ctx, index) => this.#reads.onReadState(ctx, index),
      onLeadership: (leader) => this.#onLeadership(leader),
      snapshotBody: () => this.#snapshots.body(),
      installSnapshot: (snap) => this.#installSnapshot(snap),
      apply: (entries) => this.#applier.apply(entries),
      failProposal: (id, err) => this.#proposals.fail(id, err),
      fatal: (err) => this.#fatal(err),
    };
  }

  static async start(config: ServerConfig): Promise<EtcdServer> {
    makeMemberDir(config.dataDir);
    const lock = await lockDataDir(config.dataDir);
    let server: EtcdServer | undefined;
    const onSyncError = (err: Error): void => (server === undefined ? failStop(config, err) : server.#fatal(err));
    try {
      const { kv, storage } = await openMemberDir(config, onSyncError);
      server = new EtcdServer(config, kv, storage);
    } catch (err) {
      await lock.release();
      throw err;
    }
    server.#dirLock = lock;
    try {
      await server.#startPeers();
    } catch (err) {
      await server.stop();
      throw err;
    }
    server.#node.startTicking();
    server.#leases.start();
    server.v2.startSync(
      () => server.isLeader,
      (req) => server.propose({ v2: req }),
    );
    server.#compactTimer = startMemberAutoCompaction(server);
    void server.#publisher.run();
    if ((config.corruptCheckIntervalMs ?? 0) > 0) {
      server.#corruptMonitor = new CorruptMonitor(corruptCheckHost(server), config.corruptCheckIntervalMs ?? 0);
      server.#corruptMonitor.start();
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
    return this.#reads.linearizableBarrier();
  }

  get lessor(): Lessor {
    return this.#leases.lessor;
  }

  get alarms(): AlarmStore {
    return this.#alarms;
  }

  /** Users, roles, tokens and permission checks (auth_apply.ts). */
  get auth(): ServerAuth {
    return this.#auth;
  }

  #loadAuth(): ServerAuth {
    const config = this.config;
    return this.kv.backend.readNow(
      (view) =>
        new ServerAuth(view, {
          tokenProvider: config.authTokenProvider ?? new SimpleTokenProvider({ ttlSeconds: AUTH_TOKEN_TTL_SECONDS }),
          ...(config.bcryptCost !== undefined ? { bcryptCost: config.bcryptCost } : {}),
          propose: (req, etcdOnly) => this.propose(req, undefined, etcdOnly),
          leaseKeys: (id) => this.lessor.timeToLive(id, true)?.keys ?? [],
        }),
    );
  }

  /** The cluster's members (sorted by id), as this member has applied them. */
  members(): Member[] {
    return this.#cluster.members();
  }

  /** Whether this member is a learner (it serves serializable reads only). */
  get isLearner(): boolean {
    return this.#cluster.member(this.config.memberId)?.isLearner === true;
  }

  /** etcd refuses writes, linearizable reads and streams on a learner: "rpc not supported for learner". */
  checkNotLearner(): void {
    if (this.isLearner) throw new EtcdError("NOT_SUPPORTED_FOR_LEARNER");
  }

  /** The peer listener's bound URLs (empty without peers). */
  get peerUrls(): readonly string[] {
    return this.#transport?.boundUrls ?? [];
  }

  /** Drops every Raft message to and from this member (true) or stops dropping (false): an injected partition. */
  setPeerIsolation(isolated: boolean): void {
    const t = this.#transport;
    if (t === undefined) throw new Error("no peer transport: this member has no peers");
    t.setFaults(isolated ? { dropOutgoing: () => true, dropIncoming: () => true } : {});
    this.config.log?.("W", "etcdserver", `peer isolation ${isolated ? "on: every raft message is dropped" : "off"}`);
  }

  async #startPeers(): Promise<void> {
    const peer = this.config.peer;
    if (peer === undefined) return;
    const t = newPeerTransport(peer, {
      config: this.config,
      onMessage: (m) => this.#node.step(m),
      onSnapshot: (m, path) => this.#receiveSnapshot(m, path),
      onUnreachable: (id) => this.#node.raw.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => {
        this.#node.raw.reportSnapshot(id, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        this.#node.scheduleReady();
      },
      onRemoved: (why) => this.#removedSelf(why),
      handlers: {
        members: () => this.members(),
        renew: (id) => this.leaseRenew(id).then((r) => r.ttl),
        timeToLive: (id, keys) => this.#leases.localTimeToLive(id, keys),
        promote: (id) => this.memberPromote(id).then(() => undefined),
        hashKV: (revision) => this.kv.hashKV(revision),
      },
    });
    this.#transport = t;
    await t.start();
    const known =
      this.config.joinExisting === true && this.#cluster.members().length === 0
        ? (this.config.initialMembers ?? [])
        : this.#cluster.members();
    for (const m of known) if (m.id !== this.config.memberId) t.addPeer(m.id, m.peerUrls);
    syncPeers(t, this.#cluster, this.config.memberId);
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
    return this.#node.isLeader;
  }

  get leader(): NodeId {
    return this.#node.leader;
  }

  get term(): number {
    return this.#node.raw.raft.term;
  }

  get appliedIndex(): number {
    return this.#applier.applied;
  }

  /** Proposals waiting to be applied (etcd_server_proposals_pending). */
  get pendingProposals(): number {
    return this.#proposals.size;
  }

  get committedIndex(): number {
    return this.#node.raw.raft.raftLog.committed;
  }

  header(revision = this.kv.revision): ResponseHeader {
    return { clusterId: this.config.clusterId, memberId: this.config.memberId, revision, raftTerm: this.term };
  }

  /**
   * A storage write or fsync failed: stop serving at once, answer nobody with success, and never touch the data
   * dir again (fail_stop.ts). stop() afterwards only releases sockets and the directory lock.
   */
  #fatal(err: unknown): void {
    if (this.#fatalError !== undefined) return;
    this.#fatalError = err;
    this.#stopped = true;
    this.#node.stopTicking();
    this.#leases.stop();
    if (this.#compactTimer !== undefined) clearInterval(this.#compactTimer);
    const stopped = new EtcdError("STOPPED");
    this.#proposals.failAll(stopped);
    this.#reads.failAll(stopped);
    failStop(this.config, err);
  }

  async stop(): Promise<void> {
    if (this.#fatalError !== undefined) return this.#releaseAfterFatal();
    if (this.#stopped) return;
    await this.#node.transferLeadershipAway();
    this.#stopped = true;
    this.#node.stopTicking();
    this.#leases.stop();
    this.v2.stopSync();
    this.#corruptMonitor?.stop();
    if (this.#compactTimer !== undefined) clearInterval(this.#compactTimer);
    const err = new EtcdError("STOPPED");
    this.#proposals.failAll(err);
    this.#reads.failAll(err);
    this.#publisher.releaseWaiters();
    while (this.#node.processing) await new Promise((r) => setImmediate(r));
    await this.#transport?.stop();
    this.#storage.close();
    await this.kv.close();
    await this.#dirLock?.release();
  }

  async #releaseAfterFatal(): Promise<void> {
    const lock = this.#dirLock;
    this.#dirLock = undefined;
    if (lock === undefined) return;
    this.#publisher.releaseWaiters();
    await this.#transport?.stop();
    this.#storage.abandon();
    await this.kv.backend.abandon();
    await lock.release();
  }

  // ---- client requests ----

  async range(r: RangeRequest & { readonly serializable?: boolean }): Promise<WithHeader<RangeResponse>> {
    if (r.serializable !== true) {
      this.checkNotLearner();
      await this.#reads.linearizableBarrier();
    }
    const response = await this.kv.range(r);
    return { header: this.header(response.revision), response };
  }

  /** `auth`: the sender when auth is on (its permissions were checked; they are checked again at apply). */
  async put(r: PutRequest, auth?: AuthInfo): Promise<WithHeader<PutResponse>> {
    this.#quota.check(r.key.length + r.value.length);
    return this.#write({ put: r }, (w) => ("put" in w ? w.put : undefined), auth);
  }

  async deleteRange(r: DeleteRangeRequest, auth?: AuthInfo): Promise<WithHeader<DeleteRangeResponse>> {
    return this.#write({ deleteRange: r }, (w) => ("deleteRange" in w ? w.deleteRange : undefined), auth);
  }

  async txn(r: TxnRequest, auth?: AuthInfo): Promise<WithHeader<TxnResponse>> {
    if (!isTxnReadOnly(r)) this.#quota.check(txnBytes(r));
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
    await this.#reads.linearizableBarrier();
  }

  /** Raft's role of this member ("StateLeader", "StateFollower", …) as etcd's stats name it. */
  get raftState(): string {
    return this.#node.raw.raft.state;
  }

  // ---- leases (lease_front.ts) ----

  /** Grants a lease (id 0: the server picks one); the TTL is raised to the minimum as etcd does. */
  leaseGrant(id: bigint, ttl: number): Promise<WithHeader<{ id: bigint; ttl: number }>> {
    return this.#leases.grant(id, ttl);
  }

  /** Revokes a lease and deletes its keys (one revision). */
  leaseRevoke(id: bigint, auth?: AuthInfo): Promise<WithHeader<EffectResponse>> {
    return this.#leases.revoke(id, auth);
  }

  /** A keepalive: back to the full TTL (on the leader; a follower forwards it). */
  leaseRenew(id: bigint): Promise<{ header: ResponseHeader; ttl: number }> {
    return this.#leases.renew(id);
  }

  /** TimeToLive is answered by the leader's lessor (a follower's does not track expiry). */
  leaseTimeToLive(id: bigint, keys: boolean): Promise<WithHeader<LeaseTimeToLive>> {
    return this.#leases.timeToLive(id, keys);
  }

  leaseLeases(): WithHeader<readonly bigint[]> {
    return this.#leases.leases();
  }

  /** Refuses a write of `bytes` while the backend quota is spent (NOSPACE). */
  checkQuota(bytes: number): void {
    this.#quota.check(bytes);
  }

  /** A fresh request id (unique across members and restarts, as etcd's). */
  nextRequestId(): bigint {
    return this.#ids.next();
  }

  /** The leader's peer URLs (NO_LEADER when there is none). */
  leaderPeerUrls(): readonly string[] {
    const leader = this.leader;
    if (leader === 0n) throw new EtcdError("NO_LEADER");
    const m = this.#cluster.member(leader);
    if (m === undefined) throw new EtcdError("NO_LEADER", `leader ${leader.toString(16)} is not a known member`);
    return m.peerUrls;
  }

  // ---- membership (member_changes.ts) ----

  /** Cluster.MemberAdd: a voter or a learner with these peer URLs; resolves once the change is applied here. */
  memberAdd(
    peerUrls: readonly string[],
    isLearner: boolean,
  ): Promise<{ header: ResponseHeader; member: Member; members: Member[] }> {
    return this.#members.add(peerUrls, isLearner);
  }

  memberRemove(id: bigint): Promise<{ header: ResponseHeader; members: Member[] }> {
    return this.#members.remove(id);
  }

  memberUpdate(id: bigint, peerUrls: readonly string[]): Promise<{ header: ResponseHeader; members: Member[] }> {
    return this.#members.update(id, peerUrls);
  }

  /** Only the leader knows whether a learner is in sync: a follower forwards the promote to it. */
  memberPromote(id: bigint): Promise<{ header: ResponseHeader; members: Member[] }> {
    return this.#members.promote(id);
  }

  // ---- quota and alarms ----

  get quotaBytes(): number {
    return this.#quota.bytes;
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
    this.#quota.forgetSize();
    this.watchable.resume();
    return this.header();
  }

  /** Maintenance.MoveLeader: only the leader moves leadership, to a voting member; resolves when it moved. */
  async moveLeader(target: bigint): Promise<ResponseHeader> {
    await this.#node.moveLeader(target, this.requestTimeoutMs);
    return this.header();
  }

  /**
   * Proposes one write through Raft and resolves with its applied result. Proposals batch per event-loop turn.
   * `etcdOnly`: what etcd's proposal would carry beside the request (it counts towards the size limit only).
   */
  propose(req: InternalRequest, auth?: AuthInfo, etcdOnly?: EtcdOnlyFields): Promise<WriteResponse | EtcdError> {
    if (this.#stopped) return Promise.reject(new EtcdError("STOPPED"));
    if (!("publish" in req) && this.isLearner) return Promise.reject(new EtcdError("NOT_SUPPORTED_FOR_LEARNER"));
    const id = this.#ids.next();
    // etcd refuses a request whose protobuf proposal exceeds --max-request-bytes before it reaches Raft; its
    // length, not that of etcd-ts's own encoding, draws the line, so both accept and refuse the same requests.
    const max = this.config.maxRequestBytes ?? MAX_REQUEST_BYTES;
    const size = etcdRequestBytes(req, id, auth, etcdOnly);
    if (size > max) return Promise.reject(new EtcdError("REQUEST_TOO_LARGE", `request of ${size} bytes > ${max}`));
    const data = encodePayload(
      auth === undefined ? { id, req } : { id, req, auth: { username: auth.username, revision: auth.revision } },
    );
    const done = this.#proposals.register(id);
    this.#node.enqueue(data);
    return withTimeout(done, this.requestTimeoutMs, () => {
      this.#proposals.fail(id, new EtcdError("TIMEOUT", `proposal ${id}`));
    });
  }

  // ---- snapshots, publish, leadership ----

  /** A snapshot body arrived whole: keep it under its index until Raft hands out the snapshot, then step it. */
  #receiveSnapshot(m: Message, bodyPath: string): void {
    if (this.#stopped || m.snapshot === undefined) return;
    this.#snapshots.receive(m, bodyPath);
    this.#node.step(m);
  }

  /**
   * Raft accepted a snapshot from the leader (already persisted in the WAL): its body replaces the backend,
   * and everything loaded from the backend is loaded again.
   */
  async #installSnapshot(snap: Snapshot): Promise<void> {
    await this.#snapshots.install(snap);
    this.#reloadFromBackend();
    this.#applier.resetTo(this.kv.consistentIndex());
    this.config.log?.(
      "I",
      "etcdserver",
      `applied incoming snapshot at index ${snap.metadata.index} (backend at index ${this.#applier.applied}, revision ${this.kv.revision})`,
    );
  }

  #reloadFromBackend(): void {
    this.#leases.reload();
    this.#alarms = this.kv.backend.readNow((view) => AlarmStore.load(view));
    this.#auth = this.#loadAuth();
    this.#cluster = this.kv.backend.readNow((view) => Cluster.load(view));
    this.kv.backend.readNow((view) => this.v2.load(view));
    syncPeers(this.#transport, this.#cluster, this.config.memberId);
    this.watchable.resync();
  }

  /** Resolves once this member has published itself (etcd serves clients only from then on). */
  whenPublished(): Promise<void> {
    return this.#publisher.whenPublished();
  }

  #removedSelf(why: string): void {
    if (this.#stopped) return;
    this.config.log?.("W", "etcdserver", `the member has been permanently removed from the cluster (${why})`);
    void this.stop().then(() => this.config.onRemoved?.());
  }

  /** Drains every Ready (raft_node.ts): Ready → persist → send → apply → advance. */
  scheduleReady(): void {
    this.#node.scheduleReady();
  }

  /** An accepted member change was applied: the transport talks to the new set of members. */
  #onMemberChange(change: MemberChange): void {
    followMemberChange(this.#transport, change, this.config, (why) => this.#removedSelf(why));
  }

  /** Leadership changed: the lessor follows (lease_front.ts). */
  #onLeadership(leader: boolean): void {
    if (leader === this.#wasLeader) return;
    this.#wasLeader = leader;
    this.#leases.onLeadership(leader);
  }

  /**
   * Resolves once the member knows a leader. etcd serves clients only after publishing itself through Raft,
   * which needs a leader; the CLI waits for this before it listens, so a client never meets a leaderless member
   * at start-up.
   */
  whenLeader(): Promise<void> {
    return this.#node.whenLeader();
  }

  /** Resolves once the applied index reaches `index` (a linearizable read's wait). */
  waitApplied(index: number): Promise<void> {
    return this.#applier.waitApplied(index);
  }

  /** Starts a ReadIndex round (used by the read batcher). */
  requestReadIndex(ctx: Uint8Array): void {
    this.#node.raw.readIndex(ctx);
    this.#node.scheduleReady();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  const timer = setTimeout(onTimeout, ms);
  return p.finally(() => clearTimeout(timer));
}
