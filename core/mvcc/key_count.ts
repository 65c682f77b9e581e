// How many keys of [from, to) were live at revision R, answered from memory (etcd answers Range's `count` from
// its in-memory treeIndex). Without it, every page of a paginated LIST read every remaining key of the range
// from LMDB only to count them: a LIST of 50,000 keys in pages of 500 read 2.5 million entries.
//
// Two parts: the live keys sorted (by their latin1 key ids, which sort as the key bytes do) as of revision
// `sortedRev`, and the log of every creation (+1) and deletion (−1) of a key since `horizon`, in revision order.
// A key's creations and deletions alternate, so for a key the sum of its deltas in (R, S] is live(S) − live(R):
//   count(R) = count at sortedRev − Σ deltas in (R, sortedRev]   (R ≤ sortedRev)
//   count(R) = count at sortedRev + Σ deltas in (sortedRev, R]   (R > sortedRev)
// The sorted array is rebuilt from the live map when the log since it grew past a fraction of the key count,
// so its O(n log n) rebuild is paid once per that many creations and deletions. The log keeps at most
// MAX_LOG entries; a revision older than the oldest kept (or than the last reset) gets `undefined` and the
// caller counts by scanning.

/** Log entries kept at most by default; older revisions fall back to a scan. */
const MAX_LOG = 1 << 17;
/** The sorted array is rebuilt once the log past it holds this many entries or live/REBUILD_FRACTION. */
const REBUILD_MIN = 1024;
const REBUILD_FRACTION = 4;

export class KeyCount {
  #sorted: string[] | undefined;
  #sortedRev = 0;
  /**
   * The log: every change with rev > #horizon, in ascending rev, as parallel arrays (no object per change: one
   * request may delete millions of keys) of its revision, key id and delta.
   */
  #horizon = 0;
  #revs: number[] = [];
  #ids: string[] = [];
  #deltas: (1 | -1)[] = [];
  /** Index in the log of the first change after #sortedRev. */
  #logAtSorted = 0;
  readonly #maxLog: number;

  constructor(maxLog = MAX_LOG) {
    this.#maxLog = maxLog;
  }

  /** Forgets everything: the live keys were reloaded at revision `rev`. */
  reset(rev: number): void {
    this.#sorted = undefined;
    this.#sortedRev = rev;
    this.#horizon = rev;
    this.#revs = [];
    this.#ids = [];
    this.#deltas = [];
    this.#logAtSorted = 0;
  }

  /** Key `id` became live (+1) or was deleted (−1) at revision `rev` (calls come in revision order). */
  record(rev: number, id: string, delta: 1 | -1): void {
    this.#revs.push(rev);
    this.#ids.push(id);
    this.#deltas.push(delta);
    if (this.#revs.length > this.#maxLog) this.#trim();
  }

  #trim(): void {
    const drop = this.#revs.length - Math.floor(this.#maxLog / 2);
    this.#horizon = this.#revs[drop - 1]!;
    this.#revs = this.#revs.slice(drop);
    this.#ids = this.#ids.slice(drop);
    this.#deltas = this.#deltas.slice(drop);
    // Changes after the sorted array that are dropped could no longer be added to it: it is rebuilt instead.
    if (drop > this.#logAtSorted) this.#sorted = undefined;
    this.#logAtSorted = Math.max(0, this.#logAtSorted - drop);
  }

  /**
   * Live keys of [from, to) at revision `rev` (to undefined: no upper bound), given the live map as of
   * `currentRev`; undefined when `rev` is older than what the log covers.
   */
  count(
    live: ReadonlyMap<string, unknown>,
    currentRev: number,
    rev: number,
    from: string,
    to: string | undefined,
  ): number | undefined {
    if (rev < this.#horizon || rev > currentRev) return undefined;
    const sorted = this.#fresh(live, currentRev);
    let n = lowerBound(sorted, to) - lowerBound(sorted, from);
    const inRange = (id: string): boolean => id >= from && (to === undefined || id < to);
    const [revs, ids, deltas] = [this.#revs, this.#ids, this.#deltas];
    if (rev < this.#sortedRev) {
      for (let i = this.#logAtSorted - 1; i >= 0 && revs[i]! > rev; i--) if (inRange(ids[i]!)) n -= deltas[i]!;
    } else {
      for (let i = this.#logAtSorted; i < revs.length && revs[i]! <= rev; i++) if (inRange(ids[i]!)) n += deltas[i]!;
    }
    return n;
  }

  #fresh(live: ReadonlyMap<string, unknown>, currentRev: number): string[] {
    const since = this.#revs.length - this.#logAtSorted;
    if (this.#sorted === undefined || since > Math.max(REBUILD_MIN, live.size / REBUILD_FRACTION)) {
      this.#sorted = [...live.keys()].sort();
      this.#sortedRev = currentRev;
      this.#logAtSorted = this.#revs.length;
    }
    return this.#sorted;
  }
}

/** First index whose id is ≥ `id` (undefined: the end). */
function lowerBound(sorted: readonly string[], id: string | undefined): number {
  if (id === undefined) return sorted.length;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
