// EtcdServer: one member of an etcd-ts cluster. Every write goes propose → Raft commit → apply, as in etcd,
// so that clustering adds members, not a second code path. The Ready loop follows etcd's order: persist the
// log (a leader sends its appends in parallel), send messages, apply committed entries in one backend
// transaction per batch (with the applied index as the consistent index), then advance. Linearizable reads go
// through ReadIndex; serializable reads are local.
// The WAL is the durability point: a Ready's entries and hard state are fdatasync'ed once, before a follower's
// messages go out and before anything is applied; the backend stores the applied index in the same transaction
// as the data, so a restart replays the WAL from there and never applies an entry twice.
// Layout as etcd's: <data-dir>/member/{wal,snap} and the backend file beside them.
// With peers (config.peer), Raft messages go over core/transport; a lagging member gets a snapshot whose body is
// a copy of the leader's backend file; member changes are conf changes applied through core/membership.
import { EtcdError, isEtcdError } from "../errors.js";
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, MEMBERSHIP_BUCKETS, newMemberForAdd, type Member } from "../membership/cluster.js";
import { toConfChange, type MemberChange } from "../membership/conf_change.js";
import { LearnerReadiness, learnerReadiness } from "../membership/learner.js";
import { PeerTransport, type PeerTimeouts, type TransportTls } from "../transport/index.js";
import { CLUSTER_META_BUCKET, CONF_OUTCOME_BUCKET, confChangeEffect, recordedOutcome, storeBootstrap, type ConfOutcome } from "./membership_apply.js";
import { forwardPromote, forwardRenew, forwardTimeToLive, peerHandlers } from "./peer_link.js";
import {
  AUTH_TOKEN_TTL_SECONDS, ELECTION_TIMEOUT_MS, QUOTA_BACKEND_BYTES_DEFAULT, minLeaseTtlSeconds, HEARTBEAT_INTERVAL_MS, RAFT_MAX_INFLIGHT_MSGS, RAFT_MAX_SIZE_PER_MSG_BYTES,
  RAFT_MAX_UNCOMMITTED_ENTRIES_BYTES, SNAPSHOT_CATCH_UP_ENTRIES, SNAPSHOT_COUNT,
} from "../limits.js";
import { LEASE_BUCKET, Lessor } from "../lease/lessor.js";
import { KvStore, type ReadMode } from "../mvcc/kv_store.js";
import { WatchableStore } from "../mvcc/watchable_store.js";
import type {
  CompactResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
  Effect, EffectResponse, TxnRequest, TxnResponse, WriteRequest, WriteResponse,
} from "../mvcc/types.js";
import {
  EntryType, MessageType, RawNode, SnapshotStatus, RaftError, StateType, TICK_ADVANCE_POLL_MS, TICK_ADVANCE_WAIT_MS, decodeConfChange, initialTickAdvance,
  type ConfChange, type Entry, type Message, type NodeId, type Ready, type Rng, type Snapshot, type Storage,
} from "../raft/index.js";
import { WalStorage } from "../wal/wal_storage.js";
import { IdGenerator } from "./id_gen.js";
import { LeaseLoop, isLeaseRequest, leaseEffect, leaseIdFrom } from "./leases.js";
import { Compactor, type CompactionPolicy } from "./compactor.js";
import { lockDataDir, type DirLock } from "./dir_lock.js";
import { ServerMetrics } from "./metrics.js";
import { ALARM_BUCKET, AlarmAction, AlarmStore, AlarmType, type AlarmMember } from "./alarms.js";
import { decodePayload, encodePayload, type AlarmChange, type InternalRequest, type LeaseRequest } from "./request_codec.js";
import { Wait } from "./wait.js";
import { AUTH_BUCKETS } from "../auth/auth_store.js";
import { SimpleTokenProvider, type AuthInfo, type TokenProvider } from "../auth/tokens.js";
import { ServerAuth, isAuthChange } from "./auth_apply.js";

/** Largest Ready (in entries) whose WAL fdatasync runs on the event loop instead of libuv's thread pool. */
const INLINE_SYNC_MAX_ENTRIES = 1;

/** Proposals waiting for their entry to apply (etcd has no fixed bound; ours keeps memory bounded). */
export const MAX_PENDING_PROPOSALS = 100_000;
/** A proposal or read not answered within this many election timeouts fails with "request timed out". */
const REQUEST_TIMEOUT_ELECTIONS = 5;

export interface ServerConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly heartbeatIntervalMs?: number;
  readonly electionTimeoutMs?: number;
  readonly readMode?: ReadMode;
  readonly preVote?: boolean;
  readonly rng?: Rng;
  /** Applied entries between two Raft snapshots (--snapshot-count). */
  readonly snapshotCount?: number;
  /** Entries kept in the log behind a snapshot for slow followers (etcd 3.5's --experimental-snapshot-catchup-entries). */
  readonly snapshotCatchUpEntries?: number;
  /** --experimental-enable-lease-checkpoint (etcd-ts default: on, and persisted across restarts). */
  readonly leaseCheckpoint?: boolean;
  readonly leaseCheckpointIntervalMs?: number;
  /** --max-txn-ops (etcd's default 128). */
  readonly maxTxnOps?: number;
  /** --initial-election-tick-advance (etcd's default true): a fresh member skips most of its first election timeout. */
  readonly initialElectionTickAdvance?: boolean;
  /** --quota-backend-bytes: 0 = etcd's default (2 GiB), negative = no quota. */
  readonly quotaBackendBytes?: number;
  /** Monotonic milliseconds for lease expiry and auto-compaction (default performance.now); tests inject one. */
  readonly clock?: () => number;
  /** --auto-compaction-mode/--auto-compaction-retention (undefined: off, etcd's default). */
  readonly autoCompaction?: CompactionPolicy;
  /** Where the server logs what an operator should see (etcd's capnslog-style lines in the CLI). */
  readonly log?: (level: "I" | "W" | "E" | "N", pkg: string, msg: string) => void;
  /** --auth-token (default: simple tokens with etcd's 300 s TTL). */
  readonly authTokenProvider?: TokenProvider;
  /** scrypt cost (log2 N) of new password hashes when no bcrypt cost is set (default 14). */
  readonly passwordCostLog2?: number;
  /** bcrypt cost of new password hashes (instead of scrypt) when --bcrypt-cost is given. */
  readonly passwordBcryptCost?: number;
  /**
   * The members a new cluster starts with (this one included; --initial-cluster), or, when joining, the members
   * of the running cluster. Default: this member alone, with no peer URLs.
   */
  readonly initialMembers?: readonly Member[];
  /** --initial-cluster-state=existing: this member was added to a running cluster and starts with no log. */
  readonly joinExisting?: boolean;
  /** The peer listener and what talking to peers needs; without it the member has no peer port. */
  readonly peer?: PeerConfig;
  /** This member's client URLs, published to the cluster once it runs (etcd's publish). */
  readonly clientUrls?: readonly string[];
  /** --strict-reconfig-check (etcd's default true). */
  readonly strictReconfigCheck?: boolean;
  /** The cluster removed this member: it has stopped itself (the CLI exits). */
  readonly onRemoved?: () => void;
}

export interface PeerConfig {
  /** --listen-peer-urls (port 0 picks one: see EtcdServer.peerUrls). */
  readonly listenUrls: readonly string[];
  readonly tls?: TransportTls;
  readonly timeouts?: Partial<PeerTimeouts>;
}

/** What TimeToLive answers: etcd's TTL -1 (and no error) for a lease that does not exist (any more). */
export interface LeaseTimeToLive {
  readonly id: bigint;
  readonly ttl: number;
  readonly grantedTtl: number;
  readonly keys: readonly Uint8Array[];
}

export interface ResponseHeader {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly revision: number;
  readonly raftTerm: number;
}

export type WithHeader<T> = { readonly header: ResponseHeader; readonly response: T };

const mathRng: Rng = { nextInt: (n) => Math.floor(Math.random() * n) };

export class EtcdServer {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  /** Watchers fed from every committed batch (the store registers itself as the KV store's commit listener). */
  readonly watchable: WatchableStore;
  #lessor: Lessor;
  #alarms: AlarmStore;
  #auth: ServerAuth;
  /** The members, as applied from the log (reloaded from a snapshot's backend). */
  #cluster: Cluster;
  #transport: PeerTransport | undefined;
  /** Member changes proposed here, waiting for their conf change to apply: key type:nodeId. */
  readonly #confWaiters = new Map<string, { resolve: (o: ConfOutcome) => void }>();
  /** A snapshot body received from the leader, waiting for Raft to hand out its snapshot. */
  #incomingSnapshot: { index: number; path: string } | undefined;
  #published = false;
  #publishWaiters: (() => void)[] = [];
  /** What etcd-ts measures itself for /metrics (disk latencies, gRPC counts, leader changes). */
  readonly metrics = new ServerMetrics();
  #lastLeader: NodeId = 0n;
  #leaseLoop: LeaseLoop;
  /** The backend file size, re-read at most every QUOTA_SIZE_CACHE_MS (a quota check per write must be cheap). */
  #dbSize = { bytes: 0, atMs: -Infinity };
  #wasLeader = false;
  readonly #compactor: Compactor | undefined;
  #compactTimer: NodeJS.Timeout | undefined;
  #dirLock: DirLock | undefined;
  readonly #raw: RawNode;
  readonly #storage: WalStorage;
  readonly #ids: IdGenerator;
  readonly #proposals = new Wait<WriteResponse | EtcdError>({ maxPending: MAX_PENDING_PROPOSALS });
  readonly #reads: ReadIndexBatcher;
  #queued: Uint8Array[] = [];
  #flushScheduled = false;
  #processing = false;
  #again = false;
  #ticker: NodeJS.Timeout | undefined;
  #applied = 0;
  #snapshotIndex = 0;
  #stopped = false;
  readonly #appliedWaiters: { index: number; resolve: () => void }[] = [];
  #leaderWaiters: (() => void)[] = [];

  private constructor(config: ServerConfig, kv: KvStore, storage: WalStorage) {
    this.config = config;
    this.kv = kv;
    this.watchable = new WatchableStore(kv);
    this.#lessor = openLessor(config, kv);
    this.#alarms = kv.backend.readNow((view) => AlarmStore.load(view));
    this.#auth = this.#loadAuth();
    this.#cluster = kv.backend.readNow((view) => Cluster.load(view));
    this.#compactor = config.autoCompaction === undefined ? undefined : new Compactor(config.autoCompaction);
    this.#leaseLoop = new LeaseLoop(this.lessor, () => this.isLeader, (req) => this.propose(req));
    this.#ids = new IdGenerator(config.memberId, Date.now());
    this.#storage = storage;
    if (storage.lastIndex() === 0 && config.joinExisting !== true) this.#bootstrap();
    this.#snapshotIndex = storage.snapshot().metadata.index;
    this.#applied = Math.max(kv.consistentIndex(), this.#snapshotIndex);
    this.#raw = new RawNode({
      id: config.memberId,
      electionTick: this.electionTicks,
      heartbeatTick: 1,
      storage: this.#raftStorage(),
      applied: this.#applied,
      // Conf changes past the Raft snapshot go back to Raft with their recorded outcomes (#replayConfChanges).
      replayAppliedConfChanges: false,
      maxSizePerMsgBytes: RAFT_MAX_SIZE_PER_MSG_BYTES,
      maxInflightMsgs: RAFT_MAX_INFLIGHT_MSGS,
      maxUncommittedEntriesBytes: RAFT_MAX_UNCOMMITTED_ENTRIES_BYTES,
      preVote: config.preVote ?? true,
      checkQuorum: true,
      rng: config.rng ?? mathRng,
    });
    this.#reads = new ReadIndexBatcher(this);
    this.#replayConfChanges(this.#snapshotIndex + 1, this.#applied);
  }

  /**
   * The log as Raft reads it, except for the snapshot it sends a lagging member: a snapshot at this member's
   * applied index (the body is a copy of the backend taken when it is sent, which is at least that far), not the
   * last one written to the WAL — otherwise every entry since that one (up to --snapshot-count of them) would
   * follow the backend file over the wire, only to be skipped by the receiver.
   */
  #raftStorage(): Storage {
    const wal = this.#storage;
    return {
      initialState: () => wal.initialState(),
      entries: (lo, hi, maxSizeBytes) => wal.entries(lo, hi, maxSizeBytes),
      term: (i) => wal.term(i),
      lastIndex: () => wal.lastIndex(),
      firstIndex: () => wal.firstIndex(),
      snapshot: () => {
        const stored = wal.snapshot();
        const index = this.#applied;
        if (index <= stored.metadata.index) return stored;
        return { metadata: { index, term: wal.term(index), confState: this.#raw.raft.confState() }, data: new Uint8Array(0) };
      },
    };
  }

  /**
   * Raft restarts from its snapshot's configuration, and entries up to the backend's applied index are not handed
   * out again: the conf changes among them are given back to Raft here, with the outcome they had.
   */
  #replayConfChanges(lo: number, hi: number): void {
    for (let i = lo; i <= hi;) {
      const batch = this.#storage.entries(i, hi + 1, 64 * 1024 * 1024);
      for (const e of batch) if (e.type === EntryType.ConfChange) this.#replayConfChange(e);
      const last = batch[batch.length - 1];
      if (last === undefined) break;
      i = last.index + 1;
    }
  }

  static async start(config: ServerConfig): Promise<EtcdServer> {
    const memberDir = join(config.dataDir, "member");
    mkdirSync(join(memberDir, "snap"), { recursive: true });
    const lock = await lockDataDir(config.dataDir);
    let server: EtcdServer;
    try {
      const kv = KvStore.open(memberDir, {
        extraBuckets: [LEASE_BUCKET, ALARM_BUCKET, ...AUTH_BUCKETS, ...MEMBERSHIP_BUCKETS, CONF_OUTCOME_BUCKET, CLUSTER_META_BUCKET],
        ...(config.maxTxnOps !== undefined ? { maxTxnOps: config.maxTxnOps } : {}),
        ...(config.readMode !== undefined ? { readMode: config.readMode } : {}),
      });
      const storage = WalStorage.open(memberDir);
      await finishSnapshotInstall(kv, storage.snapshot().metadata.index, join(memberDir, "snap"));
      if (storage.lastIndex() === 0 && config.joinExisting !== true) {
        // Embedded without a member list: this member alone, with etcd's default peer URL.
        const members = config.initialMembers ?? [{ id: config.memberId, name: config.name, peerUrls: ["http://localhost:2380"], clientUrls: [], isLearner: false }];
        await kv.backend.batch(undefined, (tx) => storeBootstrap(tx, kv.backend.readNow((v) => Cluster.load(v)), config.clusterId, members));
      }
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
    server.#startTicking();
    server.#leaseLoop.start();
    server.#startCompactor();
    void server.#publish();
    return server;
  }

  get lessor(): Lessor {
    return this.#lessor;
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
    return this.kv.backend.readNow((view) => new ServerAuth(view, {
      tokenProvider: config.authTokenProvider ?? new SimpleTokenProvider({ ttlSeconds: AUTH_TOKEN_TTL_SECONDS }),
      ...(config.passwordCostLog2 !== undefined ? { passwordCostLog2: config.passwordCostLog2 } : {}),
      ...(config.passwordBcryptCost !== undefined ? { passwordBcryptCost: config.passwordBcryptCost } : {}),
      propose: (req) => this.propose(req),
      leaseKeys: (id) => this.lessor.timeToLive(id, true)?.keys ?? [],
    }));
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
    const memberDir = join(this.config.dataDir, "member");
    const t = new PeerTransport({
      memberId: this.config.memberId,
      clusterId: this.config.clusterId,
      listenUrls: peer.listenUrls,
      snapshotDir: join(memberDir, "snap", "incoming"),
      onMessage: (m) => this.#stepPeer(m),
      onSnapshot: (m, path) => this.#receiveSnapshot(m, path),
      onUnreachable: (id) => this.#raw.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => {
        this.#raw.reportSnapshot(id, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        this.scheduleReady();
      },
      onRefused: (id, reason, direction) => {
        if (direction === "outbound" && reason === "member-removed") this.#removedSelf(`peer ${id.toString(16)} knows this member as removed`);
        else this.config.log?.("W", "rafthttp", `${direction} peer request ${direction === "outbound" ? "to" : "from"} ${id.toString(16)} refused (${reason})`);
      },
      logger: (level, msg, fields) => this.config.log?.(level === "info" ? "I" : level === "warn" ? "W" : "E", "rafthttp", fields === undefined ? msg : `${msg} ${JSON.stringify(fields, (_k, v: unknown) => (typeof v === "bigint" ? v.toString(16) : v))}`),
      httpHandlers: peerHandlers({
        members: () => this.members(),
        renew: (id) => this.leaseRenew(id).then((r) => r.ttl),
        timeToLive: (id, keys) => this.#localTimeToLive(id, keys),
        promote: (id) => this.memberPromote(id).then(() => undefined),
      }),
      ...(peer.tls !== undefined ? { tls: peer.tls } : {}),
      ...(peer.timeouts !== undefined ? { peerTimeouts: peer.timeouts } : {}),
    });
    this.#transport = t;
    await t.start();
    const known = this.config.joinExisting === true && this.#cluster.members().length === 0 ? this.config.initialMembers ?? [] : this.#cluster.members();
    for (const m of known) if (m.id !== this.config.memberId) t.addPeer(m.id, m.peerUrls);
    this.#syncPeers();
  }

  /** The transport talks to exactly the current members (after start-up and after a snapshot). */
  #syncPeers(): void {
    const t = this.#transport;
    if (t === undefined) return;
    for (const m of this.#cluster.members()) {
      if (m.id === this.config.memberId) continue;
      t.addPeer(m.id, m.peerUrls);
      t.updatePeer(m.id, m.peerUrls);
    }
    for (const id of this.#cluster.removedIds()) if (id !== this.config.memberId) t.removePeer(id);
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
    return this.#raw.raft.state === StateType.Leader;
  }

  get leader(): NodeId {
    return this.#raw.raft.lead;
  }

  get term(): number {
    return this.#raw.raft.term;
  }

  get appliedIndex(): number {
    return this.#applied;
  }

  /** Proposals waiting to be applied (etcd_server_proposals_pending). */
  get pendingProposals(): number {
    return this.#proposals.size;
  }

  get committedIndex(): number {
    return this.#raw.raft.raftLog.committed;
  }

  header(revision = this.kv.revision): ResponseHeader {
    return { clusterId: this.config.clusterId, memberId: this.config.memberId, revision, raftTerm: this.term };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    await this.#transferLeadershipAway();
    this.#stopped = true;
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#leaseLoop.stop();
    if (this.#compactTimer !== undefined) clearInterval(this.#compactTimer);
    const err = new EtcdError("STOPPED");
    this.#proposals.failAll(err);
    this.#reads.failAll(err);
    for (const w of this.#publishWaiters) w();
    while (this.#processing) await new Promise((r) => setImmediate(r));
    await this.#transport?.stop();
    this.#storage.close();
    await this.kv.close();
    await this.#dirLock?.release();
  }

  /**
   * A leader that stops on purpose hands leadership to the most caught-up voter first (etcd 3.4 does the same
   * on SIGTERM), so the cluster does not wait out an election timeout. Bounded by one election timeout.
   */
  async #transferLeadershipAway(): Promise<void> {
    if (!this.isLeader || this.#transport === undefined) return;
    const progress = this.#raw.status().progress;
    const voters = this.#raw.raft.confState().voters.filter((v) => v !== this.config.memberId);
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const v of voters) {
      const match = progress?.get(v)?.match ?? -1;
      const active = this.#transport.activeSince(v) !== undefined;
      if (active && match > bestMatch) [best, bestMatch] = [v, match];
    }
    if (best === undefined) return;
    this.config.log?.("N", "etcdserver", `leadership transfer to ${best.toString(16)} before stopping`);
    this.#raw.transferLeader(best);
    this.scheduleReady();
    const deadline = performance.now() + (this.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS);
    while (this.leader !== best && performance.now() < deadline) await new Promise((r) => setTimeout(r, this.heartbeatMs));
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
    this.#checkQuota(r.key.length + r.value.length);
    return this.#write({ put: r }, (w) => ("put" in w ? w.put : undefined), auth);
  }

  async deleteRange(r: DeleteRangeRequest, auth?: AuthInfo): Promise<WithHeader<DeleteRangeResponse>> {
    return this.#write({ deleteRange: r }, (w) => ("deleteRange" in w ? w.deleteRange : undefined), auth);
  }

  async txn(r: TxnRequest, auth?: AuthInfo): Promise<WithHeader<TxnResponse>> {
    if (!isTxnReadOnly(r)) this.#checkQuota(txnBytes(r));
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
    if (response === undefined) throw new Error(`apply answered ${Object.keys(result).join()} to ${Object.keys(req).join()}`);
    return { header: this.header(response.revision), response };
  }

  // ---- leases ----

  /** Grants a lease (id 0: the server picks one); the TTL is raised to the minimum as etcd does. */
  async leaseGrant(id: bigint, ttl: number): Promise<WithHeader<{ id: bigint; ttl: number }>> {
    this.#checkQuota(LEASE_COST_BYTES);
    const chosen = id === 0n ? leaseIdFrom(this.#ids.next()) : id;
    const r = await this.#leaseWrite({ leaseGrant: { id: chosen, ttl } });
    return { header: this.header(r.revision), response: r.value as { id: bigint; ttl: number } };
  }

  /** Revokes a lease and deletes its keys (one revision). */
  async leaseRevoke(id: bigint, auth?: AuthInfo): Promise<WithHeader<EffectResponse>> {
    const r = await this.#leaseWrite({ leaseRevoke: { id } }, auth);
    return { header: this.header(r.revision), response: r };
  }

  /**
   * A keepalive: back to the full TTL. Only the leader's lessor renews (and expires); a follower forwards the
   * keepalive to the leader over the peer listener, as etcd does.
   */
  async leaseRenew(id: bigint): Promise<{ header: ResponseHeader; ttl: number }> {
    this.checkNotLearner();
    if (this.isLeader) return { header: this.header(), ttl: this.lessor.renew(id) };
    const ttl = await forwardRenew(this.#leaderPeerUrls(), id, this.config.peer?.tls, this.requestTimeoutMs);
    return { header: this.header(), ttl };
  }

  /** TimeToLive is answered by the leader's lessor (a follower's does not track expiry). */
  async leaseTimeToLive(id: bigint, keys: boolean): Promise<WithHeader<LeaseTimeToLive>> {
    this.checkNotLearner();
    const st = this.isLeader || this.#transport === undefined
      ? this.#localTimeToLive(id, keys)
      : await forwardTimeToLive(this.#leaderPeerUrls(), id, keys, this.config.peer?.tls, this.requestTimeoutMs);
    return { header: this.header(), response: { id, ...st } };
  }

  #localTimeToLive(id: bigint, keys: boolean): { ttl: number; grantedTtl: number; keys: readonly Uint8Array[] } {
    if (!this.isLeader && this.#transport !== undefined) throw new EtcdError(this.leader === 0n ? "NO_LEADER" : "NOT_LEADER");
    const st = this.lessor.timeToLive(id, keys);
    return st === undefined ? { ttl: -1, grantedTtl: 0, keys: [] } : { ttl: st.ttl, grantedTtl: st.grantedTtl, keys: st.keys };
  }

  /** The leader's peer URLs (NO_LEADER when there is none). */
  #leaderPeerUrls(): readonly string[] {
    const leader = this.leader;
    if (leader === 0n) throw new EtcdError("NO_LEADER");
    const m = this.#cluster.member(leader);
    if (m === undefined) throw new EtcdError("NO_LEADER", `leader ${leader.toString(16)} is not a known member`);
    return m.peerUrls;
  }

  // ---- membership ----

  #reconfigOptions(): { strictReconfigCheck: boolean; activeSince: (id: bigint) => boolean; isConnected: (id: bigint) => boolean; localId: bigint } {
    const t = this.#transport;
    const since = (id: bigint): number | undefined => t?.activeSince(id);
    return {
      strictReconfigCheck: this.config.strictReconfigCheck ?? true,
      localId: this.config.memberId,
      // etcd's HealthInterval: a peer counts as up once connected for 5 s.
      activeSince: (id) => id === this.config.memberId || (since(id) ?? Infinity) <= Date.now() - PEER_HEALTH_INTERVAL_MS,
      isConnected: (id) => id === this.config.memberId || since(id) !== undefined,
    };
  }

  /** Cluster.MemberAdd: a voter or a learner with these peer URLs; resolves once the change is applied here. */
  async memberAdd(peerUrls: readonly string[], isLearner: boolean): Promise<{ header: ResponseHeader; member: Member; members: Member[] }> {
    this.checkNotLearner();
    const member = newMemberForAdd(peerUrls, { isLearner, nowUnixSeconds: Math.floor(Date.now() / 1000) });
    this.#cluster.validateAdd(member, this.#reconfigOptions());
    await this.#proposeMemberChange({ kind: "add", member });
    return { header: this.header(), member, members: this.members() };
  }

  async memberRemove(id: bigint): Promise<{ header: ResponseHeader; members: Member[] }> {
    this.checkNotLearner();
    this.#cluster.validateRemove(id, this.#reconfigOptions());
    await this.#proposeMemberChange({ kind: "remove", id });
    return { header: this.header(), members: this.members() };
  }

  async memberUpdate(id: bigint, peerUrls: readonly string[]): Promise<{ header: ResponseHeader; members: Member[] }> {
    this.checkNotLearner();
    this.#cluster.validateUpdate(id, peerUrls);
    await this.#proposeMemberChange({ kind: "update", id, peerUrls: [...peerUrls].sort() });
    return { header: this.header(), members: this.members() };
  }

  /** Only the leader knows whether a learner is in sync: a follower forwards the promote to it. */
  async memberPromote(id: bigint): Promise<{ header: ResponseHeader; members: Member[] }> {
    this.checkNotLearner();
    if (!this.isLeader) {
      await forwardPromote(this.#leaderPeerUrls(), id, this.config.peer?.tls, this.requestTimeoutMs);
      await this.waitApplied(this.committedIndex);
      return { header: this.header(), members: this.members() };
    }
    const ready = learnerReadiness(this.#raw.status(), id);
    this.#cluster.validatePromote(id, ready !== LearnerReadiness.NotReady, this.#reconfigOptions());
    await this.#proposeMemberChange({ kind: "promote", id });
    return { header: this.header(), members: this.members() };
  }

  async #proposeMemberChange(change: MemberChange): Promise<void> {
    if (this.#stopped) throw new EtcdError("STOPPED");
    const cc = toConfChange(change);
    const key = `${cc.type}:${cc.nodeId}`;
    if (this.#confWaiters.has(key)) throw new EtcdError("TIMEOUT", `a change of member ${cc.nodeId.toString(16)} is already in flight`);
    const applied = new Promise<ConfOutcome>((resolve) => this.#confWaiters.set(key, { resolve }));
    try {
      this.#raw.proposeConfChange(cc);
    } catch (err) {
      this.#confWaiters.delete(key);
      throw err instanceof RaftError ? new EtcdError(this.leader === 0n ? "NO_LEADER" : "NOT_CAPABLE", err.message) : err;
    }
    this.scheduleReady();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.#confWaiters.delete(key);
        reject(new EtcdError("TIMEOUT", `member change ${change.kind} ${cc.nodeId.toString(16)}`));
      }, this.requestTimeoutMs);
    });
    try {
      const outcome = await Promise.race([applied, timeout]);
      if (outcome.error !== undefined) throw outcome.error;
    } finally {
      clearTimeout(timer);
    }
  }

  leaseLeases(): WithHeader<readonly bigint[]> {
    return { header: this.header(), response: this.lessor.leases() };
  }

  // ---- quota and alarms ----

  get quotaBytes(): number {
    const q = this.config.quotaBackendBytes ?? 0;
    return q === 0 ? QUOTA_BACKEND_BYTES_DEFAULT : q;
  }

  /**
   * etcd's backend quota: a request that would take the database past --quota-backend-bytes is refused with
   * "database space exceeded", and the NOSPACE alarm is raised through Raft (from then on the apply path refuses
   * every request that grows the database, on every member, until the alarm is disarmed).
   */
  #checkQuota(requestBytes: number): void {
    const quota = this.quotaBytes;
    if (quota < 0) return;
    const now = performance.now();
    if (now - this.#dbSize.atMs > QUOTA_SIZE_CACHE_MS) this.#dbSize = { bytes: this.kv.backend.fileSize(), atMs: now };
    if (this.#dbSize.bytes + requestBytes + QUOTA_REQUEST_OVERHEAD_BYTES <= quota) return;
    if (!this.alarms.has(AlarmType.NOSPACE)) {
      void this.propose({ alarm: { action: AlarmAction.ACTIVATE, memberId: this.config.memberId, type: AlarmType.NOSPACE } }).catch(() => undefined);
    }
    throw new EtcdError("NO_SPACE");
  }

  /** Maintenance.Alarm: GET lists (filtered by type unless NONE); ACTIVATE/DEACTIVATE go through Raft. */
  async alarm(action: number, memberId: bigint, type: number): Promise<WithHeader<AlarmMember[]>> {
    if (action === AlarmAction.GET) return { header: this.header(), response: this.alarms.list(type as AlarmType) };
    if (action !== AlarmAction.ACTIVATE && action !== AlarmAction.DEACTIVATE) return { header: this.header(), response: [] };
    const result = await this.propose({ alarm: { action, memberId, type } });
    if (result instanceof EtcdError) throw result;
    if (!("effect" in result)) throw new Error(`apply answered ${Object.keys(result).join()} to an alarm request`);
    return { header: this.header(), response: result.effect.value as AlarmMember[] };
  }

  /** Defragments this member's backend; its reads and writes wait meanwhile, as etcd's do. */
  async defragment(): Promise<ResponseHeader> {
    await this.kv.defragment();
    this.#dbSize = { bytes: 0, atMs: -Infinity };
    this.watchable.resume();
    return this.header();
  }

  /** Maintenance.MoveLeader: only the leader moves leadership, to a voting member; resolves when it moved. */
  async moveLeader(target: bigint): Promise<ResponseHeader> {
    if (!this.isLeader) throw new EtcdError("NOT_LEADER");
    const voters = this.#raw.raft.confState().voters;
    if (!voters.includes(target)) throw new EtcdError("BAD_LEADER_TRANSFEREE");
    if (target === this.config.memberId) return this.header();
    this.#raw.transferLeader(target);
    this.scheduleReady();
    const deadline = performance.now() + this.requestTimeoutMs;
    while (this.leader !== target) {
      if (performance.now() > deadline) throw new EtcdError("TIMEOUT", "leader transfer");
      await new Promise((r) => setTimeout(r, this.heartbeatMs));
    }
    return this.header();
  }

  async #leaseWrite(req: LeaseRequest, auth?: AuthInfo): Promise<EffectResponse> {
    const result = await this.propose(req, auth);
    if (result instanceof EtcdError) throw result;
    if (!("effect" in result)) throw new Error(`apply answered ${Object.keys(result).join()} to a lease request`);
    return result.effect;
  }

  /** Proposes one write through Raft and resolves with its applied result. Proposals batch per event-loop turn. */
  propose(req: InternalRequest, auth?: AuthInfo): Promise<WriteResponse | EtcdError> {
    if (this.#stopped) return Promise.reject(new EtcdError("STOPPED"));
    if (!("publish" in req) && this.isLearner) return Promise.reject(new EtcdError("NOT_SUPPORTED_FOR_LEARNER"));
    const id = this.#ids.next();
    const done = this.#proposals.register(id);
    this.#queued.push(encodePayload(auth === undefined ? { id, req } : { id, req, auth: { username: auth.username, revision: auth.revision } }));
    this.#scheduleFlush();
    return withTimeout(done, this.requestTimeoutMs, () => {
      this.#proposals.fail(id, new EtcdError("TIMEOUT", `proposal ${id}`));
    });
  }

  // ---- the Ready loop ----

  #startTicking(): void {
    const voters = this.#raw.raft.confState().voters;
    if (voters.length === 1 && voters[0] === this.config.memberId) {
      // The only voter: no one else can lead or be disrupted, so it campaigns at once instead of waiting out a
      // randomized election timeout (up to a second of start-up for nothing).
      this.#raw.campaign();
    } else if (this.config.initialElectionTickAdvance !== false && voters.includes(this.config.memberId)) {
      void this.#advanceTicksWhenPeerUp(voters.length);
    }
    this.#ticker = setInterval(() => {
      this.#raw.tick();
      this.#reads.onTick();
      this.scheduleReady();
    }, this.heartbeatMs);
    this.scheduleReady();
  }

  /**
   * etcd 3.4's restart rule: wait (bounded) until a peer is reachable, then fast-forward to two ticks before
   * the election, so a restarted follower hears the leader's heartbeat before it would campaign.
   */
  async #advanceTicksWhenPeerUp(clusterSize: number): Promise<void> {
    const deadline = performance.now() + TICK_ADVANCE_WAIT_MS;
    for (;;) {
      if (this.#stopped || this.leader !== 0n) return;
      const activePeers = this.#transport?.activePeers().length ?? 0;
      const waitExpired = performance.now() >= deadline;
      const advance = initialTickAdvance({ clusterSize, electionTicks: this.electionTicks, activePeers, mode: "etcd34", waitExpired });
      if (typeof advance === "number") {
        if (advance > 0) this.config.log?.("I", "raft", `fast-forwarding ${advance} ticks (election ticks ${this.electionTicks}) with ${activePeers} active peer(s)`);
        this.#raw.advanceTicks(advance);
        this.scheduleReady();
        return;
      }
      await new Promise((r) => setTimeout(r, TICK_ADVANCE_POLL_MS));
    }
  }

  #stepPeer(m: Message): void {
    if (this.#stopped) return;
    try {
      this.#raw.step(m);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      return; // a message for a member we are not (yet) part of, or from an old term: raft says drop it
    }
    this.scheduleReady();
  }

  /** A snapshot body arrived whole: keep it under its index until Raft hands out the snapshot, then step it. */
  #receiveSnapshot(m: Message, bodyPath: string): void {
    const snap = m.snapshot;
    if (this.#stopped || snap === undefined) return;
    const path = join(this.config.dataDir, "member", "snap", snapshotDbName(snap.metadata.index));
    renameSync(bodyPath, path);
    this.#incomingSnapshot = { index: snap.metadata.index, path };
    this.#stepPeer(m);
  }

  /** A copy of this member's backend, streamed as a snapshot body (written to a temp file, then read back). */
  async *#snapshotBody(): AsyncIterable<Uint8Array> {
    const tmp = join(this.config.dataDir, "member", "snap", `outgoing-${process.pid}-${this.#ids.next().toString(16)}.db`);
    try {
      await this.kv.backend.backupTo(tmp);
      for await (const chunk of createReadStream(tmp, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Raft accepted a snapshot from the leader (already persisted in the WAL): its body replaces the backend,
   * and everything loaded from the backend is loaded again.
   */
  async #installSnapshot(snap: Snapshot): Promise<void> {
    const index = snap.metadata.index;
    const incoming = this.#incomingSnapshot;
    const path = incoming !== undefined && incoming.index === index ? incoming.path : join(this.config.dataDir, "member", "snap", snapshotDbName(index));
    if (!existsSync(path)) throw new Error(`snapshot at index ${index} has no backend file at ${path}`);
    this.#incomingSnapshot = undefined;
    await this.kv.replaceWith(path);
    rmSync(path, { force: true });
    if (this.kv.consistentIndex() < index) throw new Error(`snapshot backend is at index ${this.kv.consistentIndex()}, behind its raft snapshot ${index}`);
    this.#reloadFromBackend();
    this.#applied = this.kv.consistentIndex();
    this.#snapshotIndex = index;
    this.config.log?.("I", "etcdserver", `applied incoming snapshot at index ${index} (backend at index ${this.#applied}, revision ${this.kv.revision})`);
    this.#notifyApplied();
  }

  #reloadFromBackend(): void {
    this.#leaseLoop.stop();
    this.#lessor = openLessor(this.config, this.kv);
    this.#leaseLoop = new LeaseLoop(this.lessor, () => this.isLeader, (req) => this.propose(req));
    this.#leaseLoop.start();
    if (this.isLeader) this.lessor.promote(this.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS);
    this.#alarms = this.kv.backend.readNow((view) => AlarmStore.load(view));
    this.#auth = this.#loadAuth();
    this.#cluster = this.kv.backend.readNow((view) => Cluster.load(view));
    this.#syncPeers();
    this.watchable.resync();
  }

  /** etcd's publish: once there is a leader, announce this member's name and client URLs through Raft. */
  async #publish(): Promise<void> {
    const clientUrls = [...(this.config.clientUrls ?? [])];
    while (!this.#stopped) {
      await this.whenLeader();
      if (this.#stopped) return;
      try {
        const result = await this.propose({ publish: { memberId: this.config.memberId, name: this.config.name, clientUrls } });
        if (result instanceof EtcdError) throw result;
        this.#published = true;
        const waiters = this.#publishWaiters;
        this.#publishWaiters = [];
        for (const w of waiters) w();
        return;
      } catch (err) {
        if (this.#stopped) return;
        this.config.log?.("W", "etcdserver", `failed to publish local member to cluster through raft (${err instanceof Error ? err.message : String(err)})`);
        await new Promise((r) => setTimeout(r, this.heartbeatMs));
      }
    }
  }

  /** Resolves once this member has published itself (etcd serves clients only from then on). */
  whenPublished(): Promise<void> {
    if (this.#published || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#publishWaiters.push(resolve));
  }

  #removedSelf(why: string): void {
    if (this.#stopped) return;
    this.config.log?.("W", "etcdserver", `the member has been permanently removed from the cluster (${why})`);
    void this.stop().then(() => this.config.onRemoved?.());
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      // As etcd, proposals wait for a leader (until their timeout) rather than fail at once.
      if (this.leader === 0n || this.#stopped) return;
      const batch = this.#queued;
      this.#queued = [];
      if (batch.length === 0) return;
      try {
        this.#raw.proposeBatch(batch);
      } catch (err) {
        this.#failBatch(batch, err);
      }
      this.scheduleReady();
    });
  }

  #failBatch(batch: readonly Uint8Array[], err: unknown): void {
    const mapped = err instanceof RaftError ? new EtcdError(this.leader === 0n ? "NO_LEADER" : "NOT_CAPABLE") : err;
    for (const data of batch) this.#proposals.fail(decodePayload(data).id, mapped as Error);
  }

  /** Drains every Ready, one at a time: Ready → persist → send → apply → advance. */
  scheduleReady(): void {
    if (this.#processing) {
      this.#again = true;
      return;
    }
    this.#processing = true;
    void this.#drainReady();
  }

  async #drainReady(): Promise<void> {
    try {
      do {
        this.#again = false;
        while (!this.#stopped && this.#raw.hasReady()) {
          const rd = this.#raw.ready();
          await this.#handleReady(rd);
          this.#raw.advance(rd);
        }
      } while (this.#again && !this.#stopped);
    } finally {
      // Cleared in the same turn as the last hasReady() check. (A .finally() on the returned promise cleared it a
      // microtask later: a message stepped in between saw #processing, set #again, and its Ready waited for the
      // next tick — linearizable reads on a follower now and then took one heartbeat interval, ~100 ms.)
      this.#processing = false;
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    for (const rs of rd.readStates) this.#reads.onReadState(rs.requestCtx, rs.index);
    if (rd.softState !== undefined) {
      this.#onLeadership(rd.softState.raftState === StateType.Leader);
      // As etcd: every time a leader appears after another one or after none (the same member re-elected after a
      // leaderless spell counts too).
      if (rd.softState.lead !== 0n && rd.softState.lead !== this.#lastLeader) this.metrics.leaderChanges.inc();
      this.#lastLeader = rd.softState.lead;
    }
    if (rd.softState !== undefined && rd.softState.lead !== 0n) {
      if (this.#queued.length > 0) this.#scheduleFlush();
      const waiters = this.#leaderWaiters;
      this.#leaderWaiters = [];
      for (const w of waiters) w();
    }
    // A leader sends its appends while it persists them (its fsync and the followers' run in parallel, as
    // etcd's leader does); anyone else must persist first, since its messages (votes, append acks) promise
    // what is on its disk.
    const leaderSendsFirst = this.isLeader;
    if (leaderSendsFirst) this.#send(rd.messages);
    // A Ready of at most one entry with nothing in flight to peers (a lone client on one member; any follower,
    // which sends after it persists) syncs on the event loop: handing the fdatasync to libuv's pool and waking up
    // for its answer cost a lone put ~0.3 ms on top of the 0.2 ms sync (put P50 ~1.5 → ~1.2 ms on loopback).
    // Bigger batches mean concurrent clients, whose next requests the loop keeps reading while the pool syncs;
    // a leader's appends must reach the peer sockets before it blocks.
    const inlineSync = rd.entries.length <= INLINE_SYNC_MAX_ENTRIES && !(leaderSendsFirst && rd.messages.length > 0);
    const syncStart = performance.now();
    await this.#storage.saveAsync(
      { entries: rd.entries, ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}), ...(rd.snapshot !== undefined ? { snapshot: rd.snapshot } : {}) },
      rd.mustSync,
      inlineSync,
    );
    if (rd.mustSync) this.metrics.walFsync.observe((performance.now() - syncStart) / 1000);
    if (!leaderSendsFirst) this.#send(rd.messages);
    if (rd.snapshot !== undefined) await this.#installSnapshot(rd.snapshot);
    if (rd.committedEntries.length > 0) await this.#apply(rd.committedEntries);
  }

  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const t = this.#transport;
    if (t === undefined) throw new Error(`no peers: message ${messages[0]?.type} to ${messages[0]?.to.toString(16)}`);
    const plain: Message[] = [];
    for (const m of messages) {
      if (m.type === MessageType.Snap) t.sendSnapshot(m, () => this.#snapshotBody());
      else plain.push(m);
    }
    t.send(plain);
  }

  async #apply(entries: readonly Entry[]): Promise<void> {
    const ids: bigint[] = [];
    const reqs: WriteRequest[] = [];
    const confs: { cc: ConfChange; slot: number }[] = [];
    const capped = new CappedState(this.alarms.list(AlarmType.NOSPACE));
    for (const e of entries) {
      if (e.index <= this.#applied) {
        // Already in the backend (replay after a restart or a snapshot): Raft still needs past conf changes,
        // with the outcome they had when they were applied.
        if (e.type === EntryType.ConfChange) this.#replayConfChange(e);
        continue;
      }
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        confs.push({ cc, slot: reqs.length });
        ids.push(0n);
        reqs.push({ effect: confChangeEffect(this.#cluster, cc, e.index) });
      } else if (e.data.length > 0) {
        const p = decodePayload(e.data);
        ids.push(p.id);
        reqs.push(this.#toWrite(p.req, capped, e.index, p.auth));
      }
    }
    const last = entries[entries.length - 1];
    if (last === undefined || last.index <= this.#applied) return;
    const commitStart = performance.now();
    const results = reqs.length > 0 ? await this.kv.write(reqs, last.index) : [];
    if (reqs.length > 0) this.metrics.backendCommit.observe((performance.now() - commitStart) / 1000);
    this.#applied = last.index;
    for (const { cc, slot } of confs) this.#afterConfChange(cc, results[slot]);
    results.forEach((res, i) => this.#proposals.trigger(ids[i] ?? 0n, res));
    this.#notifyApplied();
    this.#maybeSnapshot();
  }

  #replayConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    const accepted = this.kv.backend.readNow((v) => recordedOutcome(v, e.index));
    if (accepted === undefined) throw new Error(`conf change at index ${e.index} is below the applied index ${this.#applied} but has no recorded outcome`);
    this.#raw.applyConfChange(accepted ? cc : { ...cc, nodeId: 0n });
  }

  /** After the batch with a conf change committed: Raft, the transport and whoever proposed it learn the outcome. */
  #afterConfChange(cc: ConfChange, result: WriteResponse | EtcdError | undefined): void {
    const outcome = result !== undefined && !(result instanceof EtcdError) && "effect" in result ? (result.effect.value as ConfOutcome) : undefined;
    if (outcome === undefined) throw new Error(`conf change for ${cc.nodeId.toString(16)} was not applied: ${String(result)}`);
    this.#raw.applyConfChange(outcome.error === undefined ? cc : { ...cc, nodeId: 0n });
    const waiter = this.#confWaiters.get(`${cc.type}:${cc.nodeId}`);
    this.#confWaiters.delete(`${cc.type}:${cc.nodeId}`);
    waiter?.resolve(outcome);
    if (outcome.error !== undefined) return;
    const change = outcome.change;
    const t = this.#transport;
    if (change.kind === "add" && change.member.id !== this.config.memberId) t?.addPeer(change.member.id, change.member.peerUrls);
    if (change.kind === "update" && change.id !== this.config.memberId) t?.updatePeer(change.id, change.peerUrls);
    if (change.kind === "remove") {
      if (change.id === this.config.memberId) this.#removedSelf("removed through a conf change");
      else t?.removePeer(change.id);
    }
    this.config.log?.("I", "membership", `applied ${change.kind} of member ${(change.kind === "add" ? change.member.id : change.id).toString(16)}`);
  }

  /** The backend write of one applied request; while NOSPACE is raised, what grows the database is refused. */
  #toWrite(req: InternalRequest, capped: CappedState, index: number, auth?: AuthInfo): WriteRequest {
    const denied = auth !== undefined ? this.#applyTimeDenial(req, auth) : undefined;
    if (denied !== undefined) return { effect: { run: () => { throw denied; } } };
    if ("alarm" in req) {
      capped.apply(req);
      return { effect: alarmEffect(this.alarms, req) };
    }
    if (isAuthChange(req)) return { effect: this.auth.effect(req, index) };
    if ("publish" in req) {
      const { memberId, name, clientUrls } = req.publish;
      return { effect: { run: (tx) => (this.#cluster.publish(tx, memberId, name, clientUrls), {}) } };
    }
    if (capped.active && growsDatabase(req)) return { effect: { run: () => { throw new EtcdError("NO_SPACE"); } } };
    return isLeaseRequest(req) ? { effect: leaseEffect(this.lessor, req) } : req;
  }

  /**
   * etcd checks a request's permissions again when it applies, with the user and auth revision it was proposed
   * with: a role or user changed in between (the auth revision moved) makes it fail with
   * "revision of auth store is old" (the client retries with a fresh token), a lost permission with "permission
   * denied". (Checked as the batch is assembled: an auth change in the same batch is seen by the next batch.)
   */
  #applyTimeDenial(req: InternalRequest, auth: AuthInfo): EtcdError | undefined {
    if (!this.auth.enabled) return undefined;
    try {
      if ("put" in req) this.auth.checkPut(auth, req.put);
      else if ("deleteRange" in req) this.auth.checkDeleteRange(auth, req.deleteRange);
      else if ("txn" in req) this.auth.checkTxn(auth, req.txn);
      else if ("leaseRevoke" in req) this.auth.checkLeaseKeys(auth, req.leaseRevoke.id);
      return undefined;
    } catch (err) {
      if (err instanceof EtcdError) return err;
      throw err;
    }
  }

  /** Auto-compaction: the leader asks the policy every tick (a tenth of its interval, at most a second). */
  #startCompactor(): void {
    const compactor = this.#compactor;
    if (compactor === undefined) return;
    const now = this.config.clock ?? (() => performance.now());
    const every = Math.max(10, Math.min(1000, compactor.intervalMs / 10));
    this.#compactTimer = setInterval(() => {
      if (!this.isLeader) {
        compactor.reset();
        return;
      }
      const rev = compactor.step(now(), this.kv.revision, this.kv.compactRevision);
      if (rev === undefined) return;
      this.config.log?.("N", "compactor", `Starting auto-compaction at revision ${rev} (retention: ${retentionText(compactor.policy)})`);
      this.compact(rev).then(
        () => this.config.log?.("N", "compactor", `Finished auto-compaction at revision ${rev}`),
        (err: unknown) => this.config.log?.("W", "compactor", `Failed auto-compaction at revision ${rev} (${err instanceof Error ? err.message : String(err)})`),
      );
    }, every);
    this.#compactTimer.unref();
  }

  /**
   * A new leader gives every lease an election timeout more before expiring any (clients need the time to find
   * it); a member that lost leadership expires nothing.
   */
  #onLeadership(leader: boolean): void {
    if (leader === this.#wasLeader) return;
    this.#wasLeader = leader;
    if (leader) this.lessor.promote(this.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS);
    else this.lessor.demote();
  }

  /** Every --snapshot-count applied entries, snapshot (the backend is the state) and let old WAL segments go. */
  #maybeSnapshot(): void {
    if (this.#applied - this.#snapshotIndex < (this.config.snapshotCount ?? SNAPSHOT_COUNT)) return;
    this.#storage.createSnapshot(this.#applied, this.#raw.raft.confState(), new Uint8Array(0), this.config.snapshotCatchUpEntries ?? SNAPSHOT_CATCH_UP_ENTRIES);
    this.#snapshotIndex = this.#applied;
  }

  /**
   * Resolves once the member knows a leader. etcd serves clients only after publishing itself through Raft,
   * which needs a leader; the CLI waits for this before it listens, so a client never meets a leaderless member
   * at start-up.
   */
  whenLeader(): Promise<void> {
    if (this.leader !== 0n) return Promise.resolve();
    return new Promise((resolve) => this.#leaderWaiters.push(resolve));
  }

  /** Resolves once the applied index reaches `index` (a linearizable read's wait). */
  waitApplied(index: number): Promise<void> {
    if (this.#applied >= index) return Promise.resolve();
    return new Promise((resolve) => this.#appliedWaiters.push({ index, resolve }));
  }

  #notifyApplied(): void {
    for (let i = this.#appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.#appliedWaiters[i];
      if (w !== undefined && w.index <= this.#applied) {
        this.#appliedWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Starts a ReadIndex round (used by the read batcher). */
  requestReadIndex(ctx: Uint8Array): void {
    this.#raw.readIndex(ctx);
    this.scheduleReady();
  }

  /**
   * A brand-new member starts as etcd's does after its bootstrap conf change (index 1, term 1): a durable
   * snapshot holding the initial configuration, so the first election is term 2 and the first entry index 2.
   */
  #bootstrap(): void {
    // A data dir made by `snapshot restore` holds its new cluster's members and no log: they are the start.
    const given = this.config.initialMembers;
    const stored = this.#cluster.members();
    const members = given !== undefined && given.length > 0 ? given : stored.length > 0 ? stored : [{ id: this.config.memberId, isLearner: false }];
    const confState = { voters: members.filter((m) => !m.isLearner).map((m) => m.id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), learners: [] };
    this.#storage.save({
      snapshot: { metadata: { index: 1, term: 1, confState }, data: new Uint8Array(0) },
      hardState: { term: 1, vote: 0n, commit: 1 },
      entries: [],
    }, true);
  }
}

/** etcd's HealthInterval: a peer counts as up for reconfiguration checks once connected this long. */
const PEER_HEALTH_INTERVAL_MS = 5_000;

function snapshotDbName(index: number): string {
  return `${index.toString(16).padStart(16, "0")}.snap.db`;
}

/**
 * A crash between persisting a received Raft snapshot and swapping in its backend leaves the backend behind the
 * WAL: the body kept under snap/ is swapped in at the next start. Older bodies are deleted.
 */
async function finishSnapshotInstall(kv: KvStore, snapshotIndex: number, snapDir: string): Promise<void> {
  const pending = join(snapDir, snapshotDbName(snapshotIndex));
  if (kv.consistentIndex() < snapshotIndex && snapshotIndex > 1) {
    if (!existsSync(pending)) throw new Error(`backend at index ${kv.consistentIndex()} is behind the raft snapshot at ${snapshotIndex} and ${pending} is missing`);
    await kv.replaceWith(pending);
  }
  for (const f of readdirSync(snapDir)) if (f.endsWith(".snap.db") || f.startsWith("outgoing-")) rmSync(join(snapDir, f), { force: true });
}

function retentionText(p: CompactionPolicy): string {
  return p.mode === "revision" ? `${p.retention} revisions` : `${p.retention / 1000}s`;
}

/** Re-read the backend file size for quota checks at most this often. */
const QUOTA_SIZE_CACHE_MS = 100;
/** What etcd adds to a request's own bytes when checking the quota (its per-key overhead estimate). */
const QUOTA_REQUEST_OVERHEAD_BYTES = 64;
/** What a lease grant costs against the quota (its stored record). */
const LEASE_COST_BYTES = 64;

/** Whether NOSPACE is raised, followed through a batch in apply order (an alarm change may sit in the batch). */
class CappedState {
  readonly #raised: Set<string>;
  constructor(nospace: readonly AlarmMember[]) {
    this.#raised = new Set(nospace.map((a) => a.memberId.toString()));
  }
  get active(): boolean {
    return this.#raised.size > 0;
  }
  apply(req: AlarmChange): void {
    const { action, memberId, type } = req.alarm;
    if (action === AlarmAction.ACTIVATE && type === AlarmType.NOSPACE) this.#raised.add(memberId.toString());
    if (action === AlarmAction.DEACTIVATE && (type === AlarmType.NOSPACE || type === AlarmType.NONE)) {
      if (memberId === 0n) this.#raised.clear();
      else this.#raised.delete(memberId.toString());
    }
  }
}

function alarmEffect(alarms: AlarmStore, req: AlarmChange): Effect {
  const { action, memberId, type } = req.alarm;
  return {
    run: (tx) => ({
      value: action === AlarmAction.ACTIVATE ? alarms.activate(tx, memberId, type as AlarmType) : alarms.deactivate(tx, memberId, type as AlarmType),
    }),
  };
}

function isTxnReadOnly(t: TxnRequest): boolean {
  return [...t.success, ...t.failure].every((op) => "range" in op || ("txn" in op && isTxnReadOnly(op.txn)));
}

function txnBytes(t: TxnRequest): number {
  let n = 0;
  for (const op of [...t.success, ...t.failure]) {
    if ("put" in op) n += op.put.key.length + op.put.value.length;
    else if ("txn" in op) n += txnBytes(op.txn);
  }
  return n;
}

/** etcd's capped applier refuses puts, txns that write, and lease grants while NOSPACE is raised. */
function growsDatabase(req: InternalRequest): boolean {
  return "put" in req || ("txn" in req && !isTxnReadOnly(req.txn)) || "leaseGrant" in req;
}

/** The lessor from the backend's lease bucket, with the attachments of every live key that has a lease. */
function openLessor(config: ServerConfig, kv: KvStore): Lessor {
  const lessor = kv.backend.readNow((view) => Lessor.load(view, {
    minTtlSeconds: minLeaseTtlSeconds(config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS, config.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS),
    checkpointEnabled: config.leaseCheckpoint ?? true,
    ...(config.leaseCheckpointIntervalMs !== undefined ? { checkpointIntervalMs: config.leaseCheckpointIntervalMs } : {}),
    ...(config.clock !== undefined ? { now: config.clock } : {}),
  }));
  for (const { lease, key } of kv.liveLeasedKeys()) lessor.attach(lease, key);
  kv.setLeaseAttacher(lessor);
  return lessor;
}

/**
 * Linearizable reads share ReadIndex rounds: every read arriving while no round is in flight joins the next one;
 * a round resolves when Raft confirms the leader's commit index (ReadState) and the apply loop reaches it.
 * A round lost to a leader change is retried after an election timeout.
 */
class ReadIndexBatcher {
  readonly #server: EtcdServer;
  #waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #inFlight: { ctx: string; ticks: number; readers: { resolve: () => void; reject: (e: Error) => void }[] } | undefined;
  #seq = 0n;

  constructor(server: EtcdServer) {
    this.#server = server;
  }

  linearizableBarrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (this.#inFlight === undefined) setImmediate(() => this.#startRound());
    });
  }

  #startRound(): void {
    if (this.#inFlight !== undefined || this.#waiting.length === 0) return;
    this.#seq += 1n;
    const ctxBytes = Buffer.alloc(8);
    ctxBytes.writeBigUInt64BE(this.#seq);
    this.#inFlight = { ctx: ctxBytes.toString("hex"), ticks: 0, readers: this.#waiting };
    this.#waiting = [];
    try {
      this.#server.requestReadIndex(ctxBytes);
    } catch (err) {
      this.#finish(isEtcdError(err) ? err : new EtcdError("NO_LEADER"));
    }
  }

  onReadState(ctx: Uint8Array, index: number): void {
    const round = this.#inFlight;
    if (round === undefined || Buffer.from(ctx).toString("hex") !== round.ctx) return;
    this.#inFlight = undefined;
    void this.#server.waitApplied(index).then(() => {
      for (const r of round.readers) r.resolve();
      this.#startRound();
    });
  }

  onTick(): void {
    const round = this.#inFlight;
    if (round === undefined) return;
    round.ticks++;
    if (round.ticks * this.#server.heartbeatMs >= this.#server.requestTimeoutMs) {
      this.#finish(new EtcdError("TIMEOUT", "read index"));
    } else if (round.ticks % this.#server.electionTicks === 0) {
      // Lost (no leader, or leadership changed): ask again with the same readers.
      this.#inFlight = undefined;
      this.#waiting = round.readers.concat(this.#waiting);
      this.#startRound();
    }
  }

  #finish(err: Error): void {
    const round = this.#inFlight;
    this.#inFlight = undefined;
    for (const r of round?.readers ?? []) r.reject(err);
  }

  failAll(err: Error): void {
    this.#finish(err);
    for (const r of this.#waiting) r.reject(err);
    this.#waiting = [];
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  const timer = setTimeout(onTimeout, ms);
  return p.finally(() => clearTimeout(timer));
}
