// WAL record framing: [u32 length][u32 crc32][u8 type][payload], little-endian; length counts type + payload,
// the CRC (zlib's CRC-32, built into Node ≥ 20.15) covers type + payload. The reader checks what the writer
// promised: a length within bounds, the whole record present, the CRC matching.
import { crc32 } from "node:zlib";

import type { Entry, EntryType, HardState } from "../raft/types.js";

export const RecordType = {
  /** First record of every segment: magic + format version + segment sequence number. */
  SegmentHeader: 1,
  Entry: 2,
  HardState: 3,
  /** A snapshot was saved at (index, term): the log restarts after it. */
  Snapshot: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_HEADER_BYTES = 8;
/** Largest record accepted on read: a bound so a corrupt length is caught, not allocated. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
export const WAL_MAGIC = "etcd-ts-wal";
export const WAL_FORMAT_VERSION = 1;

export function frame(type: RecordType, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + 1 + payload.length);
  out.writeUInt32LE(1 + payload.length, 0);
  out[8] = type;
  out.set(payload, 9);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

/** Bytes of an entry's whole record (header, type, payload). */
export function entryRecordBytes(e: Entry): number {
  return RECORD_HEADER_BYTES + 1 + 17 + e.data.length;
}

/**
 * Writes an entry's record into `out` at `at` — the bytes of frame(RecordType.Entry, encodeEntry(e)), without the
 * two intermediate buffers — and returns where it ends.
 */
export function writeEntryRecord(out: Buffer, at: number, e: Entry): number {
  const length = 1 + 17 + e.data.length;
  const body = at + RECORD_HEADER_BYTES;
  out.writeUInt32LE(length, at);
  out[body] = RecordType.Entry;
  writeU64(out, body + 1, e.term);
  writeU64(out, body + 9, e.index);
  out[body + 17] = e.type;
  out.set(e.data, body + 18);
  out.writeUInt32LE(crc32(out.subarray(body, body + length)), at + 4);
  return body + length;
}

export function encodeEntry(e: Entry): Buffer {
  const out = Buffer.allocUnsafe(17 + e.data.length);
  writeU64(out, 0, e.term);
  writeU64(out, 8, e.index);
  out[16] = e.type;
  out.set(e.data, 17);
  return out;
}

export function decodeEntry(p: Buffer): Entry {
  if (p.length < 17) throw new Error(`entry payload ${p.length} bytes < 17`);
  return { term: readU64(p, 0), index: readU64(p, 8), type: p[16] as EntryType, data: new Uint8Array(p.subarray(17)) };
}

export function encodeHardState(hs: HardState): Buffer {
  const out = Buffer.alloc(24);
  writeU64(out, 0, hs.term);
  out.writeBigUInt64LE(hs.vote, 8);
  writeU64(out, 16, hs.commit);
  return out;
}

export function decodeHardState(p: Buffer): HardState {
  if (p.length !== 24) throw new Error(`hard state payload ${p.length} bytes != 24`);
  return { term: readU64(p, 0), vote: p.readBigUInt64LE(8), commit: readU64(p, 16) };
}

export function encodeSnapshotMark(index: number, term: number): Buffer {
  const out = Buffer.alloc(16);
  writeU64(out, 0, index);
  writeU64(out, 8, term);
  return out;
}

export function decodeSnapshotMark(p: Buffer): { index: number; term: number } {
  if (p.length !== 16) throw new Error(`snapshot mark payload ${p.length} bytes != 16`);
  return { index: readU64(p, 0), term: readU64(p, 8) };
}

export function encodeSegmentHeader(seq: number): Buffer {
  const magic = Buffer.from(WAL_MAGIC);
  const out = Buffer.alloc(magic.length + 12);
  magic.copy(out, 0);
  out.writeUInt32LE(WAL_FORMAT_VERSION, magic.length);
  writeU64(out, magic.length + 4, seq);
  return out;
}

export function decodeSegmentHeader(p: Buffer): { version: number; seq: number } | undefined {
  const magic = Buffer.from(WAL_MAGIC);
  if (p.length !== magic.length + 12 || !p.subarray(0, magic.length).equals(magic)) return undefined;
  return { version: p.readUInt32LE(magic.length), seq: readU64(p, magic.length + 4) };
}

export function writeU64(b: Buffer, at: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`writeU64: ${n} is not a safe non-negative integer`);
  b.writeUInt32LE(n % 0x1_0000_0000, at);
  b.writeUInt32LE(Math.floor(n / 0x1_0000_0000), at + 4);
}

export function readU64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`readU64: ${v} exceeds 2^53`);
  return Number(v);
}

/**
 * The offset of the first whole, CRC-valid record at or after `from`, if any (used only on damaged files; none
 * starts in the zeros at the end, so the scan stops where they begin).
 */
function findWholeRecord(buf: Buffer, from: number): number | undefined {
  const limit = nonZeroEnd(buf, from);
  for (let at = from; at + RECORD_HEADER_BYTES < limit; at++) {
    const length = buf.readUInt32LE(at);
    if (length === 0 || at + RECORD_HEADER_BYTES + length > buf.length) continue;
    const body = buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
    if (crc32(body) === buf.readUInt32LE(at + 4)) return at;
  }
  return undefined;
}

/** One step of reading a segment: a whole record, a clean end, or a bad record at `offset`. */
export type ReadResult =
  | { readonly kind: "record"; readonly type: number; readonly payload: Buffer; readonly next: number }
  | { readonly kind: "end" }
  | { readonly kind: "torn"; readonly reason: string }
  | { readonly kind: "corrupt"; readonly reason: string };

const ZERO_CHUNK = Buffer.alloc(64 * 1024);

/**
 * One past the last non-zero byte of buf at or after `from` (`from` when there is none). Scans back from the
 * end a 64 KiB memcmp at a time: a segment's free space is megabytes of zeros.
 */
export function nonZeroEnd(buf: Buffer, from: number): number {
  let end = buf.length;
  while (end > from) {
    const at = Math.max(from, end - ZERO_CHUNK.length);
    if (!buf.subarray(at, end).equals(ZERO_CHUNK.subarray(0, end - at))) break;
    end = at;
  }
  while (end > from && buf[end - 1] === 0) end -= 1;
  return end;
}

const zerosFrom = (buf: Buffer, from: number): boolean => nonZeroEnd(buf, from) === from;

/** Whether every byte of buf is zero (compared 64 KiB at a time). */
export function isAllZero(buf: Buffer): boolean {
  for (let at = 0; at < buf.length; at += ZERO_CHUNK.length) {
    const part = buf.subarray(at, at + ZERO_CHUNK.length);
    if (!part.equals(ZERO_CHUNK.subarray(0, part.length))) return false;
  }
  return true;
}

/**
 * Reads the record at `offset`. Zeros from `offset` to the end of the file are the end of the log (a
 * segment is preallocated: its unused space reads as zeros). A record cut short by the end of the file, or
 * one with a bad CRC that only zeros follow (where an interrupted last write stops), is "torn"; a bad record
 * with data after it is "corrupt".
 */
export function readRecord(buf: Buffer, offset: number): ReadResult {
  if (offset === buf.length) return { kind: "end" };
  if (offset + RECORD_HEADER_BYTES > buf.length) {
    return zerosFrom(buf, offset)
      ? { kind: "end" }
      : { kind: "torn", reason: `${buf.length - offset} header bytes at the end` };
  }
  const length = buf.readUInt32LE(offset);
  if (length === 0) return zerosFrom(buf, offset) ? { kind: "end" } : { kind: "corrupt", reason: "zero length record" };
  if (length > MAX_RECORD_BYTES) return { kind: "corrupt", reason: `record length ${length} > ${MAX_RECORD_BYTES}` };
  const end = offset + RECORD_HEADER_BYTES + length;
  if (end > buf.length) {
    // An interrupted write leaves nothing whole after it; a whole record further on means this length is
    // corrupt, not torn.
    const later = findWholeRecord(buf, offset + 1);
    return later === undefined
      ? { kind: "torn", reason: `record of ${length} bytes cut at ${buf.length - offset - RECORD_HEADER_BYTES}` }
      : { kind: "corrupt", reason: `length ${length} runs past the end, but a whole record follows at ${later}` };
  }
  const body = buf.subarray(offset + RECORD_HEADER_BYTES, end);
  const want = buf.readUInt32LE(offset + 4);
  const got = crc32(body);
  if (want !== got) {
    const reason = `crc 0x${got.toString(16)} != recorded 0x${want.toString(16)}`;
    if (!zerosFrom(buf, end)) return { kind: "corrupt", reason };
    // Only zeros after it: torn, unless a damaged length made it swallow whole records (then they would be lost).
    const later = findWholeRecord(buf, offset + 1);
    return later === undefined
      ? { kind: "torn", reason }
      : { kind: "corrupt", reason: `${reason}, and a whole record follows at ${later}` };
  }
  return { kind: "record", type: body[0] as number, payload: body.subarray(1), next: end };
}
