// Range at revision R over the key-ordered layout, as one pure, self-contained function: the same code runs
// on the main thread and, shipped as source text, in backend worker threads (see core/backend/read_view.ts:
// no imports, no outside helpers, everything inside the body).
//
// Semantics follow etcd 3.4's applier Range: `count` is the number of live keys in the range at R (before
// the min/max filters and the limit); with a sort or a filter every key is fetched, filtered, sorted, then
// cut to `limit`, and `more` says the cut dropped something; a non-KEY sort target with order NONE sorts
// ascending. Ties keep key order (Array.prototype.sort is stable).
import type { ReadView } from "../backend/read_view.js";

export interface RangeTaskArgs {
  readonly bucket: string;
  readonly metaBucket: string;
  readonly compactKey: Uint8Array;
  readonly start: Uint8Array;
  readonly end: Uint8Array | undefined;
  readonly rev: number;
  readonly limit: number;
  /** 0 NONE, 1 ASCEND, 2 DESCEND (etcd's RangeRequest.SortOrder). */
  readonly sortOrder: number;
  /** 0 KEY, 1 VERSION, 2 CREATE, 3 MOD, 4 VALUE (etcd's RangeRequest.SortTarget). */
  readonly sortTarget: number;
  readonly countOnly: boolean;
  readonly keysOnly: boolean;
  readonly minModRevision: number;
  readonly maxModRevision: number;
  readonly minCreateRevision: number;
  readonly maxCreateRevision: number;
  /** Free bytes left before the first frame and after the last (room for the response header and tail). */
  readonly frameHeadBytes: number;
  readonly frameTailBytes: number;
}

export interface RangeTaskResult {
  /** > 0: the range was refused because R < this compacted revision. */
  readonly compactedAt: number;
  readonly count: number;
  readonly more: boolean;
  /**
   * Every returned KeyValue framed as RangeResponse field 2 (tag 0x12, varint length, bytes), back to back
   * from `framedStart` to `framedEnd`, with frameHeadBytes free before and frameTailBytes free after: the API
   * writes the header and the more/count fields into the gaps and sends the buffer with no copy.
   * `starts[i]`/`ends[i]` bound the i-th KeyValue's own bytes.
   */
  readonly packed: Uint8Array;
  readonly starts: number[];
  readonly ends: number[];
  readonly framedStart: number;
  readonly framedEnd: number;
}

export function rangeTask(view: ReadView, a: RangeTaskArgs): RangeTaskResult {
  const u64 = (b: Uint8Array, at: number): number => {
    let n = 0;
    for (let i = 0; i < 8; i++) n = n * 256 + (b[at + i] as number);
    return n;
  };
  const compactRaw = view.get(a.metaBucket, a.compactKey);
  const compactRev = compactRaw === undefined ? 0 : u64(compactRaw, 0);
  if (a.rev < compactRev) {
    return { compactedAt: compactRev, count: 0, more: false, packed: new Uint8Array(0), starts: [], ends: [], framedStart: 0, framedEnd: 0 };
  }

  // Decodes the fields Range looks at; offsets of the value field let keys_only cut it out.
  type Fields = { key: Uint8Array; create: number; mod: number; version: number; value: Uint8Array; vStart: number; vEnd: number; bytes: Uint8Array };
  const decode = (b: Uint8Array): Fields => {
    const f: Fields = { key: b.subarray(0, 0), create: 0, mod: 0, version: 0, value: b.subarray(0, 0), vStart: -1, vEnd: -1, bytes: b };
    let pos = 0;
    const varint = (): number => {
      let n = 0;
      let mul = 1;
      for (;;) {
        const byte = b[pos++];
        if (byte === undefined) throw new Error(`rangeTask: truncated KeyValue at ${pos - 1} of ${b.length}`);
        n += (byte & 0x7f) * mul;
        if (byte < 0x80) return n;
        mul *= 128;
      }
    };
    while (pos < b.length) {
      const tagAt = pos;
      const tag = varint();
      const field = tag >>> 3;
      if ((tag & 7) === 2) {
        const len = varint();
        if (field === 1) f.key = b.subarray(pos, pos + len);
        if (field === 5) {
          f.value = b.subarray(pos, pos + len);
          f.vStart = tagAt;
          f.vEnd = pos + len;
        }
        pos += len;
      } else {
        const v = varint();
        if (field === 2) f.create = v;
        else if (field === 3) f.mod = v;
        else if (field === 4) f.version = v;
      }
    }
    return f;
  };
  const cmpBytes = (x: Uint8Array, y: Uint8Array): number => {
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const d = (x[i] as number) - (y[i] as number);
      if (d !== 0) return d;
    }
    return x.length - y.length;
  };
  const samePrefix = (x: Uint8Array, y: Uint8Array, len: number): boolean => {
    if (x.length - 16 !== len || y.length < len) return false;
    for (let i = 0; i < len; i++) if (x[i] !== y[i]) return false;
    return true;
  };

  const filtered = a.minModRevision > 0 || a.maxModRevision > 0 || a.minCreateRevision > 0 || a.maxCreateRevision > 0;
  let sortOrder = a.sortOrder;
  if (a.sortTarget !== 0 && sortOrder === 0) sortOrder = 1;
  const fetchAll = sortOrder !== 0 || filtered || a.limit <= 0;
  const keep = a.countOnly ? 0 : fetchAll ? Number.POSITIVE_INFINITY : a.limit + 1;
  const needFields = filtered || sortOrder !== 0 || a.keysOnly;

  let count = 0;
  const kept: Fields[] = [];
  let groupKey: Uint8Array | undefined; // layout key of the current group's newest revision ≤ rev seen so far
  let groupLen = -1;
  let candidate: Uint8Array | undefined; // value of the newest revision ≤ rev in the current group
  const finish = (): void => {
    if (candidate === undefined || candidate.length === 0) return; // no revision ≤ rev, or a tombstone
    count += 1;
    if (kept.length >= keep) return;
    if (!needFields) {
      kept.push({ key: candidate, create: 0, mod: 0, version: 0, value: candidate, vStart: -1, vEnd: -1, bytes: candidate });
      return;
    }
    const f = decode(candidate);
    if (a.minModRevision > 0 && f.mod < a.minModRevision) return;
    if (a.maxModRevision > 0 && f.mod > a.maxModRevision) return;
    if (a.minCreateRevision > 0 && f.create < a.minCreateRevision) return;
    if (a.maxCreateRevision > 0 && f.create > a.maxCreateRevision) return;
    kept.push(f);
  };
  const span = a.end === undefined ? { start: a.start } : { start: a.start, end: a.end };
  for (const { key, value } of view.range(a.bucket, span)) {
    if (groupKey === undefined || !samePrefix(key, groupKey, groupLen)) {
      finish();
      groupKey = key; // lmdb-js hands out fresh key and value buffers per entry (binary encoding): no copy needed
      groupLen = key.length - 16;
      candidate = undefined;
    }
    if (u64(key, key.length - 16) <= a.rev) candidate = value;
  }
  finish();

  if (sortOrder !== 0) {
    const t = a.sortTarget;
    const by = (x: Fields, y: Fields): number =>
      t === 0 ? cmpBytes(x.key, y.key) : t === 1 ? x.version - y.version : t === 2 ? x.create - y.create : t === 3 ? x.mod - y.mod : cmpBytes(x.value, y.value);
    kept.sort(sortOrder === 2 ? (x, y) => by(y, x) : by);
  }
  let more = false;
  if (a.limit > 0 && kept.length > a.limit) {
    kept.length = a.limit;
    more = true;
  }
  const sizeOf = (f: Fields): number => (a.keysOnly && f.vStart >= 0 ? f.bytes.length - (f.vEnd - f.vStart) : f.bytes.length);
  const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
  let total = a.frameHeadBytes + a.frameTailBytes;
  for (const f of kept) {
    const len = sizeOf(f);
    total += 1 + varintBytes(len) + len;
  }
  const packed = new Uint8Array(total);
  const starts: number[] = [];
  const ends: number[] = [];
  let pos = a.frameHeadBytes;
  for (const f of kept) {
    let len = sizeOf(f);
    packed[pos++] = 0x12; // field 2 (kvs), wire type 2
    while (len >= 0x80) {
      packed[pos++] = (len & 0x7f) | 0x80;
      len >>>= 7;
    }
    packed[pos++] = len;
    starts.push(pos);
    if (a.keysOnly && f.vStart >= 0) {
      packed.set(f.bytes.subarray(0, f.vStart), pos);
      pos += f.vStart;
      packed.set(f.bytes.subarray(f.vEnd), pos);
      pos += f.bytes.length - f.vEnd;
    } else {
      packed.set(f.bytes, pos);
      pos += f.bytes.length;
    }
    ends.push(pos);
  }
  if (pos + a.frameTailBytes !== total) throw new Error(`rangeTask: framed ${pos + a.frameTailBytes} bytes of ${total}`);
  return { compactedAt: 0, count, more, packed, starts, ends, framedStart: a.frameHeadBytes, framedEnd: pos };
}
