// The key-ordered layout of the "key" bucket: (user key, main revision, sub revision) → KeyValue bytes.
// All revisions of one key are adjacent, so "the newest revision ≤ R" is a local scan, and a worker can answer
// Range at R from its own snapshot. A tombstone (delete) is an entry with an empty value.
//
// LMDB keys are at most LMDB_MAX_KEY_BYTES long, etcd keys up to the request size (1.5 MiB by default), so a
// key has one of two layouts, by its length n:
// - short (n ≤ SHORT_KEY_MAX_BYTES): escape(key) + 0x00 0x00 + rev, where escape doubles each 0x00 into
//   0x00 0xFF; at most 2n + 18 bytes.
// - long (n > SHORT_KEY_MAX_BYTES): escape(P) + 0x00 0x01 + SHA-256(key) + 0x01 + rev, P being the key's
//   first SHORT_KEY_MAX_BYTES bytes; at most 2·SHORT_KEY_MAX_BYTES + 51 bytes. The revisions of a long key are
//   adjacent (they share the hash); the long keys sharing P form one "long group", escape(P) + 0x00 0x01.
// rev is main and sub revision as 8-byte big-endian. The byte just before rev tells the layouts apart: 0x00
// ends every short layout (its terminator), 0x01 every long one.
//
// Ordering. Byte order of layouts is (user key, revision) order, except that inside one long group the keys
// come in hash order; readers sort each long group by user key (range_task.ts). Why, for user keys a ≠ b:
// - both short: escape keeps byte order and 0x00 0x00 sorts before both an escaped 0x00 (0x00 0xFF) and any
//   other byte, so a proper prefix sorts first: escape(a)+00 00 < escape(b)+00 00 iff a < b.
// - a short, b long with prefix P: if a and P differ within their common length, the first differing byte
//   decides both orders alike. Otherwise a is a prefix of P (no short key extends P: those are all longer than
//   SHORT_KEY_MAX_BYTES), so a < b; in the layout, a's terminator 0x00 0x00 meets P's next escaped byte (≥ 0x01,
//   or 0x00 0xFF) or, when a = P, the long marker 0x00 0x01: a's layout sorts first as well.
// - both long, different P: both prefixes are SHORT_KEY_MAX_BYTES long, so they differ at some byte, which
//   decides both orders alike. Same P: the same group, sorted by the reader.
// No short layout starts with a long group's prefix (in a short layout 0x00 is followed by 0xFF or ends it with
// 0x00), so each long group is one contiguous run of LMDB keys.
import { createHash } from "node:crypto";

export const KEY_BUCKET = "key";
export const MVCC_META_BUCKET = "mvcc_meta";
/** Layout bytes after the key part: main (8) + sub (8). */
export const REV_BYTES = 16;
/** lmdb-js's limit on key length (its 4 KiB pages). */
export const LMDB_MAX_KEY_BYTES = 1978;
/** Keys up to this length keep their escaped bytes in the layout; longer ones are "long" (see above). */
export const SHORT_KEY_MAX_BYTES = 960;
const HASH_BYTES = 32;
/** The byte before the revision: 0x00 in a short layout (terminator), LONG_TAIL in a long one. */
const LONG_TAIL = 0x01;
/** Layout bytes of a long key after escape(P): 0x00 0x01, hash, LONG_TAIL. */
const LONG_SUFFIX_BYTES = 2 + HASH_BYTES + 1;

export interface Revision {
  readonly main: number;
  readonly sub: number;
}

function escapedLength(key: Uint8Array): number {
  let n = key.length + 2;
  for (let at = key.indexOf(0); at !== -1; at = key.indexOf(0, at + 1)) n += 1;
  return n;
}

/** Writes escape(key) + 0x00 0x00 into out at 0; returns the bytes written. */
function writeEscaped(out: Uint8Array, key: Uint8Array): number {
  // Most keys hold no 0x00 byte: one native search and one copy instead of a loop over the bytes.
  if (key.indexOf(0) === -1) {
    out.set(key);
    out[key.length] = 0;
    out[key.length + 1] = 0;
    return key.length + 2;
  }
  let pos = 0;
  for (const b of key) {
    out[pos++] = b;
    if (b === 0) out[pos++] = 0xff;
  }
  out[pos++] = 0;
  out[pos++] = 0;
  return pos;
}

/** Big-endian u64 (n < 2^53) without a DataView: this runs for every key written and read. */
function writeU64(out: Uint8Array, pos: number, n: number): void {
  let hi = Math.floor(n / 2 ** 32);
  let lo = n >>> 0;
  for (let i = 3; i >= 0; i--) {
    out[pos + i] = hi & 0xff;
    hi >>>= 8;
    out[pos + 4 + i] = lo & 0xff;
    lo >>>= 8;
  }
}

export function isLongKey(key: Uint8Array): boolean {
  return key.length > SHORT_KEY_MAX_BYTES;
}

/** Whether a layout key (with its revision) belongs to a long user key. */
export function isLongLayout(layout: Uint8Array): boolean {
  return layout[layout.length - REV_BYTES - 1] === LONG_TAIL;
}

/** escape(P) + 0x00 + `mark`: the start (mark 0x01) or end (mark 0x02) of the long group of `key`. */
function longGroupBound(key: Uint8Array, mark: number, extra: number): Uint8Array {
  const p = key.subarray(0, SHORT_KEY_MAX_BYTES);
  const out = new Uint8Array(escapedLength(p) + extra);
  const at = writeEscaped(out, p);
  out[at - 1] = mark;
  return out;
}

/** The layout prefix of every revision of `key` (everything but the revision). */
export function layoutPrefix(key: Uint8Array): Uint8Array {
  if (!isLongKey(key)) {
    const out = new Uint8Array(escapedLength(key));
    writeEscaped(out, key);
    return out;
  }
  const out = longGroupBound(key, 0x01, HASH_BYTES + 1);
  const at = out.length - HASH_BYTES - 1;
  out.set(createHash("sha256").update(key).digest(), at);
  out[out.length - 1] = LONG_TAIL;
  return out;
}

export function layoutKey(key: Uint8Array, rev: Revision): Uint8Array {
  // A short key is escaped straight into the result: this runs for every key written.
  const prefix = isLongKey(key) ? layoutPrefix(key) : undefined;
  const at = prefix === undefined ? escapedLength(key) : prefix.length;
  // Every byte is written below; node's pool gives the short-lived result without a backing store of its own.
  const out = Buffer.allocUnsafe(at + REV_BYTES);
  if (prefix === undefined) writeEscaped(out, key);
  else out.set(prefix);
  writeU64(out, at, rev.main);
  writeU64(out, at + 8, rev.sub);
  return out;
}

/** The layout key just past every revision of `key` (its prefix with the last byte raised by one). */
export function layoutPrefixEnd(key: Uint8Array): Uint8Array {
  const out = layoutPrefix(key);
  out[out.length - 1] = (out[out.length - 1] as number) + 1;
  return out;
}

/** The first layout key of any user key ≥ key: for a long key, its whole long group (readers filter it). */
function lowerBound(key: Uint8Array): Uint8Array {
  return isLongKey(key) ? longGroupBound(key, 0x01, 0) : layoutPrefix(key);
}

/** The layout key past every user key < end: for a long end, past its whole long group (readers filter it). */
function upperBound(end: Uint8Array): Uint8Array {
  return isLongKey(end) ? longGroupBound(end, 0x02, 0) : layoutPrefix(end);
}

/** The user key of a short layout key (unescapes up to the 0x00 0x00 terminator); a long one's is in its value. */
export function userKeyOf(layout: Uint8Array): Uint8Array {
  if (isLongLayout(layout)) throw new Error("userKeyOf: a long key's layout holds only a hash of it");
  const end = layout.length - REV_BYTES - 2;
  const out: number[] = [];
  for (let i = 0; i < end; i++) {
    const b = layout[i] as number;
    out.push(b);
    if (b === 0) i += 1; // 0x00 0xFF stands for one 0x00 byte
  }
  return Uint8Array.from(out);
}

/** The main revision of a layout key, without allocating (revisionOf's first half; called once per write). */
export function mainRevisionOf(layout: Uint8Array): number {
  const at = layout.length - REV_BYTES;
  if (at < 2) throw new Error(`mainRevisionOf: layout key length ${layout.length} < ${REV_BYTES + 2}`);
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 4; i++) {
    hi = hi * 256 + (layout[at + i] as number);
    lo = lo * 256 + (layout[at + 4 + i] as number);
  }
  return hi * 2 ** 32 + lo;
}

export function revisionOf(layout: Uint8Array): Revision {
  if (layout.length < REV_BYTES + 2)
    throw new Error(`revisionOf: layout key length ${layout.length} < ${REV_BYTES + 2}`);
  const view = new DataView(layout.buffer, layout.byteOffset, layout.byteLength);
  const at = layout.length - REV_BYTES;
  const main = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
  const sub = view.getUint32(at + 8) * 2 ** 32 + view.getUint32(at + 12);
  return { main, sub };
}

/**
 * The layout span of an etcd range: end undefined = the single key; end = [0x00] ("\0") = every key ≥ key;
 * otherwise [key, end). An end ≤ key is an empty span (etcd answers such a range with nothing).
 * A long key or end widens the span to whole long groups: `keyFrom`/`keyTo` are then the user-key bounds
 * (keyTo undefined: none) that long-group entries must be filtered by; undefined when the span is exact.
 */
export interface LayoutSpan {
  readonly start: Uint8Array;
  readonly end: Uint8Array | undefined;
  readonly keyFrom?: Uint8Array;
  readonly keyTo?: Uint8Array;
}

export function layoutSpan(key: Uint8Array, end: Uint8Array | undefined): LayoutSpan {
  if (end === undefined || end.length === 0) return { start: layoutPrefix(key), end: layoutPrefixEnd(key) };
  const toInfinity = end.length === 1 && end[0] === 0;
  const span = { start: lowerBound(key), end: toInfinity ? undefined : upperBound(end) };
  if (!isLongKey(key) && (toInfinity || !isLongKey(end))) return span;
  return { ...span, keyFrom: key, ...(toInfinity ? {} : { keyTo: end }) };
}

/** Whether user key k is inside the span's user-key filter (always, when it has none). */
export function inKeyFilter(span: Pick<LayoutSpan, "keyFrom" | "keyTo">, k: Uint8Array): boolean {
  if (span.keyFrom !== undefined && compareBytes(k, span.keyFrom) < 0) return false;
  return span.keyTo === undefined || compareBytes(k, span.keyTo) < 0;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The number of layout bytes before a long layout's hash: its long group prefix, escape(P) + 0x00 0x01. */
export function longGroupPrefixLength(layout: Uint8Array): number {
  return layout.length - REV_BYTES - LONG_SUFFIX_BYTES + 2;
}
