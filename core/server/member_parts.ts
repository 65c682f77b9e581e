// The parts one member runs beside its request front end (EtcdServer) and the wiring between them: the Raft node
// loop, the applier, snapshots, ReadIndex batching, the lease and membership fronts, the quota and publisher, the
// peer transport, and the stores loaded from the backend (alarms, auth, members, v2), which an installed snapshot
// replaces. Also the member's two ways of stopping short: removal from the cluster, and fail-stop on a storage error.
import { EtcdError } from "../errors.js";
import { SimpleTokenProvider } from "../auth/tokens.js";
import { AUTH_TOKEN_TTL_SECONDS } from "../limits.js";
import { Cluster } from "../membership/cluster.js";
import type { MemberChange } from "../membership/conf_change.js";
import type { KvStore } from "../mvcc/kv_store.js";
import type { WriteResponse } from "../mvcc/types.js";
import { SnapshotStatus, type Message, type Snapshot } from "../raft/index.js";
import type { PeerTransport } from "../transport/index.js";
import type { WalStorage } from "../wal/wal_storage.js";
import { AlarmStore } from "./alarms.js";
import { Applier, type ApplyHost } from "./applier.js";
import { ServerAuth } from "./auth_apply.js";
import type { CorruptMonitor } from "./corrupt_check.js";
import type { DirLock } from "./dir_lock.js";
import type { EtcdServer } from "./etcd_server.js";
import { failStop } from "./fail_stop.js";
import { IdGenerator } from "./id_gen.js";
import { LeaseFront } from "./lease_front.js";
import { MemberFront } from "./member_changes.js";
import { followMemberChange, newPeerTransport, syncPeers } from "./peers.js";
import { Publisher } from "./publish.js";
import { BackendQuota } from "./quota.js";
import { RaftNode, type RaftNodeHost } from "./raft_node.js";
import { ReadIndexBatcher } from "./read_index.js";
import { Snapshots, saveBootstrapSnapshot } from "./snapshots.js";
import type { ServerConfig } from "./server_config.js";
import { Wait } from "./wait.js";

/** Proposals waiting for their entry to apply (etcd has no fixed bound; this bound keeps memory bounded). */
const MAX_PENDING_PROPOSALS = 100_000;

/**
 * MemberParts holds what EtcdServer delegates to and the state those parts share. The stores loaded from the
 * backend are plain fields that an installed snapshot replaces; the parts read them through getters.
 */
export class MemberParts {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  readonly storage: WalStorage;
  alarms: AlarmStore;
  auth: ServerAuth;
  /** The members, as applied from the log (reloaded from a snapshot's backend). */
  cluster: Cluster;
  transport: PeerTransport | undefined;
  stopped = false;
  /** The storage failure that stopped this member (fail-stop), if any. */
  fatalError: unknown;
  compactTimer: NodeJS.Timeout | undefined;
  dirLock: DirLock | undefined;
  corruptMonitor: CorruptMonitor | undefined;
  readonly leases: LeaseFront;
  readonly ids: IdGenerator;
  readonly proposals = new Wait<WriteResponse | EtcdError>({ maxPending: MAX_PENDING_PROPOSALS });
  readonly quota: BackendQuota;
  readonly publisher: Publisher;
  readonly snapshots: Snapshots;
  readonly applier: Applier;
  readonly node: RaftNode;
  readonly reads: ReadIndexBatcher;
  readonly members: MemberFront;
  #wasLeader = false;

  constructor(
    readonly server: EtcdServer,
    storage: WalStorage,
  ) {
    const { config, kv } = server;
    this.config = config;
    this.kv = kv;
    this.storage = storage;
    this.leases = new LeaseFront(server);
    this.alarms = kv.backend.readNow((view) => AlarmStore.load(view));
    this.auth = this.#loadAuth();
    this.cluster = kv.backend.readNow((view) => Cluster.load(view));
    this.ids = new IdGenerator(config.memberId, Date.now());
    this.quota = this.#newQuota();
    this.publisher = this.#newPublisher();
    if (storage.lastIndex() === 0 && config.joinExisting !== true)
      saveBootstrapSnapshot(storage, config, this.cluster.members());
    kv.backend.readNow((view) => server.v2.load(view));
    this.snapshots = new Snapshots({ config, kv, storage, nextId: () => this.ids.next() });
    this.applier = new Applier(this.#applyHost(), Math.max(kv.consistentIndex(), this.snapshots.index));
    const raftStorage = this.snapshots.raftStorage(() => this.node.raw.raft.confState());
    // A commit index alone is written without an fsync (as etcd's), so after a power cut the backend may have
    // applied past the WAL's commit: Raft resumes from the commit it has and the applier skips what is applied.
    const walCommit = storage.initialState().hardState.commit;
    const start = Math.max(this.snapshots.index, Math.min(this.applier.applied, walCommit));
    this.node = new RaftNode(this.#raftNodeHost(), raftStorage, start);
    this.reads = new ReadIndexBatcher(server);
    this.members = new MemberFront(this);
    // A snapshot body from the leader can be ahead of its snapshot's index, and so of this member's log: conf
    // changes past the log come from the leader again, and the applier replays them as they arrive.
    this.applier.replayConfChanges(this.snapshots.index + 1, Math.min(this.applier.applied, storage.lastIndex()));
  }

  #newQuota(): BackendQuota {
    const parts = this;
    return new BackendQuota({
      config: this.config,
      kv: this.kv,
      get alarms() {
        return parts.alarms;
      },
      propose: (req) => this.server.propose(req),
    });
  }

  #newPublisher(): Publisher {
    const parts = this;
    return new Publisher({
      config: this.config,
      get stopped() {
        return parts.stopped;
      },
      get heartbeatMs() {
        return parts.server.heartbeatMs;
      },
      whenLeader: () => this.server.whenLeader(),
      propose: (req) => this.server.propose(req),
    });
  }

  /** What the applier reads from this member (the stores through getters: a snapshot replaces them). */
  #applyHost(): ApplyHost {
    const parts = this;
    return {
      kv: this.kv,
      storage: this.storage,
      metrics: this.server.metrics,
      get alarms() {
        return parts.alarms;
      },
      get auth() {
        return parts.auth;
      },
      get lessor() {
        return parts.leases.lessor;
      },
      get cluster() {
        return parts.cluster;
      },
      v2: this.server.v2,
      applyConfChangeToRaft: (cc) => this.node.raw.applyConfChange(cc),
      onMemberChange: (change) => this.#onMemberChange(change),
      answer: (id, result) => this.proposals.trigger(id, result),
      afterApply: (index) => {
        this.snapshots.maybeCut(index, this.node.raw.raft.confState());
        this.snapshots.trimLog(index, this.node.othersHave());
      },
      warn: (message) => this.config.log?.("W", "etcdserver", message),
    };
  }

  /** What the Raft loop hands to this member and reads from it. */
  #raftNodeHost(): RaftNodeHost {
    const parts = this;
    return {
      config: this.config,
      metrics: this.server.metrics,
      storage: this.storage,
      get stopped() {
        return parts.stopped;
      },
      get transport() {
        return parts.transport;
      },
      get heartbeatMs() {
        return parts.server.heartbeatMs;
      },
      get electionTicks() {
        return parts.server.electionTicks;
      },
      onTick: () => this.reads.onTick(),
      onReadState: (ctx, index) => this.reads.onReadState(ctx, index),
      onLeadership: (leader) => this.#onLeadership(leader),
      snapshotBody: () => this.snapshots.body(),
      installSnapshot: (snap) => this.#installSnapshot(snap),
      apply: (entries) => this.applier.apply(entries),
      failProposal: (id, err) => this.proposals.fail(id, err),
      fatal: (err) => this.fatal(err),
    };
  }

  #loadAuth(): ServerAuth {
    const config = this.config;
    return this.kv.backend.readNow(
      (view) =>
        new ServerAuth(view, {
          tokenProvider: config.authTokenProvider ?? new SimpleTokenProvider({ ttlSeconds: AUTH_TOKEN_TTL_SECONDS }),
          ...(config.bcryptCost !== undefined ? { bcryptCost: config.bcryptCost } : {}),
          propose: (req, etcdOnly) => this.server.propose(req, undefined, etcdOnly),
          leaseKeys: (id) => this.leases.lessor.timeToLive(id, true)?.keys ?? [],
        }),
    );
  }

  /** Starts the peer transport (with config.peer) and dials every other known member. */
  async startPeers(): Promise<void> {
    const peer = this.config.peer;
    if (peer === undefined) return;
    const server = this.server;
    const t = newPeerTransport(peer, {
      config: this.config,
      onMessage: (m) => this.node.step(m),
      onSnapshot: (m, path) => this.#receiveSnapshot(m, path),
      onUnreachable: (id) => this.node.raw.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => {
        this.node.raw.reportSnapshot(id, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        this.node.scheduleReady();
      },
      onRemoved: (why) => this.#removedSelf(why),
      handlers: {
        members: () => this.cluster.members(),
        renew: (id) => server.leaseRenew(id).then((r) => r.ttl),
        timeToLive: (id, keys) => this.leases.localTimeToLive(id, keys),
        promote: (id) => server.memberPromote(id).then(() => undefined),
        hashKV: (revision) => this.kv.hashKV(revision),
      },
    });
    this.transport = t;
    await t.start();
    const known =
      this.config.joinExisting === true && this.cluster.members().length === 0
        ? (this.config.initialMembers ?? [])
        : this.cluster.members();
    for (const m of known) if (m.id !== this.config.memberId) t.addPeer(m.id, m.peerUrls);
    syncPeers(t, this.cluster, this.config.memberId);
  }

  /**
   * A storage write or fsync failed: stop serving at once, answer nobody with success, and never touch the data
   * dir again (fail_stop.ts). stop() afterwards only releases sockets and the directory lock.
   */
  fatal(err: unknown): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = err;
    this.stopped = true;
    this.node.stopTicking();
    this.leases.stop();
    if (this.compactTimer !== undefined) clearInterval(this.compactTimer);
    const stopped = new EtcdError("STOPPED");
    this.proposals.failAll(stopped);
    this.reads.failAll(stopped);
    failStop(this.config, err);
  }

  /** After fail-stop: release sockets and the directory lock, and write nothing more to the data dir. */
  async releaseAfterFatal(): Promise<void> {
    const lock = this.dirLock;
    this.dirLock = undefined;
    if (lock === undefined) return;
    this.publisher.releaseWaiters();
    await this.transport?.stop();
    this.storage.abandon();
    await this.kv.backend.abandon();
    await lock.release();
  }

  /** A snapshot body arrived whole: keep it under its index until Raft hands out the snapshot, then step it. */
  #receiveSnapshot(m: Message, bodyPath: string): void {
    if (this.stopped || m.snapshot === undefined) return;
    this.snapshots.receive(m, bodyPath);
    this.node.step(m);
  }

  /**
   * Raft accepted a snapshot from the leader (already persisted in the WAL): its body replaces the backend,
   * and everything loaded from the backend is loaded again.
   */
  async #installSnapshot(snap: Snapshot): Promise<void> {
    await this.snapshots.install(snap);
    this.#reloadFromBackend();
    this.applier.resetTo(this.kv.consistentIndex());
    this.config.log?.(
      "I",
      "etcdserver",
      `applied incoming snapshot at index ${snap.metadata.index} (backend at index ${this.applier.applied}, revision ${this.kv.revision})`,
    );
  }

  #reloadFromBackend(): void {
    this.leases.reload();
    this.alarms = this.kv.backend.readNow((view) => AlarmStore.load(view));
    this.auth = this.#loadAuth();
    this.cluster = this.kv.backend.readNow((view) => Cluster.load(view));
    this.kv.backend.readNow((view) => this.server.v2.load(view));
    syncPeers(this.transport, this.cluster, this.config.memberId);
    this.server.watchable.resync();
  }

  #removedSelf(why: string): void {
    if (this.stopped) return;
    this.config.log?.("W", "etcdserver", `the member has been permanently removed from the cluster (${why})`);
    void this.server.stop().then(() => this.config.onRemoved?.());
  }

  /** An accepted member change was applied: the transport talks to the new set of members. */
  #onMemberChange(change: MemberChange): void {
    followMemberChange(this.transport, change, this.config, (why) => this.#removedSelf(why));
  }

  /** Leadership changed: the lessor follows (lease_front.ts). */
  #onLeadership(leader: boolean): void {
    if (leader === this.#wasLeader) return;
    this.#wasLeader = leader;
    this.leases.onLeadership(leader);
  }
}
