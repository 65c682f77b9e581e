// Conversions between the wire shapes of core/api/proto/types.ts (64-bit numbers as decimal strings) and the
// client's public shapes (bigint), plus a scanner that summarises an encoded RangeResponse without decoding
// its key-values: the harness's long LISTs then cost the client a pass over bytes, not an object per key.
import type * as pb from "../api/proto/types.js";

export type Bytes = Buffer | string;

/** toBuf turns a key or value given as a string (UTF-8) or Buffer into a Buffer. */
export function toBuf(b: Bytes): Buffer {
  return typeof b === "string" ? Buffer.from(b, "utf8") : b;
}

/** big reads a 64-bit wire field; "" (absent) reads as 0n. */
export function big(s: string | undefined): bigint {
  return s === undefined || s === "" ? 0n : BigInt(s);
}

export interface ResponseHeader {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly revision: bigint;
  readonly raftTerm: bigint;
}

export interface KeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  readonly lease: bigint;
}

export function header(h: pb.ResponseHeader__Output | null | undefined): ResponseHeader {
  return {
    clusterId: big(h?.cluster_id),
    memberId: big(h?.member_id),
    revision: big(h?.revision),
    raftTerm: big(h?.raft_term),
  };
}

export function keyValue(kv: pb.KeyValue__Output): KeyValue {
  return {
    key: kv.key,
    value: kv.value,
    createRevision: big(kv.create_revision),
    modRevision: big(kv.mod_revision),
    version: big(kv.version),
    lease: big(kv.lease),
  };
}

/** prefixEnd is the range_end that selects every key starting with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: every key >= prefix
}

/** RangeSummary is what a LIST needs to page and to be measured, read straight from the encoded bytes. */
export interface RangeSummary {
  readonly revision: bigint;
  readonly kvCount: number;
  readonly more: boolean;
  readonly count: bigint;
  readonly bytes: number;
  /** Key of the last KeyValue in the response (for a continuation), or undefined when there is none. */
  readonly lastKey: Buffer | undefined;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error(`truncated varint at byte ${pos} of ${buf.length}`);
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error(`varint longer than 10 bytes at byte ${pos}`);
  }
}

/** forEachField walks the top-level fields of an encoded message, calling fn(field, wireType, value, end). */
function forEachField(
  buf: Buffer,
  fn: (field: number, wire: number, start: number, end: number, v: bigint) => void,
): void {
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, p1);
      fn(field, wire, p1, p2, v);
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, p1);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error(`field ${field} length ${len} overruns ${buf.length} bytes`);
      fn(field, wire, p2, end, len);
      pos = end;
    } else if (wire === 1 || wire === 5) {
      const end = p1 + (wire === 1 ? 8 : 4);
      fn(field, wire, p1, end, 0n);
      pos = end;
    } else {
      throw new Error(`unsupported wire type ${wire} for field ${field} at byte ${pos}`);
    }
  }
}

/** summariseRange reads RangeResponse fields header.revision(1.3), kvs(2), more(3), count(4). */
export function summariseRange(buf: Buffer): RangeSummary {
  let revision = 0n;
  let kvCount = 0;
  let more = false;
  let count = 0n;
  let lastKv: [number, number] | undefined;
  forEachField(buf, (field, wire, start, end, v) => {
    if (field === 1 && wire === 2) {
      forEachField(buf.subarray(start, end), (f, w, _s, _e, hv) => {
        if (f === 3 && w === 0) revision = hv;
      });
    } else if (field === 2 && wire === 2) {
      kvCount++;
      lastKv = [start, end];
    } else if (field === 3 && wire === 0) {
      more = v !== 0n;
    } else if (field === 4 && wire === 0) {
      count = v;
    }
  });
  let lastKey: Buffer | undefined;
  if (lastKv !== undefined) {
    lastKey = Buffer.alloc(0);
    forEachField(buf.subarray(lastKv[0], lastKv[1]), (f, w, s, e) => {
      if (f === 1 && w === 2) lastKey = Buffer.from(buf.subarray(lastKv![0] + s, lastKv![0] + e));
    });
  }
  return { revision, kvCount, more, count, bytes: buf.length, lastKey };
}
