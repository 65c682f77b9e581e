// A lazy min-heap of (time, lease id) entries: the expiry queue and the checkpoint queue of the lessor.
// "Lazy" means an entry is never searched for and removed: when a lease's time changes (renew, revoke), the
// owner pushes a new entry and remembers its time; the old entry is recognised as stale when it reaches the
// top and is dropped there. Push and pop are O(log n); nothing ever scans all entries on a hot path. Stale
// entries are bounded by `compact`, which the owner calls when they outnumber live ones (amortised O(1)).

export interface QueueEntry {
  /** Monotonic milliseconds at which the entry is due. */
  readonly atMs: number;
  readonly id: bigint;
  /** Unique per push: how the owner tells its lease's one live entry from stale ones (times may repeat). */
  readonly seq: number;
}

export class LeaseQueue {
  /** Binary min-heap on atMs: entries[i].atMs <= entries[2i+1].atMs and entries[2i+2].atMs. */
  private entries: QueueEntry[] = [];

  get length(): number {
    return this.entries.length;
  }

  push(entry: QueueEntry): void {
    this.entries.push(entry);
    this.siftUp(this.entries.length - 1);
  }

  /** The earliest entry, or undefined when empty. */
  peek(): QueueEntry | undefined {
    return this.entries[0];
  }

  pop(): QueueEntry | undefined {
    const top = this.entries[0];
    const last = this.entries.pop();
    if (top === undefined || last === undefined) return undefined;
    if (this.entries.length > 0) {
      this.entries[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  clear(): void {
    this.entries = [];
  }

  /** Replaces the contents with `live` in O(n) (Floyd's heap construction). */
  rebuild(live: QueueEntry[]): void {
    this.entries = live;
    for (let i = (live.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** Keeps only the entries `isLive` accepts, in O(n). */
  compact(isLive: (e: QueueEntry) => boolean): void {
    this.rebuild(this.entries.filter(isLive));
  }

  private siftUp(i: number): void {
    const e = this.entries;
    const item = e[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = e[parent]!;
      if (p.atMs <= item.atMs) break;
      e[i] = p;
      i = parent;
    }
    e[i] = item;
  }

  private siftDown(i: number): void {
    const e = this.entries;
    const n = e.length;
    const item = e[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && e[right]!.atMs < e[child]!.atMs) child = right;
      if (e[child]!.atMs >= item.atMs) break;
      e[i] = e[child]!;
      i = child;
    }
    e[i] = item;
  }
}
