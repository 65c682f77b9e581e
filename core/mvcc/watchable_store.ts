// The watchable store: watchers on a key or a range, fed from the KV store's committed changes.
//
// A watcher is synced (its next revision is past the store's, so it gets each commit's events as they
// happen) or unsynced (it must first catch up from history). Catch-up reads the key-ordered layout, where a
// key's revisions are adjacent, so each history event finds its prev_kv as the entry just before it.
// Writers never wait for watchers: delivery goes through the watcher's `send`, which returns false when the
// consumer's bounded buffer is full; the watcher then becomes unsynced at the first revision it missed and
// is caught up from history once the consumer calls resume(). A watcher whose next revision has been
// compacted gets one response carrying the compact revision and is canceled, as etcd does.
import type { ReadView } from "../backend/read_view.js";
import { decodeKeyValue } from "./kv_codec.js";
import type { Change, KvStore } from "./kv_store.js";
import {
  KEY_BUCKET,
  compareBytes,
  inKeyFilter,
  isLongLayout,
  layoutSpan,
  revisionOf,
  type LayoutSpan,
} from "./layout.js";
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
}

/** Most events read from history per catch-up pass of one watcher (bounds one turn's work). */
export const CATCH_UP_MAX_EVENTS = 1000;

interface Watcher {
  readonly id: number;
  readonly opts: WatchOptions;
  /** The next revision this watcher must receive; everything below it was delivered. */
  nextRev: number;
  synced: boolean;
}

type HistoryEvent = WatchEvent & { readonly rev: number; readonly sub: number; readonly key: Uint8Array };

export class WatchableStore {
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 1;

  constructor(readonly kv: KvStore) {
    kv.setCommitListener((changes, rev) => this.notify(changes, rev));
  }

  /** Registers a watcher and returns its id; a past start revision is caught up from history at once. */
  watch(opts: WatchOptions): number {
    const id = this.nextId++;
    const start = opts.startRevision ?? 0;
    const w: Watcher = { id, opts, nextRev: start > 0 ? start : this.kv.revision + 1, synced: false };
    w.synced = w.nextRev > this.kv.revision;
    this.watchers.set(id, w);
    if (!w.synced) this.catchUp(w);
    return id;
  }

  cancel(id: number): boolean {
    return this.watchers.delete(id);
  }

  /**
   * The store's data was replaced wholesale (a Raft snapshot from the leader): every watcher catches up from
   * the new history, from the first revision it has not seen (or learns it was compacted).
   */
  resync(): void {
    for (const w of this.watchers.values()) w.synced = false;
    this.resume();
  }

  /** The consumer drained its buffer: catch up every watcher that fell behind. */
  resume(): void {
    for (const w of [...this.watchers.values()]) if (!w.synced) this.catchUp(w);
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
    let n = 0;
    for (const w of this.watchers.values()) if (!w.synced) n += 1;
    return n;
  }

  private notify(changes: readonly Change[], rev: number): void {
    if (changes.length === 0) return;
    const keys = changes.map((c) => decodeKeyValue(c.kv).key);
    for (const w of this.watchers.values()) {
      if (!w.synced) continue;
      const events: WatchEvent[] = [];
      for (const [i, c] of changes.entries()) {
        if (c.rev < w.nextRev || !this.matches(w, keys[i] as Uint8Array)) continue;
        if (!this.wanted(w, c.type)) continue;
        events.push(this.event(w, c.type, c.kv, c.prevKv));
      }
      if (
        events.length > 0 &&
        !this.deliver(w, { watchId: w.id, revision: rev, events, compactRevision: 0, canceled: false })
      ) {
        w.synced = false; // slow consumer: replay from history, starting at the first revision it missed
        continue;
      }
      // A watch from a future revision keeps its start until the store passes it.
      w.nextRev = Math.max(w.nextRev, rev + 1);
    }
  }

  private catchUp(w: Watcher): void {
    // A defragmentation has the backend closed: stay unsynced; resume() after it catches up.
    if (this.kv.defragmenting) return;
    for (;;) {
      const current = this.kv.revision;
      if (w.nextRev < this.kv.compactRevision) {
        w.opts.send({
          watchId: w.id,
          revision: current,
          events: [],
          compactRevision: this.kv.compactRevision,
          canceled: true,
        });
        this.watchers.delete(w.id);
        return;
      }
      const batch = this.kv.backend.readNow((view) => history(view, w, current));
      const events = batch.events
        .filter((e) => this.wanted(w, e.type))
        .map((e) => this.event(w, e.type, e.kv, e.prevKv));
      if (
        events.length > 0 &&
        !this.deliver(w, { watchId: w.id, revision: current, events, compactRevision: 0, canceled: false })
      )
        return;
      w.nextRev = batch.upTo + 1;
      if (w.nextRev > current) {
        w.synced = true;
        return;
      }
    }
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

  private event(w: Watcher, type: EventType, kv: Uint8Array, prevKv: Uint8Array | undefined): WatchEvent {
    return w.opts.prevKv === true && prevKv !== undefined ? { type, kv, prevKv } : { type, kv };
  }
}

/**
 * Events of the watcher's span with revisions in [w.nextRev, current], in revision order, cut after
 * CATCH_UP_MAX_EVENTS at a whole revision. `upTo` is the last revision fully included.
 */
function history(view: ReadView, w: Watcher, current: number): { events: HistoryEvent[]; upTo: number } {
  const span = layoutSpan(w.opts.key, w.opts.rangeEnd);
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
    if (main >= w.nextRev && main <= current && !outside) {
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
