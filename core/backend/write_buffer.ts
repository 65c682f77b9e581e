// Applied writes not yet committed to LMDB. The backend commits once per interval or size cap instead of once per
// applied batch (as etcd commits its bbolt batch every 100 ms or 10,000 writes); until then the writes live here,
// per bucket, as key → value or tombstone, together with the consistent index they bring the backend to. Reads
// made while writes are buffered see them through bufferedView(): buffered entries over LMDB's committed state.
//
// A batch's writes are journalled (what the key's slot held before), so a batch or an atomic child that throws
// takes back exactly its own writes. Entries are copied in (callers reuse the buffers they hand to a write view),
// back to back into a few large arenas rather than one allocation each: buffered entries live long enough to
// leave the garbage collector's young generation, where many small buffers are costly.
// Each bucket keeps its slots in a map for point lookups and in key order for ranges; new keys are only appended
// and sorted in when a range needs them, so a stream of point writes never pays for ordering.
import type { Database } from "lmdb";

import type { Entry, RangeSpan, WriteView } from "./read_view.js";
import type { BucketOf } from "./lmdb_views.js";

/** What a slot holds: a value, a deletion (null), or nothing buffered (undefined: LMDB's state shows through). */
type Held = Uint8Array | null | undefined;

interface Slot {
  readonly key: Uint8Array;
  held: Held;
}

interface Undo {
  readonly slot: Slot;
  readonly prior: Held;
}

/** New keys below this many are inserted one by one by binary search; more are sorted and merged in one pass. */
const INSERT_ONE_BY_ONE_MAX = 16;
/** The first arena's size; each next one is at least twice the last (or as large as one entry needs). */
const FIRST_ARENA_BYTES = 256 * 1024;

/** Append-only copies of keys and values, dropped whole when the buffer is committed. */
class Arena {
  #bytes = new Uint8Array(FIRST_ARENA_BYTES);
  #used = 0;

  copy(src: Uint8Array): Uint8Array {
    if (this.#used + src.length > this.#bytes.length) {
      // Views handed out keep the old arena alive until the buffer is cleared.
      this.#bytes = new Uint8Array(Math.max(this.#bytes.length * 2, src.length));
      this.#used = 0;
    }
    const out = this.#bytes.subarray(this.#used, this.#used + src.length);
    out.set(src);
    this.#used += src.length;
    return out;
  }
}

class BucketBuffer {
  readonly #arena: Arena;
  readonly slots = new Map<string, Slot>();
  /** Every slot in key order, except the `fresh` ones not yet sorted in. */
  sorted: Slot[] = [];
  fresh: Slot[] = [];

  constructor(arena: Arena) {
    this.#arena = arena;
  }

  slotOf(key: Uint8Array): Slot | undefined {
    return this.slots.get(idOf(key));
  }

  /** The key's slot, made (empty) when the key has none. */
  slotFor(key: Uint8Array): Slot {
    const id = idOf(key);
    const found = this.slots.get(id);
    if (found !== undefined) return found;
    const slot: Slot = { key: this.#arena.copy(key), held: undefined };
    this.slots.set(id, slot);
    this.fresh.push(slot);
    return slot;
  }

  /** The buffered entries (values and deletions) inside `span`, in the span's iteration order. */
  inSpan(span: RangeSpan): Slot[] {
    this.sortFresh();
    const all = this.sorted;
    const out: Slot[] = [];
    if (span.reverse === true) {
      // Reverse spans: `start` is the inclusive upper bound, `end` the exclusive lower bound (lmdb's convention).
      let i = span.start === undefined ? all.length - 1 : firstAbove(all, span.start) - 1;
      for (; i >= 0; i--) {
        const slot = all[i] as Slot;
        if (span.end !== undefined && Buffer.compare(slot.key, span.end) <= 0) break;
        if (slot.held !== undefined) out.push(slot);
      }
      return out;
    }
    for (let i = span.start === undefined ? 0 : firstAtLeast(all, span.start); i < all.length; i++) {
      const slot = all[i] as Slot;
      if (span.end !== undefined && Buffer.compare(slot.key, span.end) >= 0) break;
      if (slot.held !== undefined) out.push(slot);
    }
    return out;
  }

  private sortFresh(): void {
    const fresh = this.fresh;
    if (fresh.length === 0) return;
    this.fresh = [];
    if (fresh.length <= INSERT_ONE_BY_ONE_MAX) {
      for (const slot of fresh) this.sorted.splice(firstAtLeast(this.sorted, slot.key), 0, slot);
      return;
    }
    fresh.sort((a, b) => Buffer.compare(a.key, b.key));
    this.sorted = mergeSorted(this.sorted, fresh);
  }
}

export class WriteBuffer {
  readonly #buckets = new Map<string, BucketBuffer>();
  #arena = new Arena();
  #journal: Undo[] = [];
  /** Writes and bytes (keys and values) taken since the last clear: what the flush caps count. */
  #writes = 0;
  #bytes = 0;
  /** The consistent index the buffered writes bring the backend to (undefined: none given since the last flush). */
  consistentIndex: number | undefined;
  /** The commit that will take the buffer, armed when a batch first leaves writes in it. */
  #timer: NodeJS.Timeout | undefined;

  /**
   * Runs a batch's `fn` over `view` (a bufferedView of this buffer). A throw takes back every write `fn` made,
   * calls `aborted` and is rethrown; otherwise the writes stay, with `consistentIndex` when given.
   */
  run<T>(view: WriteView, fn: (tx: WriteView) => T, consistentIndex: number | undefined, aborted?: () => void): T {
    const mark = this.mark();
    let out: T;
    try {
      out = fn(view);
    } catch (err) {
      this.rollbackTo(mark);
      aborted?.();
      throw err;
    }
    this.settle();
    if (consistentIndex !== undefined) this.consistentIndex = consistentIndex;
    return out;
  }

  /** Calls `commit` in `ms` unless a commit comes first (unschedule); a no-op while one is scheduled. */
  schedule(ms: number, commit: () => void): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      commit();
    }, ms).unref();
  }

  unschedule(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  get scheduled(): boolean {
    return this.#timer !== undefined;
  }

  get writes(): number {
    return this.#writes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Whether a flush has nothing to write. */
  get empty(): boolean {
    return this.#writes === 0 && this.consistentIndex === undefined;
  }

  /** A buffered value, null for a buffered deletion, undefined when the key has nothing buffered. */
  get(bucket: string, key: Uint8Array): Uint8Array | null | undefined {
    return this.#buckets.get(bucket)?.slotOf(key)?.held;
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.#set(bucket, key, this.#arena.copy(value));
    this.#bytes += key.length + value.length;
  }

  del(bucket: string, key: Uint8Array): void {
    this.#set(bucket, key, null);
    this.#bytes += key.length;
  }

  /** Where the journal stands: rollbackTo(mark) takes back every write made after this call. */
  mark(): number {
    return this.#journal.length;
  }

  rollbackTo(mark: number): void {
    this.#writes -= Math.max(0, this.#journal.length - mark);
    for (let i = this.#journal.length - 1; i >= mark; i--) {
      const undo = this.#journal[i] as Undo;
      undo.slot.held = undo.prior;
    }
    this.#journal.length = mark;
  }

  /** The batch succeeded: its writes can no longer be taken back. */
  settle(): void {
    this.#journal.length = 0;
  }

  /** Writes every buffered entry to its bucket's database, inside the caller's write transaction. */
  writeTo(db: (bucket: string) => Database<Uint8Array, Uint8Array>): void {
    for (const [name, bucket] of this.#buckets) {
      const target = db(name);
      for (const slot of bucket.slots.values()) {
        if (slot.held === null) target.remove(slot.key);
        else if (slot.held !== undefined) target.put(slot.key, slot.held);
      }
    }
  }

  /** Everything was committed: forget it (and the scheduled commit). */
  clear(): void {
    this.unschedule();
    this.#buckets.clear();
    this.#arena = new Arena();
    this.#journal.length = 0;
    this.#writes = 0;
    this.#bytes = 0;
    this.consistentIndex = undefined;
  }

  /** The buffered entries of `bucket` inside `span`, in iteration order (values and deletions). */
  inSpan(bucket: string, span: RangeSpan): readonly { readonly key: Uint8Array; readonly held: Held }[] {
    return this.#buckets.get(bucket)?.inSpan(span) ?? [];
  }

  #set(bucket: string, key: Uint8Array, held: Uint8Array | null): void {
    let b = this.#buckets.get(bucket);
    if (b === undefined) {
      b = new BucketBuffer(this.#arena);
      this.#buckets.set(bucket, b);
    }
    const slot = b.slotFor(key);
    this.#journal.push({ slot, prior: slot.held });
    slot.held = held;
    this.#writes += 1;
  }
}

/**
 * A write view over the buffer and LMDB's committed state: reads see buffered entries first, writes go to the
 * buffer, and atomic() takes back a child's writes when it throws. `committed(bucket)` is the LMDB database
 * (`committed(bucket, true)` its zero-copy handle, for spans that take views).
 */
export function bufferedView(buffer: WriteBuffer, committed: BucketOf): WriteView {
  const view: WriteView = {
    get: (bucket, key) => {
      const held = buffer.get(bucket, key);
      return held === undefined ? committed(bucket).get(key) : held === null ? undefined : asBuffer(held);
    },
    range: (bucket, span) => mergedRange(committed(bucket, span.views === true), buffer.inSpan(bucket, span), span),
    put: (bucket, key, value) => buffer.put(bucket, key, value),
    del: (bucket, key) => buffer.del(bucket, key),
    atomic: <T>(fn: (tx: WriteView) => T): T => {
      const mark = buffer.mark();
      try {
        return fn(view);
      } catch (err) {
        buffer.rollbackTo(mark);
        throw err;
      }
    },
  };
  return view;
}

/**
 * LMDB's committed entries of `span` merged with the buffered ones (already in span order): a buffered value
 * replaces the committed one, a buffered deletion hides it, and the limit counts what is yielded.
 */
function* mergedRange(
  db: Database<Uint8Array, Uint8Array>,
  buffered: readonly { readonly key: Uint8Array; readonly held: Held }[],
  span: RangeSpan,
): Generator<Entry> {
  const limit = span.limit ?? Infinity;
  if (limit <= 0) return;
  const direction = span.reverse === true ? -1 : 1;
  const it = db
    .getRange({
      ...(span.start !== undefined ? { start: span.start } : {}),
      ...(span.end !== undefined ? { end: span.end } : {}),
      reverse: span.reverse === true,
    })
    [Symbol.iterator]();
  let yielded = 0;
  let i = 0;
  try {
    let c = it.next();
    while (yielded < limit) {
      const b = buffered[i];
      if (c.done === true && b === undefined) return;
      const order = c.done === true ? 1 : b === undefined ? -1 : Buffer.compare(c.value.key, b.key) * direction;
      if (order < 0) {
        yield c.value;
        yielded++;
        c = it.next();
        continue;
      }
      if (order === 0) c = it.next();
      i++;
      if (b === undefined || b.held === null || b.held === undefined) continue;
      yield { key: asBuffer(b.key), value: asBuffer(b.held) };
      yielded++;
    }
  } finally {
    it.return?.();
  }
}

/**
 * Buffered bytes as the same type LMDB hands out (a Buffer, here a view of the arena), so what a reader gets
 * never depends on whether the batch that wrote it was committed yet.
 */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const latin1 = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** A map key for the bytes (one char per byte); no Buffer object is made on this path. */
function idOf(key: Uint8Array): string {
  return latin1.call(key, 0, key.length);
}

/** Index of the first slot whose key is ≥ `key`. */
function firstAtLeast(slots: readonly Slot[], key: Uint8Array): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare((slots[mid] as Slot).key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first slot whose key is > `key`. */
function firstAbove(slots: readonly Slot[], key: Uint8Array): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare((slots[mid] as Slot).key, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function mergeSorted(a: readonly Slot[], b: readonly Slot[]): Slot[] {
  const out = new Array<Slot>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) {
    out[k++] = Buffer.compare((a[i] as Slot).key, (b[j] as Slot).key) <= 0 ? (a[i++] as Slot) : (b[j++] as Slot);
  }
  while (i < a.length) out[k++] = a[i++] as Slot;
  while (j < b.length) out[k++] = b[j++] as Slot;
  return out;
}
