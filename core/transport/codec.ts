// The wire codec of raft messages between members: a compact binary form of core/raft/types.ts Message with
// every field (entries, snapshot metadata and conf state, context, reject hint, ...), and the length-prefixed
// frames that carry many messages per stream write. Numbers are unsigned varints (terms and indexes are safe
// integers, so base-128 digits computed with arithmetic, never 32-bit bit operations); ids are fixed 8-byte
// little-endian u64 (bigint). Decoding checks every length against the bytes at hand and throws DECODE.
//
// Message layout:
//   u8 type (etcd's raftpb numbering: MsgHup=0 … MsgPreVoteResp=18)   u8 flags (1 reject, 2 snapshot, 4 context)
//   u64 to   u64 from   uvarint term, logTerm, index, commit, rejectHint
//   uvarint entryCount, then per entry: uvarint term, uvarint index, u8 type, uvarint len, bytes
//   [snapshot] uvarint index, term; uvarint nVoters, u64…; uvarint nLearners, u64…; uvarint len, bytes
//   [context]  uvarint len, bytes
// Frame: u32le length, then that many bytes.

import type { ConfState, Entry, EntryType, Message, MessageType, NodeId, Snapshot } from "../raft/types.js";
import { MessageType as MT } from "../raft/types.js";
import { TransportError } from "./errors.js";

/** Message types in etcd's raftpb order: the index is the wire number. */
const TYPES: readonly MessageType[] = [
  MT.Hup,
  MT.Beat,
  MT.Prop,
  MT.App,
  MT.AppResp,
  MT.Vote,
  MT.VoteResp,
  MT.Snap,
  MT.Heartbeat,
  MT.HeartbeatResp,
  MT.Unreachable,
  MT.SnapStatus,
  MT.CheckQuorum,
  MT.TransferLeader,
  MT.TimeoutNow,
  MT.ReadIndex,
  MT.ReadIndexResp,
  MT.PreVote,
  MT.PreVoteResp,
];
const TYPE_NUMBER: ReadonlyMap<MessageType, number> = new Map(TYPES.map((t, i) => [t, i]));

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_CONTEXT = 4;
const FLAGS_KNOWN = FLAG_REJECT | FLAG_SNAPSHOT | FLAG_CONTEXT;
const U64_MAX = (1n << 64n) - 1n;
export const FRAME_HEADER_BYTES = 4;
/** Chunks up to this size are never worth copying frames out of. */
const COPY_BELOW_CHUNK_BYTES = 64 * 1024;

function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function checkNat(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new TransportError("ENCODE", `${what} must be a safe non-negative integer, got ${n}`);
}

function checkId(id: bigint, what: string): void {
  if (id < 0n || id > U64_MAX) throw new TransportError("ENCODE", `${what} must fit in 64 bits, got ${id}`);
}

function bytesSize(b: Uint8Array): number {
  return uvarintSize(b.byteLength) + b.byteLength;
}

function confStateSize(cs: ConfState): number {
  return (
    uvarintSize(cs.voters.length) + 8 * cs.voters.length + uvarintSize(cs.learners.length) + 8 * cs.learners.length
  );
}

/** encodedSize returns the exact number of bytes encodeInto writes for m (validating its fields). */
export function encodedSize(m: Message): number {
  checkId(m.to, "to");
  checkId(m.from, "from");
  checkNat(m.term, "term");
  checkNat(m.logTerm, "logTerm");
  checkNat(m.index, "index");
  checkNat(m.commit, "commit");
  checkNat(m.rejectHint, "rejectHint");
  let size =
    2 +
    16 +
    uvarintSize(m.term) +
    uvarintSize(m.logTerm) +
    uvarintSize(m.index) +
    uvarintSize(m.commit) +
    uvarintSize(m.rejectHint);
  size += uvarintSize(m.entries.length);
  for (const e of m.entries) {
    checkNat(e.term, "entry term");
    checkNat(e.index, "entry index");
    size += uvarintSize(e.term) + uvarintSize(e.index) + 1 + bytesSize(e.data);
  }
  if (m.snapshot !== undefined) {
    const md = m.snapshot.metadata;
    checkNat(md.index, "snapshot index");
    checkNat(md.term, "snapshot term");
    size += uvarintSize(md.index) + uvarintSize(md.term) + confStateSize(md.confState) + bytesSize(m.snapshot.data);
  }
  if (m.context !== undefined) size += bytesSize(m.context);
  return size;
}

/** Writes into a preallocated buffer; every put returns the next offset. */
class Out {
  constructor(
    readonly b: Buffer,
    public off: number,
  ) {}
  u8(v: number): void {
    this.b[this.off++] = v;
  }
  uvarint(n: number): void {
    while (n >= 0x80) {
      this.b[this.off++] = (n % 0x80) + 0x80;
      n = Math.floor(n / 0x80);
    }
    this.b[this.off++] = n;
  }
  u64(v: bigint): void {
    this.b.writeBigUInt64LE(v, this.off);
    this.off += 8;
  }
  bytes(data: Uint8Array): void {
    this.uvarint(data.byteLength);
    this.b.set(data, this.off);
    this.off += data.byteLength;
  }
  ids(ids: readonly NodeId[]): void {
    this.uvarint(ids.length);
    for (const id of ids) {
      checkId(id, "conf state id");
      this.u64(id);
    }
  }
}

/** encodeInto writes m at offset `off` of `b` (which must hold encodedSize(m) bytes) and returns the end offset. */
export function encodeInto(m: Message, b: Buffer, off: number): number {
  const typeNumber = TYPE_NUMBER.get(m.type);
  if (typeNumber === undefined) throw new TransportError("ENCODE", `unknown message type ${String(m.type)}`);
  const o = new Out(b, off);
  o.u8(typeNumber);
  o.u8(
    (m.reject ? FLAG_REJECT : 0) |
      (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0) |
      (m.context !== undefined ? FLAG_CONTEXT : 0),
  );
  o.u64(m.to);
  o.u64(m.from);
  o.uvarint(m.term);
  o.uvarint(m.logTerm);
  o.uvarint(m.index);
  o.uvarint(m.commit);
  o.uvarint(m.rejectHint);
  o.uvarint(m.entries.length);
  for (const e of m.entries) {
    o.uvarint(e.term);
    o.uvarint(e.index);
    o.u8(e.type);
    o.bytes(e.data);
  }
  if (m.snapshot !== undefined) {
    const md = m.snapshot.metadata;
    o.uvarint(md.index);
    o.uvarint(md.term);
    o.ids(md.confState.voters);
    o.ids(md.confState.learners);
    o.bytes(m.snapshot.data);
  }
  if (m.context !== undefined) o.bytes(m.context);
  return o.off;
}

/** encodeMessage returns m's encoding in a buffer of its own. */
export function encodeMessage(m: Message): Buffer {
  const b = Buffer.allocUnsafe(encodedSize(m));
  const end = encodeInto(m, b, 0);
  if (end !== b.byteLength) throw new TransportError("ENCODE", `wrote ${end} bytes, sized ${b.byteLength}`);
  return b;
}

/**
 * encodeFrames returns msgs as consecutive length-prefixed frames in one buffer (one stream write). `knownSizes`
 * are encodedSize() of each message when the caller already has them.
 */
export function encodeFrames(msgs: readonly Message[], knownSizes?: readonly number[]): Buffer {
  const sizes = knownSizes ?? msgs.map(encodedSize);
  let total = 0;
  for (const s of sizes) total += FRAME_HEADER_BYTES + s;
  const b = Buffer.allocUnsafe(total);
  let off = 0;
  msgs.forEach((m, i) => {
    const size = sizes[i] ?? 0;
    b.writeUInt32LE(size, off);
    const end = encodeInto(m, b, off + FRAME_HEADER_BYTES);
    if (end !== off + FRAME_HEADER_BYTES + size)
      throw new TransportError("ENCODE", `message ${i}: wrote ${end - off - 4} bytes, sized ${size}`);
    off = end;
  });
  return b;
}

/** Reads from a byte range with bounds checks; any overrun throws DECODE with the offset. */
class In {
  private readonly view: Buffer;
  constructor(
    b: Uint8Array,
    public off: number,
    private readonly end: number,
  ) {
    this.view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }
  need(n: number, what: string): void {
    if (this.off + n > this.end)
      throw new TransportError("DECODE", `${what}: need ${n} bytes at offset ${this.off}, have ${this.end - this.off}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view[this.off++] ?? 0;
  }
  uvarint(what: string): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8(what);
      n += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(n)) throw new TransportError("DECODE", `${what}: varint ${n} beyond 2^53`);
        return n;
      }
      scale *= 0x80;
    }
    throw new TransportError("DECODE", `${what}: varint longer than 8 bytes at offset ${this.off}`);
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.readBigUInt64LE(this.off);
    this.off += 8;
    return v;
  }
  bytes(what: string): Uint8Array {
    const len = this.uvarint(what);
    this.need(len, what);
    const out = this.view.subarray(this.off, this.off + len);
    this.off += len;
    return out;
  }
  ids(what: string): NodeId[] {
    const n = this.uvarint(what);
    this.need(8 * n, what);
    const out: NodeId[] = [];
    for (let i = 0; i < n; i++) out.push(this.u64(what));
    return out;
  }
  done(): void {
    if (this.off !== this.end)
      throw new TransportError("DECODE", `${this.end - this.off} trailing bytes after message`);
  }
}

function decodeEntries(i: In): Entry[] {
  const count = i.uvarint("entry count");
  // Each entry takes at least 4 bytes: a count beyond that is a lie, refuse before allocating.
  i.need(count * 4, "entries");
  const entries: Entry[] = [];
  for (let k = 0; k < count; k++) {
    const term = i.uvarint("entry term");
    const index = i.uvarint("entry index");
    const type = i.u8("entry type");
    if (type !== 0 && type !== 1) throw new TransportError("DECODE", `entry ${k}: unknown entry type ${type}`);
    entries.push({ term, index, type: type as EntryType, data: i.bytes("entry data") });
  }
  return entries;
}

function decodeSnapshot(i: In): Snapshot {
  const index = i.uvarint("snapshot index");
  const term = i.uvarint("snapshot term");
  const voters = i.ids("voters");
  const learners = i.ids("learners");
  return { metadata: { index, term, confState: { voters, learners } }, data: i.bytes("snapshot data") };
}

/** decodeMessage decodes exactly the bytes [start, end) of b; entry and snapshot data are views into b. */
export function decodeMessage(b: Uint8Array, start = 0, end = b.byteLength): Message {
  const i = new In(b, start, end);
  const typeNumber = i.u8("type");
  const type = TYPES[typeNumber];
  if (type === undefined) throw new TransportError("DECODE", `unknown message type ${typeNumber}`);
  const flags = i.u8("flags");
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new TransportError("DECODE", `unknown flags ${flags}`);
  const to = i.u64("to");
  const from = i.u64("from");
  const term = i.uvarint("term");
  const logTerm = i.uvarint("logTerm");
  const index = i.uvarint("index");
  const commit = i.uvarint("commit");
  const rejectHint = i.uvarint("rejectHint");
  const entries = decodeEntries(i);
  const snapshot = (flags & FLAG_SNAPSHOT) !== 0 ? decodeSnapshot(i) : undefined;
  const context = (flags & FLAG_CONTEXT) !== 0 ? i.bytes("context") : undefined;
  i.done();
  const reject = (flags & FLAG_REJECT) !== 0;
  const m: Message = { type, to, from, term, logTerm, index, entries, commit, reject, rejectHint };
  if (snapshot === undefined && context === undefined) return m;
  return {
    ...m,
    ...(snapshot !== undefined ? { snapshot } : {}),
    ...(context !== undefined ? { context } : {}),
  };
}

/**
 * FrameParser splits a byte stream into frames and hands each whole frame to `onFrame` (a view into the chunk
 * when the frame lies inside one chunk, else a copy). A frame longer than `maxFrameBytes` throws DECODE: the
 * caller closes the stream. `pendingBytes` is what a stream that ends now would leave unread (truncation).
 */
export class FrameParser {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Bytes the pending chunks must reach before parsing is worth a concat (whole next frame, or its header). */
  private wantBytes = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {}

  get pendingBytes(): number {
    return this.pendingLength;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingLength > 0) {
      // Collect chunks of a large frame without copying until it is whole: one concat per frame, not per chunk.
      this.pending.push(chunk);
      this.pendingLength += chunk.byteLength;
      if (this.pendingLength < this.wantBytes) return;
      buf = Buffer.concat(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
    }
    let off = 0;
    while (buf.byteLength - off >= FRAME_HEADER_BYTES) {
      const len = buf.readUInt32LE(off);
      if (len > this.maxFrameBytes)
        throw new TransportError("DECODE", `frame of ${len} bytes exceeds the limit ${this.maxFrameBytes}`);
      if (buf.byteLength - off - FRAME_HEADER_BYTES < len) break;
      const start = off + FRAME_HEADER_BYTES;
      off = start + len;
      const frame = buf.subarray(start, off);
      // Decoded entries are views into the frame: a small frame cut from a big chunk is copied, so an entry
      // kept in raft's log never pins a whole chunk (retention stays within 4× of what is kept).
      this.onFrame(buf.byteLength > COPY_BELOW_CHUNK_BYTES && len * 4 < buf.byteLength ? Buffer.from(frame) : frame);
    }
    if (off < buf.byteLength) {
      const rest = buf.subarray(off);
      this.pending.push(rest);
      this.pendingLength = rest.byteLength;
      this.wantBytes =
        rest.byteLength >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + rest.readUInt32LE(0) : FRAME_HEADER_BYTES;
    }
  }
}
