// Per-entry atomicity inside a batch transaction. A batch applies many Raft entries in one write transaction; an
// entry that fails half-way must leave none of its writes behind, or the outcome would depend on which entries
// shared its batch. UndoLog is a WriteView over the batch's transaction that remembers, for every put and delete,
// what the key held before, and puts it back (newest first) on rollback(). One extra get per write is far cheaper
// than an LMDB child transaction per entry; writes that replace many existing values (compaction) use the
// backend's child transaction (WriteView.atomic) instead, which holds nothing in memory.
//
// A write is remembered only once it has succeeded: a write that throws (a key LMDB refuses) changed nothing, and
// undoing it would repeat the refused operation and throw from rollback() too. The records live in one growable
// byte arena plus number arrays, not in an object and two copied arrays per write, so a request deleting a
// million keys leaves the garbage collector a few large buffers instead of millions of small ones. One log serves
// a whole batch: reset() starts the next entry and keeps the arena, so a put does not pay for a fresh one.
import type { Entry, RangeSpan, WriteView } from "./read_view.js";

/** `before` length of a key that did not exist before the write (taken back by deletion). */
const ABSENT = -1;
const INITIAL_ARENA_BYTES = 4096;

export class UndoLog implements WriteView {
  readonly #tx: WriteView;
  readonly #fresh: ((bucket: string, key: Uint8Array) => boolean) | undefined;
  /**
   * Record i < #records: bucket, where its bytes start in the arena, its key's length, and its before-value's (or
   * ABSENT). Slots past #records are stale and overwritten: a reset per entry only sets the count.
   */
  #records = 0;
  readonly #buckets: string[] = [];
  readonly #starts: number[] = [];
  readonly #keyLengths: number[] = [];
  readonly #beforeLengths: number[] = [];
  /** Key bytes then before-value bytes of every record, back to back; made on the first write. */
  #arena: Uint8Array | undefined;
  #used = 0;

  /**
   * `fresh(bucket, key)`: true for keys the caller knows did not exist before this log began (a new revision's
   * entry), which are then taken back by deletion without the lookup.
   */
  constructor(tx: WriteView, fresh?: (bucket: string, key: Uint8Array) => boolean) {
    this.#tx = tx;
    this.#fresh = fresh;
  }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    return this.#tx.get(bucket, key);
  }

  range(bucket: string, span: RangeSpan): Iterable<Entry> {
    return this.#tx.range(bucket, span);
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    const beforeLength = this.#stage(bucket, key);
    this.#tx.put(bucket, key, value);
    this.#commit(bucket, key.length, beforeLength);
  }

  del(bucket: string, key: Uint8Array): void {
    const beforeLength = this.#stage(bucket, key);
    this.#tx.del(bucket, key);
    this.#commit(bucket, key.length, beforeLength);
  }

  atomic<T>(fn: (tx: WriteView) => T): T {
    if (this.#tx.atomic === undefined) throw new Error("backend: this write view has no child transactions");
    return this.#tx.atomic(fn);
  }

  /** Whether anything was written through this log. */
  get empty(): boolean {
    return this.#records === 0;
  }

  /** Forgets every record (the entry they belong to stays applied): later rollbacks reach back to here only. */
  reset(): void {
    this.#records = 0;
    this.#used = 0;
  }

  /** Puts back what every write through this log replaced since it began or was reset, newest first. */
  rollback(): void {
    const arena = this.#arena;
    if (arena === undefined) return;
    for (let i = this.#records - 1; i >= 0; i--) {
      const bucket = this.#buckets[i] as string;
      const start = this.#starts[i] as number;
      const keyEnd = start + (this.#keyLengths[i] as number);
      const beforeLength = this.#beforeLengths[i] as number;
      const key = arena.subarray(start, keyEnd);
      if (beforeLength === ABSENT) this.#tx.del(bucket, key);
      else this.#tx.put(bucket, key, arena.subarray(keyEnd, keyEnd + beforeLength));
    }
    this.reset();
    // The write view was handed views of the arena: one that keeps what it is given (an overlay of uncommitted
    // writes) would see them change if later records overwrote them, so the next write starts a new arena.
    this.#arena = undefined;
  }

  /**
   * Copies the key and what it holds now into the arena past the last record, before the write replaces it (the
   * write view may reuse the buffers it hands out). Returns the before-value's length, or ABSENT.
   */
  #stage(bucket: string, key: Uint8Array): number {
    const before = this.#fresh?.(bucket, key) === true ? undefined : this.#tx.get(bucket, key);
    const beforeLength = before === undefined ? ABSENT : before.length;
    const arena = this.#reserve(key.length + Math.max(0, beforeLength));
    arena.set(key, this.#used);
    if (before !== undefined) arena.set(before, this.#used + key.length);
    return beforeLength;
  }

  /** Keeps the staged record: its write succeeded. (A write that threw leaves it to be overwritten.) */
  #commit(bucket: string, keyLength: number, beforeLength: number): void {
    const i = this.#records++;
    this.#buckets[i] = bucket;
    this.#starts[i] = this.#used;
    this.#keyLengths[i] = keyLength;
    this.#beforeLengths[i] = beforeLength;
    this.#used += keyLength + Math.max(0, beforeLength);
  }

  /** The arena, grown to hold `bytes` more past the last record. */
  #reserve(bytes: number): Uint8Array {
    const need = this.#used + bytes;
    const arena = this.#arena;
    if (arena !== undefined && need <= arena.length) return arena;
    const grown = new Uint8Array(Math.max(need, INITIAL_ARENA_BYTES, (arena?.length ?? 0) * 2));
    if (arena !== undefined) grown.set(arena.subarray(0, this.#used));
    this.#arena = grown;
    return grown;
  }
}
