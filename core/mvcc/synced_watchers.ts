// The synced watchers, indexed the way a commit looks them up: a single-key watcher by its key, so a commit
// visits only the watchers of the keys it changed; range watchers are checked against every commit.
export interface IndexedWatcher {
  readonly opts: { readonly key: Uint8Array; readonly rangeEnd?: Uint8Array | undefined };
}

/** A byte string as a Map key: latin1 maps each byte to one code unit, so distinct keys stay distinct. */
function keyId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

const isRange = (w: IndexedWatcher): boolean => w.opts.rangeEnd !== undefined && w.opts.rangeEnd.length > 0;

export class SyncedWatchers<W extends IndexedWatcher> {
  private readonly byKey = new Map<string, Set<W>>();
  private readonly ranges = new Set<W>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: W): void {
    if (isRange(w)) {
      if (!this.ranges.has(w)) this.count += 1;
      this.ranges.add(w);
      return;
    }
    const id = keyId(w.opts.key);
    const set = this.byKey.get(id);
    if (set === undefined) this.byKey.set(id, new Set([w]));
    else if (!set.has(w)) set.add(w);
    else return;
    this.count += 1;
  }

  delete(w: W): void {
    if (isRange(w)) {
      if (this.ranges.delete(w)) this.count -= 1;
      return;
    }
    const id = keyId(w.opts.key);
    const set = this.byKey.get(id);
    if (set?.delete(w) !== true) return;
    this.count -= 1;
    if (set.size === 0) this.byKey.delete(id);
  }

  /** Every synced watcher. */
  *all(): Iterable<W> {
    for (const set of this.byKey.values()) yield* set;
    yield* this.ranges;
  }

  /** The watchers a commit changing `keys` may concern, each once (a watcher may leave the index meanwhile). */
  candidates(keys: readonly Uint8Array[]): Iterable<W> {
    const sources: Set<W>[] = [];
    for (const id of new Set(keys.map(keyId))) {
      const set = this.byKey.get(id);
      if (set !== undefined) sources.push(set);
    }
    if (this.ranges.size > 0) sources.push(this.ranges);
    if (sources.length === 1) return sources[0] as Set<W>;
    const union = new Set<W>();
    for (const set of sources) for (const w of set) union.add(w);
    return union;
  }
}
