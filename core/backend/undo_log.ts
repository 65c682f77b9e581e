// Per-entry atomicity inside a batch transaction. A batch applies many Raft entries in one write transaction; an
// entry that fails half-way must leave none of its writes behind, or the outcome would depend on which entries
// shared its batch. UndoLog is a WriteView over the batch's transaction that remembers, for every put and delete,
// what the key held before, and puts it back (newest first) on rollback(). One extra get per write is far cheaper
// than an LMDB child transaction per entry; writes that replace many existing values (compaction) use the
// backend's child transaction (WriteView.atomic) instead, which holds nothing in memory.
import type { Entry, RangeSpan, WriteView } from "./read_view.js";

interface Undo {
  readonly bucket: string;
  readonly key: Uint8Array;
  /** What the key held before the write; undefined: it did not exist. */
  readonly before: Uint8Array | undefined;
}

export class UndoLog implements WriteView {
  readonly #tx: WriteView;
  readonly #fresh: ((bucket: string, key: Uint8Array) => boolean) | undefined;
  readonly #undo: Undo[] = [];

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
    this.#remember(bucket, key);
    this.#tx.put(bucket, key, value);
  }

  del(bucket: string, key: Uint8Array): void {
    this.#remember(bucket, key);
    this.#tx.del(bucket, key);
  }

  atomic<T>(fn: (tx: WriteView) => T): T {
    if (this.#tx.atomic === undefined) throw new Error("backend: this write view has no child transactions");
    return this.#tx.atomic(fn);
  }

  /** Whether anything was written through this log. */
  get empty(): boolean {
    return this.#undo.length === 0;
  }

  /** Puts back what every write through this log replaced, newest first. */
  rollback(): void {
    for (let i = this.#undo.length - 1; i >= 0; i--) {
      const u = this.#undo[i] as Undo;
      if (u.before === undefined) this.#tx.del(u.bucket, u.key);
      else this.#tx.put(u.bucket, u.key, u.before);
    }
    this.#undo.length = 0;
  }

  #remember(bucket: string, key: Uint8Array): void {
    const before = this.#fresh?.(bucket, key) === true ? undefined : this.#tx.get(bucket, key);
    // The write view may reuse the buffers it hands out; keep our own copies of what must be restored.
    this.#undo.push({
      bucket,
      key: Uint8Array.from(key),
      before: before === undefined ? undefined : Uint8Array.from(before),
    });
  }
}
