// Key-range permissions as merged half-open intervals, so a check is one binary search, not a scan of
// every permission of every role (etcd keeps a per-user interval tree for the same reason).
//
// Every key set here is a half-open interval [start, end) over byte strings, end undefined = unbounded:
// - a single key k is [k, k+"\0") — no byte string lies strictly between k and k+"\0", so the point
//   interval and [k+"\0", x) touch without a gap, and touching intervals merge;
// - a range [key, rangeEnd) is itself;
// - rangeEnd "\0" means "from key" (etcd's --from-key): [key, +∞).
// A requested range is permitted when one merged interval covers it, which is exactly "the union of the
// user's intervals covers it" because merging leaves no two intervals touching.

/** A half-open key interval; `end` undefined = unbounded. */
export interface KeyInterval {
  readonly start: Uint8Array;
  readonly end: Uint8Array | undefined;
}

/** Byte order (-1, 0, 1). A plain loop: 2-3x faster than Buffer.compare's native call for short keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function isFromKey(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** k + "\0": the exclusive end of the single-key interval of k. */
export function pointEnd(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key, 0);
  return out;
}

/**
 * The interval a granted permission covers, or undefined when it covers nothing (etcd accepts a
 * permission whose range end is not above its key; such a grant matches no key).
 */
export function permissionInterval(key: Uint8Array, rangeEnd: Uint8Array): KeyInterval | undefined {
  if (rangeEnd.length === 0) return { start: key, end: pointEnd(key) };
  if (isFromKey(rangeEnd)) return { start: key, end: undefined };
  if (compareBytes(rangeEnd, key) <= 0) return undefined;
  return { start: key, end: rangeEnd };
}

/** A union of intervals, kept sorted, disjoint and non-touching. */
export class IntervalSet {
  /** Invariant: starts strictly increase, and each end < the next start (so no two touch or overlap). */
  private readonly merged: readonly KeyInterval[];

  private constructor(merged: readonly KeyInterval[]) {
    this.merged = merged;
  }

  static of(intervals: Iterable<KeyInterval>): IntervalSet {
    const sorted = [...intervals].sort((a, b) => compareBytes(a.start, b.start));
    const out: KeyInterval[] = [];
    for (const next of sorted) {
      const last = out[out.length - 1];
      if (last === undefined) {
        out.push(next);
        continue;
      }
      if (last.end === undefined) break; // unbounded: covers every later start
      if (compareBytes(next.start, last.end) <= 0) {
        const end = next.end === undefined || compareBytes(next.end, last.end) > 0 ? next.end : last.end;
        out[out.length - 1] = { start: last.start, end };
      } else {
        out.push(next);
      }
    }
    return new IntervalSet(out);
  }

  get size(): number {
    return this.merged.length;
  }

  intervals(): readonly KeyInterval[] {
    return this.merged;
  }

  /**
   * Whether the union covers every key a request names: the single key (rangeEnd empty), [key, rangeEnd),
   * or every key from `key` on (rangeEnd "\0"). A range end at or below the key selects no key; it is
   * checked as its key alone (our choice: etcd's interval tree answers such ranges inconsistently, and they
   * read or delete nothing). O(log n) compares, no allocation.
   */
  coversRequest(key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
    // The last merged interval starting at or before `key` is the only one that can hold it.
    let lo = 0;
    let hi = this.merged.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes((this.merged[mid] as KeyInterval).start, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return false;
    const end = (this.merged[found] as KeyInterval).end;
    if (end === undefined) return true;
    const point =
      rangeEnd === undefined || rangeEnd.length === 0 || (!isFromKey(rangeEnd) && compareBytes(rangeEnd, key) <= 0);
    if (point) return compareBytes(end, key) > 0; // [s, e) holds key+"\0"'s whole point iff e > key
    if (isFromKey(rangeEnd)) return false;
    return compareBytes(end, rangeEnd) >= 0;
  }
}
