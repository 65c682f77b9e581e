// The lessor: every lease of the member, the keys attached to each, and (on the leader only) when each one
// expires and when its remaining TTL is due to be checkpointed.
//
// Two sides, as etcd 3.4's lessor:
// - Apply side (grant, revoke, checkpoint, attach, detach): called by the server in Raft order while it applies
//   committed entries, inside that batch's backend write transaction, so every member holds the same leases.
// - Leader side (promote, demote, renew, expired, dueCheckpoints): only the primary (the Raft leader) tracks
//   expiry times. Followers' leases never expire locally; a new leader restarts every clock at
//   now + extend + remaining (the last checkpointed remaining TTL, else the full TTL).
//
// Nothing here waits: every method is synchronous over in-memory maps (has/timeToLive/leases never queue
// behind a grant or revoke in progress, the seed's "lookups no longer block"). Expiry and checkpoint times
// live in lazy min-heaps (lease_queue.ts): finding what expired is O(k log n), never a scan of all leases.
// Only promote (a leader change), demote and leases() touch every lease.
import { performance } from "node:perf_hooks";

import type { ReadView, WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import {
  LEASE_CHECKPOINT_BATCH,
  LEASE_CHECKPOINT_INTERVAL_MS,
  LEASE_REVOKE_RATE_PER_SECOND,
  MAX_LEASE_TTL_SECONDS,
} from "../limits.js";
import { decodeLeaseKey, decodeLeaseValue, encodeLeaseKey, encodeLeaseValue } from "./lease_codec.js";
import { LeaseQueue, type QueueEntry } from "./lease_queue.js";

/** LMDB bucket the server registers in its backend. */
export const LEASE_BUCKET = "lease";

/**
 * How long a lease handed out by expired() is not handed out again: its revoke is in flight through Raft
 * (etcd's defaultExpiredleaseRetryInterval). If the revoke is lost (leader change), it comes back after this.
 */
export const LEASE_EXPIRED_RETRY_INTERVAL_MS = 3000;

/** Upper bounds (seconds) of the granted-TTL histogram, etcd's etcd_debugging_lease_ttl_total buckets (1, 2, 4 … 8192). */
export const LEASE_TTL_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 14 }, (_, i) => 2 ** i);

export interface LessorOptions {
  /** limits.ts minLeaseTtlSeconds(election, heartbeat): a smaller TTL is raised to it. */
  readonly minTtlSeconds: number;
  /** Default LEASE_CHECKPOINT_INTERVAL_MS. */
  readonly checkpointIntervalMs?: number;
  /** Default LEASE_CHECKPOINT_BATCH (the server passes it as dueCheckpoints' max). */
  readonly checkpointBatch?: number;
  /** --experimental-enable-lease-checkpoint; default true. */
  readonly checkpointEnabled?: boolean;
  /** Monotonic ms; default performance.now. Tests inject a virtual clock. */
  readonly now?: () => number;
  /** Default LEASE_EXPIRED_RETRY_INTERVAL_MS. */
  readonly expiredRetryMs?: number;
  /** Revokes per second the server proposes (default LEASE_REVOKE_RATE_PER_SECOND); promote spreads pile-ups below it. */
  readonly revokeRatePerSecond?: number;
}

/** TimeToLive's answer. */
export interface LeaseStatus {
  readonly id: bigint;
  /** Seconds as granted (after the minimum-TTL raise). */
  readonly grantedTtl: number;
  /** Remaining whole seconds (truncated, as etcd's int64(Remaining().Seconds())), -1 when expired. */
  readonly ttl: number;
  /** Attached keys (only when asked). */
  readonly keys: readonly Uint8Array[];
}

interface Lease {
  readonly id: bigint;
  /** Granted TTL in seconds, >= minTtlSeconds and <= MAX_LEASE_TTL_SECONDS. */
  readonly ttlSeconds: number;
  /** Last checkpointed remaining TTL in seconds; 0 = never checkpointed (or cleared by a renew). */
  remainingTtlSeconds: number;
  /** Monotonic expiry on the primary; meaningless (stale) while not primary. */
  expiryMs: number;
  /** seq of this lease's one live entry in the expiry queue (-1: none); its other entries are stale. */
  expirySeq: number;
  /** seq of this lease's live entry in the checkpoint queue (-1: none). */
  checkpointSeq: number;
  /** Attached keys as latin1 strings (one char per byte: a lossless, compact map key). */
  readonly keys: Set<string>;
}

/** Queue slack before stale entries are compacted away: they may outnumber live ones by this much. */
const QUEUE_COMPACT_SLACK = 1024;

export class Lessor {
  /** Metric counters for etcd_debugging_lease_{granted,revoked,renewed}_total. */
  granted = 0;
  revoked = 0;
  renewed = 0;
  /** Checkpoints applied (each LeaseCheckpoint of a LeaseCheckpoint entry). */
  checkpointed = 0;
  /** Granted TTLs per LEASE_TTL_BUCKETS_SECONDS bucket (last slot: above the largest bound); etcd_debugging_lease_ttl_total. */
  readonly ttlHistogram: number[] = new Array<number>(LEASE_TTL_BUCKETS_SECONDS.length + 1).fill(0);
  ttlSecondsSum = 0;

  readonly minTtlSeconds: number;
  readonly checkpointIntervalMs: number;
  readonly checkpointBatch: number;
  readonly checkpointEnabled: boolean;
  private readonly now: () => number;
  private readonly expiredRetryMs: number;
  private readonly revokeRatePerSecond: number;

  private readonly byId = new Map<bigint, Lease>();
  private readonly byKey = new Map<string, Lease>();
  private readonly expiryQueue = new LeaseQueue();
  private readonly checkpointQueue = new LeaseQueue();
  /** Renewed leases whose stored checkpoint must be cleared (remaining 0), so a successor restores the full TTL. */
  private readonly pendingClears = new Set<bigint>();
  private primary = false;
  /** Next queue entry sequence number (2^53 pushes before it could repeat). */
  private seq = 0;

  constructor(opts: LessorOptions) {
    if (!Number.isSafeInteger(opts.minTtlSeconds) || opts.minTtlSeconds < 1) {
      throw new Error(`lessor: minTtlSeconds must be a positive integer, got ${opts.minTtlSeconds}`);
    }
    this.minTtlSeconds = opts.minTtlSeconds;
    this.checkpointIntervalMs = opts.checkpointIntervalMs ?? LEASE_CHECKPOINT_INTERVAL_MS;
    this.checkpointBatch = opts.checkpointBatch ?? LEASE_CHECKPOINT_BATCH;
    this.checkpointEnabled = opts.checkpointEnabled ?? true;
    this.now = opts.now ?? (() => performance.now());
    this.expiredRetryMs = opts.expiredRetryMs ?? LEASE_EXPIRED_RETRY_INTERVAL_MS;
    this.revokeRatePerSecond = opts.revokeRatePerSecond ?? LEASE_REVOKE_RATE_PER_SECOND;
    if (!(this.checkpointIntervalMs > 0))
      throw new Error(`lessor: checkpointIntervalMs must be > 0, got ${this.checkpointIntervalMs}`);
  }

  /** Restores every lease from LEASE_BUCKET (not primary: the server promotes it when it leads). Keys are re-attached by the server as it restores mvcc. */
  static load(view: ReadView, opts: LessorOptions): Lessor {
    const lessor = new Lessor(opts);
    for (const { key, value } of view.range(LEASE_BUCKET, {})) {
      const id = decodeLeaseKey(key);
      const rec = decodeLeaseValue(id, value);
      lessor.byId.set(id, newLease(id, rec.ttlSeconds, rec.remainingTtlSeconds));
    }
    return lessor;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Entries (live and stale) in the expiry queue: bounded by 2 × leases + slack, whatever the renew rate. */
  get expiryQueueLength(): number {
    return this.expiryQueue.length;
  }

  // ---- Apply side (Raft order, inside the batch's write transaction) ----

  /** Grants a lease; the TTL is raised to the minimum. EtcdError LEASE_EXIST / LEASE_TTL_TOO_LARGE. */
  grant(tx: WriteView, id: bigint, ttlSeconds: number): { id: bigint; ttl: number } {
    if (id === 0n) throw new Error("lessor: grant of lease id 0 (the server picks ids for 0)");
    if (!Number.isFinite(ttlSeconds) || ttlSeconds > MAX_LEASE_TTL_SECONDS) {
      throw new EtcdError("LEASE_TTL_TOO_LARGE", `ttl ${ttlSeconds} > ${MAX_LEASE_TTL_SECONDS}`);
    }
    if (this.byId.has(id)) throw new EtcdError("LEASE_EXIST", `lease ${id.toString(16)}`);
    const ttl = Math.max(Math.trunc(ttlSeconds), this.minTtlSeconds);
    const lease = newLease(id, ttl, 0);
    tx.put(LEASE_BUCKET, encodeLeaseKey(id), encodeLeaseValue({ ttlSeconds: ttl, remainingTtlSeconds: 0 }));
    this.byId.set(id, lease);
    if (this.primary) {
      this.setExpiry(lease, this.now() + ttl * 1000);
      this.scheduleCheckpoint(lease);
    }
    this.granted++;
    this.observeTtl(ttl);
    return { id, ttl };
  }

  /** Revokes a lease and forgets its record; returns the attached keys, which the server deletes in `tx`. */
  revoke(tx: WriteView, id: bigint): readonly Uint8Array[] {
    const { keys, forget } = this.revokeRecord(tx, id);
    forget();
    return keys;
  }

  /**
   * The two halves of a revoke: deletes the lease's record in `tx` and returns its keys now; forget() drops it from
   * memory, once the whole revoke (its keys' deletion included) has applied.
   */
  revokeRecord(tx: WriteView, id: bigint): { keys: readonly Uint8Array[]; forget: () => void } {
    const lease = this.byId.get(id);
    if (lease === undefined) throw new EtcdError("LEASE_NOT_FOUND", `revoke ${id.toString(16)}`);
    tx.del(LEASE_BUCKET, encodeLeaseKey(id));
    // In key order, as etcd sorts them: the set's order is the order keys were attached on this member (another
    // after a restart), and the deletes' sub-revisions must be the same on every member.
    const keys = [...lease.keys].sort().map(fromKeyString);
    const forget = (): void => {
      for (const k of lease.keys) if (this.byKey.get(k) === lease) this.byKey.delete(k);
      this.byId.delete(id);
      this.pendingClears.delete(id);
      this.revoked++;
    };
    return { keys, forget };
  }

  /**
   * Records a lease's remaining TTL (a LeaseCheckpoint entry); unknown ids are ignored, as etcd does. On the
   * primary the expiry clock is left alone: it is the clock the checkpoint was taken from (etcd refreshes it,
   * which would undo a renew that raced the checkpoint, or the extension of a promote).
   */
  checkpoint(tx: WriteView, id: bigint, remainingTtlSeconds: number): void {
    const lease = this.byId.get(id);
    if (lease === undefined) return;
    const remaining = Math.max(0, Math.trunc(remainingTtlSeconds));
    lease.remainingTtlSeconds = remaining;
    tx.put(
      LEASE_BUCKET,
      encodeLeaseKey(id),
      encodeLeaseValue({ ttlSeconds: lease.ttlSeconds, remainingTtlSeconds: remaining }),
    );
    this.checkpointed++;
    if (this.primary) this.scheduleCheckpoint(lease);
  }

  has(id: bigint): boolean {
    return this.byId.has(id);
  }

  /** Attaches a key (a put with this lease committed); a key attached to another lease moves. EtcdError LEASE_NOT_FOUND. */
  attach(id: bigint, key: Uint8Array): void {
    const lease = this.byId.get(id);
    if (lease === undefined) throw new EtcdError("LEASE_NOT_FOUND", `attach to ${id.toString(16)}`);
    const k = toKeyString(key);
    const old = this.byKey.get(k);
    if (old === lease) return;
    old?.keys.delete(k);
    lease.keys.add(k);
    this.byKey.set(k, lease);
  }

  /** Detaches a key (deleted, or re-put with lease 0); a key without a lease is a no-op. */
  detach(key: Uint8Array): void {
    const k = toKeyString(key);
    const old = this.byKey.get(k);
    if (old === undefined) return;
    old.keys.delete(k);
    this.byKey.delete(k);
  }

  leaseOfKey(key: Uint8Array): bigint {
    return this.byKey.get(toKeyString(key))?.id ?? 0n;
  }

  // ---- Leader side ----

  /**
   * Became leader: every lease expires at now + extendMs + remaining (checkpointed remaining TTL, else the full
   * TTL). With at least revokeRatePerSecond leases, pile-ups are spread so that no second holds more than 3/4 of
   * the revoke rate (as etcd 3.4), leaving room for leases that expire on their own.
   */
  promote(extendMs: number): void {
    if (!(extendMs >= 0)) throw new Error(`lessor: promote extend ${extendMs} ms < 0`);
    this.primary = true;
    const now = this.now();
    const leases = [...this.byId.values()];
    for (const l of leases) l.expiryMs = now + extendMs + baseTtlSeconds(l) * 1000;
    if (leases.length >= this.revokeRatePerSecond)
      spreadExpiries(leases, Math.floor((3 * this.revokeRatePerSecond) / 4));
    this.expiryQueue.rebuild(
      leases.map((l) => {
        l.expirySeq = this.seq++;
        return { atMs: l.expiryMs, id: l.id, seq: l.expirySeq };
      }),
    );
    this.checkpointQueue.clear();
    for (const l of leases) this.scheduleCheckpoint(l);
  }

  /** Lost leadership: nothing expires here any more (a later promote restarts every clock). */
  demote(): void {
    this.primary = false;
    this.expiryQueue.clear();
    this.checkpointQueue.clear();
    this.pendingClears.clear();
  }

  /** Keepalive: back to the full TTL; returns the granted TTL. EtcdError NOT_LEADER / LEASE_NOT_FOUND (also when expired). */
  renew(id: bigint): number {
    if (!this.primary) throw new EtcdError("NOT_LEADER", `renew ${id.toString(16)} on a non-primary lessor`);
    const lease = this.byId.get(id);
    if (lease === undefined) throw new EtcdError("LEASE_NOT_FOUND", `renew ${id.toString(16)}`);
    const now = this.now();
    // An expired lease's revoke is on its way through Raft (etcd waits for it, then answers not found).
    if (lease.expiryMs <= now) throw new EtcdError("LEASE_NOT_FOUND", `renew ${id.toString(16)}: expired`);
    this.setExpiry(lease, now + lease.ttlSeconds * 1000);
    if (lease.remainingTtlSeconds > 0) this.pendingClears.add(id);
    this.scheduleCheckpoint(lease);
    this.renewed++;
    return lease.ttlSeconds;
  }

  timeToLive(id: bigint, withKeys: boolean): LeaseStatus | undefined {
    const lease = this.byId.get(id);
    if (lease === undefined) return undefined;
    const remainingMs = this.primary ? lease.expiryMs - this.now() : baseTtlSeconds(lease) * 1000;
    return {
      id,
      grantedTtl: lease.ttlSeconds,
      ttl: remainingMs <= 0 ? -1 : Math.floor(remainingMs / 1000),
      keys: withKeys ? [...lease.keys].map(fromKeyString) : [],
    };
  }

  leases(): readonly bigint[] {
    return [...this.byId.keys()];
  }

  /**
   * Up to `max` expired leases for the server to revoke through Raft. A lease handed out is not handed out
   * again for LEASE_EXPIRED_RETRY_INTERVAL_MS (its revoke is in flight). Empty when not primary.
   */
  expired(max: number): readonly bigint[] {
    if (!this.primary) return [];
    const now = this.now();
    const out: bigint[] = [];
    while (out.length < max) {
      const top = this.expiryQueue.peek();
      if (top === undefined || top.atMs > now) break;
      this.expiryQueue.pop();
      const lease = this.byId.get(top.id);
      if (lease === undefined || lease.expirySeq !== top.seq) continue; // stale: revoked or renewed
      assert(
        lease.expiryMs <= now,
        `lease ${top.id.toString(16)} live entry at ${top.atMs} but expiry ${lease.expiryMs} > now ${now}`,
      );
      out.push(lease.id);
      this.pushExpiryEntry(lease, now + this.expiredRetryMs);
    }
    return out;
  }

  /**
   * Checkpoints to propose now, at most `max`: first clears of renewed leases (remainingTtl 0), then leases
   * whose checkpoint interval passed and whose remaining TTL changed. Empty when not primary, and (clears
   * aside, which exist only where checkpoints were taken) when checkpoints are disabled.
   */
  dueCheckpoints(max: number): readonly { id: bigint; remainingTtl: number }[] {
    if (!this.primary) return [];
    const out: { id: bigint; remainingTtl: number }[] = [];
    for (const id of this.pendingClears) {
      if (out.length >= max) return out;
      this.pendingClears.delete(id);
      if ((this.byId.get(id)?.remainingTtlSeconds ?? 0) > 0) out.push({ id, remainingTtl: 0 });
    }
    if (!this.checkpointEnabled) return out;
    const now = this.now();
    while (out.length < max) {
      const top = this.checkpointQueue.peek();
      if (top === undefined || top.atMs > now) break;
      this.checkpointQueue.pop();
      const lease = this.byId.get(top.id);
      if (lease === undefined || lease.checkpointSeq !== top.seq) continue;
      lease.checkpointSeq = -1;
      const remainingMs = lease.expiryMs - now;
      if (remainingMs <= 0) continue; // expiring: its revoke, not a checkpoint, is next
      const remaining = Math.ceil(remainingMs / 1000);
      // Due again one interval later, so a lost proposal is retried; applying it reschedules anyway.
      this.pushCheckpointEntry(lease, now + this.checkpointIntervalMs);
      if (remaining !== lease.remainingTtlSeconds) out.push({ id: lease.id, remainingTtl: remaining });
    }
    return out;
  }

  // ---- internals ----

  private setExpiry(lease: Lease, expiryMs: number): void {
    lease.expiryMs = expiryMs;
    this.pushExpiryEntry(lease, expiryMs);
  }

  private pushExpiryEntry(lease: Lease, atMs: number): void {
    lease.expirySeq = this.seq++;
    this.expiryQueue.push({ atMs, id: lease.id, seq: lease.expirySeq });
    if (this.expiryQueue.length > 2 * this.byId.size + QUEUE_COMPACT_SLACK) {
      this.expiryQueue.compact((e) => this.byId.get(e.id)?.expirySeq === e.seq);
    }
  }

  /** Etcd's rule: only a lease with more than one interval left is worth checkpointing. */
  private scheduleCheckpoint(lease: Lease): void {
    lease.checkpointSeq = -1;
    if (!this.checkpointEnabled || !this.primary) return;
    if (lease.expiryMs - this.now() <= this.checkpointIntervalMs) return;
    this.pushCheckpointEntry(lease, this.now() + this.checkpointIntervalMs);
  }

  private pushCheckpointEntry(lease: Lease, atMs: number): void {
    lease.checkpointSeq = this.seq++;
    this.checkpointQueue.push({ atMs, id: lease.id, seq: lease.checkpointSeq });
    if (this.checkpointQueue.length > 2 * this.byId.size + QUEUE_COMPACT_SLACK) {
      this.checkpointQueue.compact((e: QueueEntry) => this.byId.get(e.id)?.checkpointSeq === e.seq);
    }
  }

  private observeTtl(ttl: number): void {
    const bucket = LEASE_TTL_BUCKETS_SECONDS.findIndex((le) => ttl <= le);
    const slot = bucket < 0 ? LEASE_TTL_BUCKETS_SECONDS.length : bucket;
    this.ttlHistogram[slot] = (this.ttlHistogram[slot] ?? 0) + 1;
    this.ttlSecondsSum += ttl;
  }
}

function newLease(id: bigint, ttlSeconds: number, remainingTtlSeconds: number): Lease {
  return {
    id,
    ttlSeconds,
    remainingTtlSeconds,
    expiryMs: Number.POSITIVE_INFINITY,
    expirySeq: -1,
    checkpointSeq: -1,
    keys: new Set(),
  };
}

/** The TTL a lease's clock restarts from: the checkpointed remaining TTL when there is one. */
function baseTtlSeconds(lease: Lease): number {
  return lease.remainingTtlSeconds > 0 ? lease.remainingTtlSeconds : lease.ttlSeconds;
}

/**
 * Pushes expiries later so that each one-second window (from the earliest expiry on) holds at most
 * `perSecond` leases; a lease only ever moves later. O(n log n), once per promote.
 */
function spreadExpiries(leases: Lease[], perSecond: number): void {
  assert(perSecond > 0, `spread: ${perSecond} leases per second`);
  leases.sort((a, b) => a.expiryMs - b.expiryMs);
  let windowStartMs = Number.NEGATIVE_INFINITY;
  let inWindow = 0;
  for (const l of leases) {
    if (l.expiryMs >= windowStartMs + 1000) {
      windowStartMs = l.expiryMs;
      inWindow = 0;
    } else if (inWindow >= perSecond) {
      windowStartMs += 1000;
      inWindow = 0;
    }
    l.expiryMs = Math.max(l.expiryMs, windowStartMs);
    inWindow++;
  }
}

function toKeyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

function fromKeyString(k: string): Uint8Array {
  return Buffer.from(k, "latin1");
}

function assert(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(`lessor: ${message}`);
}
