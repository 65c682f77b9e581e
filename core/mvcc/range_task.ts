// Range at revision R over the key-ordered layout, as one pure, self-contained function: the same code runs
// on the main thread and, shipped as source text, in backend worker threads (see core/backend/read_view.ts:
// no imports, no outside helpers, everything inside the body).
//
// Cost model (a LIST of 50,000 × 2 KiB pods is ~100 MB): the scan allocates nothing per key that outlives the
// step. Entries may be views of a buffer the next step reuses (the worker's zero-copy view, read_view.ts), so
// the newest revision ≤ R of a key is copied straight into its frame in the output — written in place and
// rewritten if a newer revision ≤ R follows. A long read in a worker writes into an output slab the worker lends
// (a growable SharedArrayBuffer reused from Range to Range, read_view.ts): a fresh 100 MB buffer per LIST cost
// more than half the Range's time in page faults and freeing, and its allocation set off a full GC in both
// threads, whose helper threads then took the CPU from commits.
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
  /** User-key bounds long-group entries are filtered by (layout.ts LayoutSpan); undefined: none. */
  readonly keyFrom?: Uint8Array;
  readonly keyTo?: Uint8Array;
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
  /** A long read: write into the view's lent output slab when it has one (ReadView.lendOutput). */
  readonly lendOutput?: boolean;
  /**
   * Stop scanning once limit + 1 keys are found (no sort, no filter): `more` is then exact but `count` only
   * counts what was read. For callers that page through a span (a DeleteRange in chunks), not for Range.
   */
  readonly stopAtLimit?: boolean;
  /** Read in one snapshot (set on the retry after a compaction raced a renewable scan). */
  readonly singleSnapshot?: boolean;
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
   * `starts[i]`/`ends[i]` bound the i-th KeyValue's own bytes. Typed arrays: posting two 50,000-entry plain
   * arrays from a worker cost the main thread ~3.4 ms of deserializing per LIST; typed ones are one memcpy.
   */
  readonly packed: Uint8Array;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly framedStart: number;
  readonly framedEnd: number;
  /** Set by the worker pool when `packed` views a lent output slab: gives the slab back (read_view.ts, Lent). */
  readonly release?: () => void;
}

export function rangeTask(view: ReadView, a: RangeTaskArgs): RangeTaskResult {
  // etcd's gRPC send limit (math.MaxInt32): no Range response can be larger; it is only reserved address space.
  const MAX_OUT_BYTES = 2 ** 31 - 1;
  const FIRST_LONG_OUT_BYTES = 64 * 1024;
  const FIRST_SHORT_OUT_BYTES = 4096;
  const u64 = (b: Uint8Array, at: number): number => {
    let n = 0;
    for (let i = 0; i < 8; i++) n = n * 256 + (b[at + i] as number);
    return n;
  };
  const compactRaw = view.get(a.metaBucket, a.compactKey);
  const compactRev = compactRaw === undefined ? 0 : u64(compactRaw, 0);
  if (a.rev < compactRev) {
    return {
      compactedAt: compactRev,
      count: 0,
      more: false,
      packed: new Uint8Array(0),
      starts: new Uint32Array(0),
      ends: new Uint32Array(0),
      framedStart: 0,
      framedEnd: 0,
    };
  }

  // The fields Range looks at, as offsets into the bytes decoded; [vStart, vEnd) is the whole value field
  // (tag, length, bytes), which keys_only cuts out.
  type Fields = {
    keyAt: number;
    keyEnd: number;
    valueAt: number;
    valueEnd: number;
    vStart: number;
    vEnd: number;
    create: number;
    mod: number;
    version: number;
  };
  const decode = (b: Uint8Array, from: number, to: number): Fields => {
    const f: Fields = {
      keyAt: from,
      keyEnd: from,
      valueAt: from,
      valueEnd: from,
      vStart: -1,
      vEnd: -1,
      create: 0,
      mod: 0,
      version: 0,
    };
    let pos = from;
    const varint = (): number => {
      let n = 0;
      let mul = 1;
      for (;;) {
        const byte = pos < to ? b[pos++] : undefined;
        if (byte === undefined) throw new Error(`rangeTask: truncated KeyValue at ${pos - from} of ${to - from}`);
        n += (byte & 0x7f) * mul;
        if (byte < 0x80) return n;
        mul *= 128;
      }
    };
    while (pos < to) {
      const tagAt = pos;
      const tag = varint();
      const field = tag >>> 3;
      if ((tag & 7) === 2) {
        const len = varint();
        if (field === 1) [f.keyAt, f.keyEnd] = [pos, pos + len];
        if (field === 5) [f.valueAt, f.valueEnd, f.vStart, f.vEnd] = [pos, pos + len, tagAt, pos + len];
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
  const cmpBytes = (b: Uint8Array, x0: number, x1: number, y0: number, y1: number): number => {
    const n = Math.min(x1 - x0, y1 - y0);
    for (let i = 0; i < n; i++) {
      const d = (b[x0 + i] as number) - (b[y0 + i] as number);
      if (d !== 0) return d;
    }
    return x1 - x0 - (y1 - y0);
  };
  const varintBytes = (n: number): number =>
    n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
  const putVarint = (b: Uint8Array, at: number, n: number): number => {
    while (n >= 0x80) {
      b[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    b[at++] = n;
    return at;
  };

  // The output: frames from frameHeadBytes on. A long read writes into the slab the view lends, or, with none
  // to lend (the main thread, or every slab lent), into a resizable ArrayBuffer it can transfer; both grow in place
  // (no copy). A short read writes into a plain buffer that grows by copying: reserving a resizable buffer's 2 GiB
  // of address space costs 45–90 µs per call, more than a whole single-key get.
  type Resizable = ArrayBuffer & { resize(n: number): void };
  const ResizableBuffer = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable;
  const slab = a.lendOutput === true ? view.lendOutput?.() : undefined;
  const resizable =
    a.lendOutput === true && slab === undefined
      ? new ResizableBuffer(FIRST_LONG_OUT_BYTES, { maxByteLength: MAX_OUT_BYTES })
      : undefined;
  let outBuf: ArrayBuffer | SharedArrayBuffer = slab ?? resizable ?? new ArrayBuffer(FIRST_SHORT_OUT_BYTES);
  let out = new Uint8Array(outBuf); // on a slab or resizable buffer: length-tracking, follows every growth
  const ensure = (bytes: number): void => {
    if (bytes <= outBuf.byteLength) return;
    if (bytes > MAX_OUT_BYTES)
      throw new Error(`rangeTask: response of more than ${bytes} bytes exceeds ${MAX_OUT_BYTES}`);
    const size = Math.min(MAX_OUT_BYTES, Math.max(bytes, outBuf.byteLength * 2));
    if (slab !== undefined) {
      if (size > slab.maxByteLength)
        throw new Error(`rangeTask: response of ${size} bytes exceeds the output slab's ${slab.maxByteLength}`);
      slab.grow(size);
      return;
    }
    if (resizable !== undefined) {
      resizable.resize(size);
      return;
    }
    const next = new ArrayBuffer(size);
    new Uint8Array(next).set(out);
    outBuf = next;
    out = new Uint8Array(next);
  };
  const starts: number[] = [];
  const ends: number[] = [];
  let pos = a.frameHeadBytes; // end of the committed frames

  const filtered = a.minModRevision > 0 || a.maxModRevision > 0 || a.minCreateRevision > 0 || a.maxCreateRevision > 0;
  let sortOrder = a.sortOrder;
  if (a.sortTarget !== 0 && sortOrder === 0) sortOrder = 1;
  const fetchAll = sortOrder !== 0 || filtered || a.limit <= 0;
  const keep = a.countOnly ? 0 : fetchAll ? Number.POSITIVE_INFINITY : a.limit + 1;
  // keys_only cuts values when frames are written, except under a sort (a VALUE sort needs them): then at the end.
  const cutNow = a.keysOnly && sortOrder === 0;

  // The current key's group: its layout prefix (copied: entry buffers may be reused) and its candidate, the
  // newest revision ≤ rev so far, written as a tentative frame at [pos, candEnd) (candLen 0: a tombstone).
  let groupKey = new Uint8Array(256);
  let groupLen = -1;
  let candLen = -1;
  let candEnd = pos;
  let count = 0;
  const inGroup = (key: Uint8Array): boolean => {
    if (key.length - 16 !== groupLen) return false;
    for (let i = 0; i < groupLen; i++) if (key[i] !== groupKey[i]) return false;
    return true;
  };
  const writeCandidate = (value: Uint8Array): void => {
    candLen = value.length;
    if (candLen === 0 || starts.length >= keep) return; // a tombstone, or only counted
    ensure(pos + 6 + candLen + a.frameTailBytes);
    out[pos] = 0x12; // field 2 (kvs), wire type 2
    const at = putVarint(out, pos + 1, candLen);
    out.set(value, at);
    candEnd = at + candLen;
  };
  const finish = (): void => {
    if (candLen <= 0) return; // no revision ≤ rev, or a tombstone
    count += 1;
    if (starts.length >= keep) return;
    if (!filtered && !cutNow) {
      starts.push(candEnd - candLen);
      ends.push(candEnd);
      pos = candEnd;
      return;
    }
    const from = candEnd - candLen;
    const f = decode(out, from, candEnd);
    if (a.minModRevision > 0 && f.mod < a.minModRevision) return;
    if (a.maxModRevision > 0 && f.mod > a.maxModRevision) return;
    if (a.minCreateRevision > 0 && f.create < a.minCreateRevision) return;
    if (a.maxCreateRevision > 0 && f.create > a.maxCreateRevision) return;
    if (!cutNow || f.vStart < 0) {
      starts.push(from);
      ends.push(candEnd);
      pos = candEnd;
      return;
    }
    // keys_only: reframe without the value field (the frame only shrinks, so it moves down in place).
    const len = candLen - (f.vEnd - f.vStart);
    out[pos] = 0x12;
    const at = putVarint(out, pos + 1, len);
    out.copyWithin(at, from, f.vStart);
    out.copyWithin(at + (f.vStart - from), f.vEnd, candEnd);
    starts.push(at);
    ends.push(at + len);
    pos = at + len;
  };

  // Long keys (layout.ts): the revisions of one long key are adjacent like a short key's, but the keys of one
  // long group come in hash order. Each long key's candidate is copied aside; when the group ends they are
  // sorted by user key, cut to [keyFrom, keyTo) (a span with a long bound covers whole groups), and emitted
  // as if they had come in order. A long group is held whole, so its cost is its live keys' bytes at rev.
  let groupLong = false;
  let longCand: Uint8Array | undefined;
  let longPrefix = new Uint8Array(0);
  let longLen = -1; // -1: no long group open
  let pending: { key: Uint8Array; value: Uint8Array }[] = [];
  const inLongGroup = (key: Uint8Array): boolean => {
    if (longLen < 0 || key.length - 16 - 33 !== longLen) return false;
    for (let i = 0; i < longLen; i++) if (key[i] !== longPrefix[i]) return false;
    return true;
  };
  const endGroup = (): void => {
    if (!groupLong) {
      finish();
      return;
    }
    if (longCand === undefined || longCand.length === 0) return; // no revision ≤ rev, or a tombstone
    const f = decode(longCand, 0, longCand.length);
    pending.push({ key: longCand.subarray(f.keyAt, f.keyEnd), value: longCand });
    longCand = undefined;
  };
  const flushLong = (): void => {
    if (longLen < 0) return;
    longLen = -1;
    const lt = (x: Uint8Array, y: Uint8Array): number => {
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
      return x.length - y.length;
    };
    const group = pending;
    pending = [];
    group.sort((x, y) => lt(x.key, y.key));
    for (const { key, value } of group) {
      if (a.keyFrom !== undefined && lt(key, a.keyFrom) < 0) continue;
      if (a.keyTo !== undefined && lt(key, a.keyTo) >= 0) continue;
      writeCandidate(value);
      finish();
      candLen = -1;
    }
  };

  // Renewable: the view may move to newer snapshots as it goes (read_view.ts). Entries committed meanwhile
  // have revisions > rev and are filtered; a compaction meanwhile could drop a tombstone this scan has not
  // reached yet, so when the compacted revision moved, the whole range is read again in one snapshot.
  const renewable = a.singleSnapshot !== true;
  const span = {
    start: a.start,
    ...(a.end === undefined ? {} : { end: a.end }),
    ...(renewable ? { renewable } : {}),
    views: true,
  };
  for (const { key, value } of view.range(a.bucket, span)) {
    if (!inGroup(key)) {
      endGroup();
      const long = key[key.length - 17] === 1;
      if (!long || !inLongGroup(key)) flushLong();
      if (a.stopAtLimit === true && starts.length >= keep) {
        [candLen, groupLong] = [-1, false]; // this group is not read: nothing of it to finish
        break;
      }
      if (long && longLen < 0) {
        longLen = key.length - 16 - 33;
        longPrefix = key.slice(0, longLen);
      }
      groupLong = long;
      groupLen = key.length - 16;
      if (groupLen > groupKey.length) groupKey = new Uint8Array(groupLen * 2);
      for (let i = 0; i < groupLen; i++) groupKey[i] = key[i] as number;
      candLen = -1;
      longCand = undefined;
    }
    if (u64(key, key.length - 16) > a.rev) continue;
    if (groupLong)
      longCand = new Uint8Array(value); // a copy: entry buffers may be reused
    else writeCandidate(value);
  }
  endGroup();
  flushLong();
  if (renewable) {
    const after = view.get(a.metaBucket, a.compactKey);
    if ((after === undefined ? 0 : u64(after, 0)) !== compactRev)
      return rangeTask(view, { ...a, singleSnapshot: true });
  }

  type Framed = { packed: Uint8Array; starts: number[]; ends: number[]; end: number };
  let more = false;
  let result: Framed = { packed: out, starts, ends, end: pos };
  if (sortOrder !== 0) result = sortFrames(out, starts, ends);
  if (a.limit > 0 && result.starts.length > a.limit) {
    result.starts.length = a.limit;
    result.ends.length = a.limit;
    result.end = result.ends[a.limit - 1] as number;
    more = true;
  }
  if (result.packed === out) {
    // Room for the tail. A resizable buffer is trimmed to head + frames + tail (it is transferred whole); a slab
    // only grows, and is longer than this response when reused, so the result is a view of just those bytes.
    if (resizable !== undefined) resizable.resize(result.end + a.frameTailBytes);
    else ensure(result.end + a.frameTailBytes);
    result.packed = slab === undefined ? out : new Uint8Array(slab, 0, result.end + a.frameTailBytes);
  } else if (a.keysOnly) result = cutValues(result.packed, result.starts, result.ends);
  return {
    compactedAt: 0,
    count,
    more,
    packed: result.packed,
    starts: Uint32Array.from(result.starts),
    ends: Uint32Array.from(result.ends),
    framedStart: a.frameHeadBytes,
    framedEnd: result.end,
  };

  // Frames reordered by the sort target (ties keep key order: Array.prototype.sort is stable) into a new buffer.
  function sortFrames(src: Uint8Array, s: number[], e: number[]): Framed {
    const t = a.sortTarget;
    const fields = s.map((from, i) => decode(src, from, e[i] as number));
    const by = (x: Fields, y: Fields): number =>
      t === 0
        ? cmpBytes(src, x.keyAt, x.keyEnd, y.keyAt, y.keyEnd)
        : t === 1
          ? x.version - y.version
          : t === 2
            ? x.create - y.create
            : t === 3
              ? x.mod - y.mod
              : cmpBytes(src, x.valueAt, x.valueEnd, y.valueAt, y.valueEnd);
    const order = fields.map((_, i) => i);
    order.sort(
      sortOrder === 2
        ? (i, j) => by(fields[j] as Fields, fields[i] as Fields)
        : (i, j) => by(fields[i] as Fields, fields[j] as Fields),
    );
    return copyFrames(
      src,
      order.map((i) => [s[i] as number, e[i] as number, -1, -1]),
    );
  }

  // keys_only after a sort: the frames again, each without its value field.
  function cutValues(src: Uint8Array, s: number[], e: number[]): Framed {
    return copyFrames(
      src,
      s.map((from, i) => {
        const f = decode(src, from, e[i] as number);
        return [from, e[i] as number, f.vStart, f.vEnd];
      }),
    );
  }

  // A new exact-size buffer of frames [from, to) minus [cutFrom, cutTo) (-1: nothing cut), in the order given.
  function copyFrames(src: Uint8Array, parts: [number, number, number, number][]): Framed {
    const sizeOf = (p: [number, number, number, number]): number => p[1] - p[0] - (p[2] >= 0 ? p[3] - p[2] : 0);
    let total = a.frameHeadBytes + a.frameTailBytes;
    for (const p of parts) total += 1 + varintBytes(sizeOf(p)) + sizeOf(p);
    const dst = new Uint8Array(total);
    const s: number[] = [];
    const e: number[] = [];
    let at = a.frameHeadBytes;
    for (const p of parts) {
      dst[at] = 0x12;
      at = putVarint(dst, at + 1, sizeOf(p));
      s.push(at);
      if (p[2] >= 0) {
        dst.set(src.subarray(p[0], p[2]), at);
        dst.set(src.subarray(p[3], p[1]), at + (p[2] - p[0]));
      } else dst.set(src.subarray(p[0], p[1]), at);
      at += sizeOf(p);
      e.push(at);
    }
    if (at + a.frameTailBytes !== total)
      throw new Error(`rangeTask: framed ${at + a.frameTailBytes} bytes of ${total}`);
    return { packed: dst, starts: s, ends: e, end: at };
  }
}
