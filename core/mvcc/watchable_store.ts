// The watchable store: watchers on a key or a range, fed from the KV store's committed changes.
//
// A watcher is synced (its next revision is past the store's, so it gets each commit's events as they
// happen) or unsynced (it must first catch up from history). Catch-up reads the key-ordered layout, where a
// key's revisions are adjacent, so each history event finds its prev_kv as the entry just before it.
// Writers never wait for watchers: delivery goes through the watcher's `send`, which returns false when the
// consumer's bounded buffer is full; the watcher then becomes unsynced at the first revision it missed and
// is caught up from history once the consumer calls resume(). Watchers of one consumer form a group: a turn of
// catch-up takes a bounded number of them, stops at the first response the consumer refuses, and shares each
// history read among watchers on the same span and start, so a stream with very many watchers costs one read
// per drain rather than one per watcher. A watcher whose next revision has been
// compacted gets one response carrying the compact revision and is canceled, as etcd does.
import type { ReadView } from "../backend/read_view.js";
import { decodeKeyValue } from "./kv_codec.js";
import type { Change, KvStore } from "./kv_store.js";
import {
  KEY_BUCKET,
  compareBytes,
  inKeyFilter,
  isLongLayout,
  layoutKey,
  layoutSpan,
  revisionOf,
  type LayoutSpan,
  type Revision,
} from "./layout.js";
import { SyncedWatchers } from "./synced_watchers.js";
import { tombstoneKv } from "./write_txn.js";

export const EventType = { PUT: 0, DELETE: 1 } as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export interface WatchEvent {
  readonly type: EventType;
  /** Encoded mvccpb.KeyValue (a delete: key and mod_revision only). */
  readonly kv: Uint8Array;
  readonly prevKv?: Uint8Array;
}

export interface WatchResponse {
  readonly watchId: number;
  /** The store revision the response is current as of (etcd's header revision). */
  readonly revision: number;
  readonly events: readonly WatchEvent[];
  /** > 0: the requested revision was compacted; the watch is canceled. */
  readonly compactRevision: number;
  readonly canceled: boolean;
}

export interface WatchOptions {
  readonly key: Uint8Array;
  /** As Range: absent = the key; [0x00] = every key ≥ key; otherwise [key, rangeEnd). */
  readonly rangeEnd?: Uint8Array;
  /** First revision to deliver; 0 = the next commit. */
  readonly startRevision?: number;
  readonly prevKv?: boolean;
  readonly noPut?: boolean;
  readonly noDelete?: boolean;
  /** Delivers one response; returns false when the consumer's buffer is full (the response was not taken). */
  readonly send: (resp: WatchResponse) => boolean;
  /** Watchers with the same group share one consumer (a stream); resume(group) catches up only its watchers. */
  readonly group?: object;
}

/** Most events read from history per catch-up pass of one watcher (bounds one turn's work). */
export const CATCH_UP_MAX_EVENTS = 1000;
/** Most unsynced watchers of one consumer caught up in one turn; the rest continue on a later turn. */
export const SYNC_MAX_WATCHERS = 1000;
/** History reads kept for reuse within one sync turn (watchers on the same span share a read). */
const SYNC_READ_CACHE = 64;

interface Watcher {
  readonly id: number;
  readonly opts: WatchOptions;
  /** Watchers sharing a consumer (one stream): a refused send means the rest of the group is refused too. */
  readonly group: object;
  readonly span: LayoutSpan;
  /** The next revision this watcher must receive; everything below it was delivered. */
  nextRev: number;
  synced: boolean;
}

type HistoryEvent = WatchEvent & { readonly rev: number; readonly sub: number; readonly key: Uint8Array };
type HistoryBatch = { readonly events: HistoryEvent[]; readonly upTo: number };

export class WatchableStore {
  private readonly watchers = new Map<number, Watcher>();
  /** Watchers fed by each commit as it happens. */
  private readonly synced = new SyncedWatchers<Watcher>();
  /**
   * The last revision every synced watcher has been given (the commits past it did not concern those a
   * commit did not visit, so they need no history below it when they fall behind).
   */
  private syncedThrough: number;
  /** Watchers behind the store, by consumer group, in the order they fell behind. */
  private readonly unsynced = new Map<object, Set<Watcher>>();
  /** Groups with a sync turn already scheduled. */
  private readonly scheduled = new Set<object>();
  private nextId = 1;
  /** Registered watchers that want prev_kv: while there are none, writes do not read the values they replace. */
  private prevKvWatchers = 0;

  constructor(readonly kv: KvStore) {
    this.syncedThrough = kv.revision;
    kv.setCommitListener(
      (changes, rev) => this.notify(changes, rev),
      () => this.prevKvWatchers > 0,
    );
  }

  /** Registers a watcher and returns its id; a past start revision is caught up from history at once. */
  watch(opts: WatchOptions): number {
    const id = this.nextId++;
    const start = opts.startRevision ?? 0;
    const nextRev = start > 0 ? start : this.kv.revision + 1;
    const w: Watcher = {
      id,
      opts,
      group: opts.group ?? {},
      span: layoutSpan(opts.key, opts.rangeEnd),
      nextRev,
      synced: false,
    };
    this.watchers.set(id, w);
    if (opts.prevKv === true) this.prevKvWatchers++;
    if (nextRev > this.kv.revision) this.markSynced(w);
    else {
      this.markUnsynced(w);
      this.catchUp(w, new Map());
    }
    return id;
  }

  cancel(id: number): boolean {
    const w = this.watchers.get(id);
    if (w === undefined) return false;
    this.drop(w);
    return true;
  }

  /**
   * The store's data was replaced wholesale (a Raft snapshot from the leader): every watcher catches up from
   * the new history, from the first revision it has not seen (or learns it was compacted).
   */
  resync(): void {
    for (const w of [...this.synced.all()]) this.markUnsynced(w);
    this.syncedThrough = this.kv.revision;
    this.resume();
  }

  /**
   * The consumer of `group` drained its buffer (no group: every consumer may have): catch up its watchers
   * that fell behind, a bounded number per turn so a large group never holds the event loop.
   */
  resume(group?: object): void {
    if (group !== undefined) this.syncGroup(group);
    else for (const g of [...this.unsynced.keys()]) this.syncGroup(g);
  }

  /** etcd's progress notification: an empty response at the current revision, only for a synced watcher. */
  requestProgress(id: number): boolean {
    const w = this.watchers.get(id);
    if (w === undefined || !w.synced) return false;
    return w.opts.send({ watchId: id, revision: this.kv.revision, events: [], compactRevision: 0, canceled: false });
  }

  /** Events delivered to watchers since the store opened (etcd_debugging_mvcc_events_total). */
  eventsSent = 0;

  /** Sends a response of events, counting them when the watcher took it. */
  private deliver(w: Watcher, resp: WatchResponse): boolean {
    const taken = w.opts.send(resp);
    if (taken) this.eventsSent += resp.events.length;
    return taken;
  }

  /** Watchers registered (etcd_debugging_mvcc_watcher_total). */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Watchers not yet synced (for tests and metrics). */
  get unsyncedCount(): number {
    return this.watchers.size - this.synced.size;
  }

  private markSynced(w: Watcher): void {
    w.synced = true;
    this.synced.add(w);
    this.leaveUnsynced(w);
  }

  private markUnsynced(w: Watcher): void {
    if (w.synced) w.nextRev = Math.max(w.nextRev, this.syncedThrough + 1);
    w.synced = false;
    this.synced.delete(w);
    const set = this.unsynced.get(w.group);
    if (set !== undefined) set.add(w);
    else this.unsynced.set(w.group, new Set([w]));
  }

  private drop(w: Watcher): void {
    if (this.watchers.delete(w.id) && w.opts.prevKv === true) this.prevKvWatchers--;
    this.synced.delete(w);
    this.leaveUnsynced(w);
  }

  private leaveUnsynced(w: Watcher): void {
    const set = this.unsynced.get(w.group);
    if (set?.delete(w) !== true) return;
    if (set.size === 0) this.unsynced.delete(w.group);
  }

  /** One turn of catch-up for a group; schedules the next turn when more watchers wait than one turn takes. */
  private syncGroup(group: object): void {
    // A defragmentation has the backend closed: stay unsynced; resume() after it catches up. A store that
    // closed (the member stopping) leaves a turn scheduled before it with nothing to do.
    if (this.kv.defragmenting || !this.kv.backend.isOpen) return;
    const set = this.unsynced.get(group);
    if (set === undefined) return;
    const reads = new Map<string, HistoryBatch>();
    let done = 0;
    for (const w of set) {
      if (done++ >= SYNC_MAX_WATCHERS) {
        this.scheduleSync(group);
        return;
      }
      // A shared consumer that refused one response refuses the rest until it drains.
      if (!this.catchUp(w, reads) && w.opts.group !== undefined) return;
    }
  }

  private scheduleSync(group: object): void {
    if (this.scheduled.has(group)) return;
    this.scheduled.add(group);
    setImmediate(() => {
      this.scheduled.delete(group);
      this.syncGroup(group);
    });
  }

  private notify(changes: readonly Change[], rev: number): void {
    // Nothing to match (no watch, or every watcher still catching up from history): no key is decoded.
    if (changes.length === 0 || this.synced.size === 0) {
      this.syncedThrough = Math.max(this.syncedThrough, rev);
      return;
    }
    const keys = changes.map((c) => decodeKeyValue(c.kv).key);
    // A watcher that refuses this commit's response missed `rev` and nothing before it.
    this.syncedThrough = rev - 1;
    for (const w of this.synced.candidates(keys)) {
      if (!w.synced) continue;
      const events: WatchEvent[] = [];
      for (const [i, c] of changes.entries()) {
        if (c.rev < w.nextRev || !this.matches(w, keys[i] as Uint8Array)) continue;
        if (!this.wanted(w, c.type)) continue;
        events.push(this.event(w, c.type, c.kv, c.prevKv ?? this.unreadPrev(w, keys[i] as Uint8Array, c.prevRev)));
      }
      if (
        events.length > 0 &&
        !this.deliver(w, { watchId: w.id, revision: rev, events, compactRevision: 0, canceled: false })
      ) {
        this.markUnsynced(w); // slow consumer: replay from history, starting at the first revision it missed
        continue;
      }
      // A watch from a future revision keeps its start until the store passes it.
      w.nextRev = Math.max(w.nextRev, rev + 1);
    }
    this.syncedThrough = rev;
  }

  /**
   * Catches one watcher up from history until it is synced, canceled for compaction, or its consumer refuses
   * a response (returns false). `reads` shares history reads between watchers of the same span and start.
   */
  private catchUp(w: Watcher, reads: Map<string, HistoryBatch>): boolean {
    for (;;) {
      const current = this.kv.revision;
      if (w.nextRev < this.kv.compactRevision) {
        const resp = { watchId: w.id, revision: current, events: [], compactRevision: this.kv.compactRevision };
        // Kept until the consumer takes the cancel, so it is never lost to a full buffer.
        if (!w.opts.send({ ...resp, canceled: true })) return false;
        this.drop(w);
        return true;
      }
      const batch = this.readHistory(w, current, reads);
      const events = batch.events
        .filter((e) => this.wanted(w, e.type))
        .map((e) => this.event(w, e.type, e.kv, e.prevKv));
      if (
        events.length > 0 &&
        !this.deliver(w, { watchId: w.id, revision: current, events, compactRevision: 0, canceled: false })
      )
        return false;
      w.nextRev = batch.upTo + 1;
      if (w.nextRev > current) {
        this.markSynced(w);
        return true;
      }
    }
  }

  private readHistory(w: Watcher, current: number, reads: Map<string, HistoryBatch>): HistoryBatch {
    const o = w.opts;
    const hex = (b: Uint8Array | undefined): string => (b === undefined ? "" : Buffer.from(b).toString("hex"));
    const id = `${hex(o.key)}/${hex(o.rangeEnd)}/${w.nextRev}/${current}`;
    const cached = reads.get(id);
    if (cached !== undefined) return cached;
    const batch = this.kv.backend.readNow((view) => history(view, w.span, w.nextRev, current));
    if (reads.size >= SYNC_READ_CACHE) reads.clear();
    reads.set(id, batch);
    return batch;
  }

  private matches(w: Watcher, key: Uint8Array): boolean {
    const end = w.opts.rangeEnd;
    if (end === undefined || end.length === 0) return compareBytes(key, w.opts.key) === 0;
    if (compareBytes(key, w.opts.key) < 0) return false;
    return (end.length === 1 && end[0] === 0) || compareBytes(key, end) < 0;
  }

  private wanted(w: Watcher, type: EventType): boolean {
    return !(
      (type === EventType.PUT && w.opts.noPut === true) ||
      (type === EventType.DELETE && w.opts.noDelete === true)
    );
  }

  /**
   * The value a change replaced, for a prev_kv watcher registered after the write ran (the write did not read it
   * then): read from the backend, where the replaced revision stays until a later compaction.
   */
  private unreadPrev(w: Watcher, key: Uint8Array, prevRev: Revision | undefined): Uint8Array | undefined {
    if (w.opts.prevKv !== true || prevRev === undefined) return undefined;
    return this.kv.backend.readNow((view) => view.get(KEY_BUCKET, layoutKey(key, prevRev)));
  }

  private event(w: Watcher, type: EventType, kv: Uint8Array, prevKv: Uint8Array | undefined): WatchEvent {
    return w.opts.prevKv === true && prevKv !== undefined ? { type, kv, prevKv } : { type, kv };
  }
}

/**
 * Events of a span with revisions in [from, current], in revision order, cut after CATCH_UP_MAX_EVENTS at a
 * whole revision. `upTo` is the last revision fully included.
 */
function history(view: ReadView, span: LayoutSpan, from: number, current: number): HistoryBatch {
  const all: HistoryEvent[] = [];
  let prev: { key: Uint8Array; value: Uint8Array; prefixLen: number } | undefined;
  for (const { key, value } of view.range(
    KEY_BUCKET,
    span.end === undefined ? { start: span.start } : { start: span.start, end: span.end },
  )) {
    const prefixLen = key.length - 16;
    const sameKey =
      prev !== undefined &&
      prev.prefixLen === prefixLen &&
      compareBytes(prev.key.subarray(0, prefixLen), key.subarray(0, prefixLen)) === 0;
    const { main, sub } = revisionOf(key);
    // A span with a long bound covers whole long groups (layout.ts): their keys outside the watched range are skipped.
    const outside =
      span.keyFrom !== undefined && isLongLayout(key) && !inSpanFilter(span, value.length > 0 ? value : prev?.value);
    if (main >= from && main <= current && !outside) {
      const prevLive = sameKey && prev !== undefined && prev.value.length > 0 ? prev.value : undefined;
      if (value.length > 0)
        all.push({ type: EventType.PUT, kv: value, rev: main, sub, key, ...(prevLive ? { prevKv: prevLive } : {}) });
      else if (prevLive !== undefined) {
        all.push({
          type: EventType.DELETE,
          kv: tombstoneKv(decodeKeyValue(prevLive).key, main),
          prevKv: prevLive,
          rev: main,
          sub,
          key,
        });
      }
    }
    prev = { key, value, prefixLen };
  }
  all.sort((a, b) => a.rev - b.rev || a.sub - b.sub);
  if (all.length <= CATCH_UP_MAX_EVENTS) return { events: all, upTo: current };
  const cutRev = (all[CATCH_UP_MAX_EVENTS] as HistoryEvent).rev;
  const events = all.filter((e) => e.rev < cutRev);
  if (events.length === 0) return { events: all.filter((e) => e.rev === cutRev), upTo: cutRev };
  return { events, upTo: cutRev - 1 };
}

/** Whether the KeyValue `kv` (undefined: a tombstone with no live revision before it) has a key in the span's filter. */
function inSpanFilter(span: LayoutSpan, kv: Uint8Array | undefined): boolean {
  return kv !== undefined && kv.length > 0 && inKeyFilter(span, decodeKeyValue(kv).key);
}
