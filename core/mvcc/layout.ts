// The key-ordered layout of the "key" bucket: (user key, main revision, sub revision) → KeyValue bytes.
// A user key is escaped (0x00 → 0x00 0xFF) and terminated with 0x00 0x00, so byte order of layout keys is
// (user key, revision) order for keys of any length; then main and sub revision as 8-byte big-endian.
// All revisions of one key are adjacent, so "the newest revision ≤ R" is a local scan, and a worker can answer
// Range at R from its own snapshot. A tombstone (delete) is an entry with an empty value.

export const KEY_BUCKET = "key";
export const MVCC_META_BUCKET = "mvcc_meta";
/** Layout bytes after the escaped user key's terminator: main (8) + sub (8). */
export const REV_BYTES = 16;

export interface Revision {
  readonly main: number;
  readonly sub: number;
}

function escapedLength(key: Uint8Array): number {
  let n = key.length + 2;
  for (const b of key) if (b === 0) n += 1;
  return n;
}

/** Writes escape(key) + 0x00 0x00 into out at 0; returns the bytes written. */
function writeEscaped(out: Uint8Array, key: Uint8Array): number {
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

export function layoutKey(key: Uint8Array, rev: Revision): Uint8Array {
  const out = new Uint8Array(escapedLength(key) + REV_BYTES);
  const pos = writeEscaped(out, key);
  writeU64(out, pos, rev.main);
  writeU64(out, pos + 8, rev.sub);
  return out;
}

/** The layout prefix of every revision of `key` (escape(key) + terminator). */
export function layoutPrefix(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(escapedLength(key));
  writeEscaped(out, key);
  return out;
}

/** The layout key just past every revision of `key`. */
export function layoutPrefixEnd(key: Uint8Array): Uint8Array {
  const out = layoutPrefix(key);
  out[out.length - 1] = 1;
  return out;
}

/** The user key of a layout key (unescapes up to the 0x00 0x00 terminator). */
export function userKeyOf(layout: Uint8Array): Uint8Array {
  const end = layout.length - REV_BYTES - 2;
  const out: number[] = [];
  for (let i = 0; i < end; i++) {
    const b = layout[i] as number;
    out.push(b);
    if (b === 0) i += 1; // 0x00 0xFF stands for one 0x00 byte
  }
  return Uint8Array.from(out);
}

export function revisionOf(layout: Uint8Array): Revision {
  if (layout.length < REV_BYTES + 2) throw new Error(`revisionOf: layout key length ${layout.length} < ${REV_BYTES + 2}`);
  const view = new DataView(layout.buffer, layout.byteOffset, layout.byteLength);
  const at = layout.length - REV_BYTES;
  const main = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
  const sub = view.getUint32(at + 8) * 2 ** 32 + view.getUint32(at + 12);
  return { main, sub };
}

/**
 * The layout span of an etcd range: end undefined = the single key; end = [0x00] ("\0") = every key ≥ key;
 * otherwise [key, end). An end ≤ key is an empty span (etcd answers such a range with nothing).
 */
export function layoutSpan(key: Uint8Array, end: Uint8Array | undefined): { start: Uint8Array; end: Uint8Array | undefined } {
  if (end === undefined || end.length === 0) return { start: layoutPrefix(key), end: layoutPrefixEnd(key) };
  if (end.length === 1 && end[0] === 0) return { start: layoutPrefix(key), end: undefined };
  return { start: layoutPrefix(key), end: layoutPrefix(end) };
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
