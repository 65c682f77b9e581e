// The Raft node loop of one member: ticks, proposal batching, and the Ready cycle in etcd's order — persist the
// log to the WAL (a leader sends its appends while it persists), send messages, install a snapshot, apply the
// committed entries, then advance. The WAL's fdatasync is the durability point: nothing a follower sends and
// nothing applied gets ahead of its disk.
//
// The loop is pipelined as etcd's is: once a Ready is on disk it advances at once, and its committed entries are
// applied while the next Ready's fdatasync runs, so proposals that arrived during a sync or an apply are already
// on their way to disk while the previous batch is applied. Applies stay in log order, one at a time; a Ready
// with a snapshot waits for the pending apply first, and a batch holding a conf change is applied before the loop
// advances (Raft must know the new configuration before its next Ready).
import { EtcdError } from "../errors.js";
import {
  ELECTION_TIMEOUT_MS,
  RAFT_MAX_INFLIGHT_MSGS,
  RAFT_MAX_SIZE_PER_MSG_BYTES,
  RAFT_MAX_UNCOMMITTED_ENTRIES_BYTES,
} from "../limits.js";
import {
  EntryType,
  MessageType,
  RawNode,
  RaftError,
  StateType,
  TICK_ADVANCE_POLL_MS,
  TICK_ADVANCE_WAIT_MS,
  initialTickAdvance,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type Rng,
  type Snapshot,
  type Storage,
} from "../raft/index.js";
import type { PeerTransport } from "../transport/index.js";
import type { WalStorage } from "../wal/wal_storage.js";
import type { ServerMetrics } from "./metrics.js";
import { decodePayload } from "./request_codec.js";
import type { ServerConfig } from "./server_config.js";

/** Largest Ready (in entries) whose WAL fdatasync runs on the event loop instead of libuv's thread pool. */
const INLINE_SYNC_MAX_ENTRIES = 1;

const mathRng: Rng = { nextInt: (n) => Math.floor(Math.random() * n) };

/** What the loop hands to the rest of the member, and reads from it. */
export interface RaftNodeHost {
  readonly config: ServerConfig;
  readonly metrics: ServerMetrics;
  readonly storage: WalStorage;
  readonly stopped: boolean;
  readonly transport: PeerTransport | undefined;
  readonly heartbeatMs: number;
  readonly electionTicks: number;
  onTick(): void;
  onReadState(ctx: Uint8Array, index: number): void;
  onLeadership(leader: boolean): void;
  snapshotBody(): AsyncIterable<Uint8Array>;
  installSnapshot(snap: Snapshot): Promise<void>;
  apply(entries: readonly Entry[]): Promise<void>;
  failProposal(id: bigint, err: Error): void;
  /** Persisting, installing or applying a Ready failed: the member must stop now (fail-stop). */
  fatal(err: unknown): void;
}

export class RaftNode {
  readonly raw: RawNode;
  readonly #host: RaftNodeHost;
  #queued: Uint8Array[] = [];
  #flushScheduled = false;
  #readyQueued = false;
  #processing = false;
  #again = false;
  /** Committed entries of the last Ready, on disk and waiting to be applied (see the file comment). */
  #pendingApply: readonly Entry[] | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #lastLeader: NodeId = 0n;
  #leaderWaiters: (() => void)[] = [];

  constructor(host: RaftNodeHost, storage: Storage, applied: number) {
    const config = host.config;
    this.#host = host;
    this.raw = new RawNode({
      id: config.memberId,
      electionTick: host.electionTicks,
      heartbeatTick: 1,
      storage,
      applied,
      // Conf changes past the Raft snapshot go back to Raft with their recorded outcomes (Applier.replayConfChanges).
      replayAppliedConfChanges: false,
      maxSizePerMsgBytes: RAFT_MAX_SIZE_PER_MSG_BYTES,
      maxInflightMsgs: RAFT_MAX_INFLIGHT_MSGS,
      maxUncommittedEntriesBytes: RAFT_MAX_UNCOMMITTED_ENTRIES_BYTES,
      preVote: config.preVote ?? true,
      checkQuorum: true,
      rng: config.rng ?? mathRng,
    });
  }

  get isLeader(): boolean {
    return this.raw.raft.state === StateType.Leader;
  }

  get leader(): NodeId {
    return this.raw.raft.lead;
  }

  /** See othersHave below. */
  othersHave(): number | undefined {
    return othersHave(this.raw.raft);
  }

  /** Whether a Ready is being handled right now (stop waits for it). */
  get processing(): boolean {
    return this.#processing;
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

  startTicking(): void {
    const config = this.#host.config;
    const voters = this.raw.raft.confState().voters;
    if (voters.length === 1 && voters[0] === config.memberId) {
      // The only voter: no one else can lead or be disrupted, so it campaigns at once instead of waiting out a
      // randomized election timeout (up to a second of start-up for nothing).
      this.raw.campaign();
    } else if (config.initialElectionTickAdvance !== false && voters.includes(config.memberId)) {
      void this.#advanceTicksWhenPeerUp(voters.length);
    }
    this.#ticker = setInterval(() => {
      this.raw.tick();
      this.#host.onTick();
      this.scheduleReady();
    }, this.#host.heartbeatMs);
    this.scheduleReady();
  }

  stopTicking(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
  }

  /**
   * etcd 3.4's restart rule: wait (bounded) until a peer is reachable, then fast-forward to two ticks before
   * the election, so a restarted follower hears the leader's heartbeat before it would campaign.
   */
  async #advanceTicksWhenPeerUp(clusterSize: number): Promise<void> {
    const host = this.#host;
    const deadline = performance.now() + TICK_ADVANCE_WAIT_MS;
    for (;;) {
      if (host.stopped || this.leader !== 0n) return;
      const activePeers = host.transport?.activePeers().length ?? 0;
      const waitExpired = performance.now() >= deadline;
      const advance = initialTickAdvance({
        clusterSize,
        electionTicks: host.electionTicks,
        activePeers,
        mode: "etcd34",
        waitExpired,
      });
      if (typeof advance === "number") {
        if (advance > 0)
          host.config.log?.(
            "I",
            "raft",
            `fast-forwarding ${advance} ticks (election ticks ${host.electionTicks}) with ${activePeers} active peer(s)`,
          );
        this.raw.advanceTicks(advance);
        this.scheduleReady();
        return;
      }
      await new Promise((r) => setTimeout(r, TICK_ADVANCE_POLL_MS));
    }
  }

  /** A message from a peer. */
  step(m: Message): void {
    if (this.#host.stopped) return;
    if (m.type === MessageType.App) this.#host.metrics.appendsReceived++;
    else if (m.type === MessageType.AppResp) this.#host.metrics.followers.answered(m.from, m.reject, performance.now());
    try {
      this.raw.step(m);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      return; // a message for a member we are not (yet) part of, or from an old term: raft says drop it
    }
    this.#scheduleReadyAfterStep();
  }

  /**
   * The Ready waits until the current task ends: a peer's write often carries several messages (an append and
   * the commit that follows it, a few acks), and stepping them all first makes one Ready, one fdatasync and one
   * apply of them instead of one per message.
   */
  #scheduleReadyAfterStep(): void {
    if (this.#readyQueued) return;
    this.#readyQueued = true;
    queueMicrotask(() => {
      this.#readyQueued = false;
      this.scheduleReady();
    });
  }

  /** Queues an encoded proposal; the queue goes to Raft as one batch per event-loop turn. */
  enqueue(data: Uint8Array): void {
    this.#queued.push(data);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      // As etcd, proposals wait for a leader (until their timeout) rather than fail at once.
      if (this.leader === 0n || this.#host.stopped) return;
      const batch = this.#queued;
      this.#queued = [];
      if (batch.length === 0) return;
      try {
        this.raw.proposeBatch(batch);
      } catch (err) {
        this.#failBatch(batch, err);
      }
      this.scheduleReady();
    });
  }

  #failBatch(batch: readonly Uint8Array[], err: unknown): void {
    const mapped = err instanceof RaftError ? new EtcdError(this.leader === 0n ? "NO_LEADER" : "NOT_CAPABLE") : err;
    for (const data of batch) this.#host.failProposal(decodePayload(data).id, mapped as Error);
  }

  /** Drains every Ready, one at a time: Ready → persist → send → apply → advance. */
  scheduleReady(): void {
    this.#sendForwards();
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
        while (!this.#host.stopped && this.raw.hasReady()) {
          const rd = this.raw.ready();
          await this.#handleReady(rd);
          this.raw.advance(rd);
        }
        // Nothing more to persist: what the last Ready committed is applied now.
        await this.#applyPending();
      } while ((this.#again || this.raw.hasReady()) && !this.#host.stopped);
    } catch (err) {
      // A failed WAL write or fsync, backend commit or snapshot install leaves memory ahead of disk: nothing
      // may be sent or applied past it, and an fsync is never retried.
      this.#host.fatal(err);
    } finally {
      // Cleared in the same turn as the last hasReady() check. (A .finally() on the returned promise cleared it a
      // microtask later: a message stepped in between saw #processing, set #again, and its Ready waited for the
      // next tick — linearizable reads on a follower now and then took one heartbeat interval, ~100 ms.)
      this.#processing = false;
    }
  }

  #onSoftState(rd: Ready): void {
    const soft = rd.softState;
    if (soft === undefined) return;
    this.#host.onLeadership(soft.raftState === StateType.Leader);
    // As etcd: every time a leader appears after another one or after none (the same member re-elected after a
    // leaderless spell counts too).
    if (soft.lead !== 0n && soft.lead !== this.#lastLeader) this.#host.metrics.leaderChanges.inc();
    if (soft.lead !== this.#lastLeader) {
      this.#host.metrics.leaderSinceMs = soft.lead === 0n ? 0 : Date.now();
      this.#host.metrics.followers.forgetPending();
    }
    this.#lastLeader = soft.lead;
    if (soft.lead !== 0n) {
      if (this.#queued.length > 0) this.#scheduleFlush();
      const waiters = this.#leaderWaiters;
      this.#leaderWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    const host = this.#host;
    for (const rs of rd.readStates) host.onReadState(rs.requestCtx, rs.index);
    this.#onSoftState(rd);
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
    const inlineSync =
      this.#pendingApply === undefined &&
      rd.entries.length <= INLINE_SYNC_MAX_ENTRIES &&
      !(leaderSendsFirst && rd.messages.length > 0);
    if (rd.snapshot !== undefined) await this.#applyPending();
    const syncStart = performance.now();
    const saving = host.storage.saveAsync(
      {
        entries: rd.entries,
        ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}),
        ...(rd.snapshot !== undefined ? { snapshot: rd.snapshot } : {}),
      },
      rd.mustSync,
      inlineSync,
    );
    saving.catch(() => undefined); // awaited below; this only keeps a failed sync from counting as unhandled meanwhile
    // The previous Ready's entries are on disk: they are applied while this Ready's fdatasync runs.
    await this.#applyPending();
    await saving;
    if (rd.mustSync) host.metrics.walFsync.observe((performance.now() - syncStart) / 1000);
    if (!leaderSendsFirst) this.#send(rd.messages);
    if (rd.snapshot !== undefined) await host.installSnapshot(rd.snapshot);
    if (rd.committedEntries.length === 0) return;
    if (rd.committedEntries.some((e) => e.type === EntryType.ConfChange)) await host.apply(rd.committedEntries);
    else this.#pendingApply = rd.committedEntries;
  }

  async #applyPending(): Promise<void> {
    const entries = this.#pendingApply;
    if (entries === undefined) return;
    this.#pendingApply = undefined;
    await this.#host.apply(entries);
  }

  /**
   * A follower's forwarded proposals and read requests leave at once, even while a Ready is being persisted:
   * held for the Ready (and its fdatasync) they would reach the leader a batch or two later.
   */
  #sendForwards(): void {
    const t = this.#host.transport;
    if (t === undefined || this.#host.stopped) return;
    const forwards = this.raw.takeForwards();
    if (forwards.length > 0) t.send(forwards);
  }

  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const t = this.#host.transport;
    if (t === undefined) throw new Error(`no peers: message ${messages[0]?.type} to ${messages[0]?.to.toString(16)}`);
    const plain: Message[] = [];
    for (const m of messages) {
      if (m.type === MessageType.App) {
        this.#host.metrics.appendsSent++;
        this.#host.metrics.followers.sent(m.to, performance.now());
      }
      if (m.type === MessageType.Snap) t.sendSnapshot(m, () => this.#host.snapshotBody());
      else plain.push(m);
    }
    t.send(plain);
  }

  /**
   * A leader that stops on purpose hands leadership to the most caught-up voter first (etcd 3.4 does the same
   * on SIGTERM), so the cluster does not wait out an election timeout. Bounded by one election timeout.
   */
  async transferLeadershipAway(): Promise<void> {
    const host = this.#host;
    const transport = host.transport;
    if (!this.isLeader || transport === undefined) return;
    const progress = this.raw.status().progress;
    const voters = this.raw.raft.confState().voters.filter((v) => v !== host.config.memberId);
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const v of voters) {
      const match = progress?.get(v)?.match ?? -1;
      const active = transport.activeSince(v) !== undefined;
      if (active && match > bestMatch) [best, bestMatch] = [v, match];
    }
    if (best === undefined) return;
    host.config.log?.("N", "etcdserver", `leadership transfer to ${best.toString(16)} before stopping`);
    this.raw.transferLeader(best);
    this.scheduleReady();
    const deadline = performance.now() + (host.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS);
    while (this.leader !== best && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, host.heartbeatMs));
  }

  /**
   * Maintenance.MoveLeader: only the leader moves leadership, to a voting member; resolves once `target` leads
   * (TIMEOUT after `timeoutMs`).
   */
  async moveLeader(target: NodeId, timeoutMs: number): Promise<void> {
    if (!this.isLeader) throw new EtcdError("NOT_LEADER");
    if (!this.raw.raft.confState().voters.includes(target)) throw new EtcdError("BAD_LEADER_TRANSFEREE");
    if (target === this.#host.config.memberId) return;
    this.raw.transferLeader(target);
    this.scheduleReady();
    const deadline = performance.now() + timeoutMs;
    while (this.leader !== target) {
      if (performance.now() > deadline) throw new EtcdError("TIMEOUT", "leader transfer");
      await new Promise((r) => setTimeout(r, this.#host.heartbeatMs));
    }
  }
}

/**
 * The index every other member's log is known to reach: all of this log when no other member exists, the
 * lowest match among the others when leading, undefined when following (a follower does not know).
 */
export function othersHave(r: Pick<RawNode["raft"], "id" | "prs" | "state">): number | undefined {
  if (r.prs.size === 1 && r.prs.has(r.id)) return Infinity;
  if (r.state !== StateType.Leader) return undefined;
  let low = Infinity;
  for (const [id, pr] of r.prs) if (id !== r.id) low = Math.min(low, pr.match);
  return low;
}
