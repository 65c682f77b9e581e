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

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
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

/**
 * The interval a request touches. A request range whose end is not above its key selects no key; it is
 * checked as its key alone (our choice: etcd's interval tree answers such ranges inconsistently, and
 * they read or delete nothing).
 */
export function requestInterval(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyInterval {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { start: key, end: pointEnd(key) };
  if (isFromKey(rangeEnd)) return { start: key, end: undefined };
  if (compareBytes(rangeEnd, key) <= 0) return { start: key, end: pointEnd(key) };
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

  /** Whether the union covers every key of `ivl`. O(log n). */
  covers(ivl: KeyInterval): boolean {
    // The last merged interval starting at or before ivl.start is the only one that can hold ivl.start.
    let lo = 0;
    let hi = this.merged.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.merged[mid] as KeyInterval;
      if (compareBytes(m.start, ivl.start) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return false;
    const m = this.merged[found] as KeyInterval;
    if (m.end === undefined) return true;
    if (ivl.end === undefined) return false;
    return compareBytes(m.end, ivl.end) >= 0; // ivl.end > ivl.start, so m also holds ivl.start
  }
}
