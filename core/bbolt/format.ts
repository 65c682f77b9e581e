// bbolt's on-disk format, as etcd's backend files and snapshots use it (facts from bbolt's page.go and db.go).
// The file is a sequence of fixed-size pages (the page size is recorded in the meta pages; 4096 on amd64
// Linux); every number is little-endian. Page 0 and page 1 are meta pages: the one with the higher
// transaction id whose checksum matches is current. A page starts with a 16-byte header:
//   id u64 · flags u16 (0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist) · count u16 · overflow u32
// where overflow counts the extra pages a large page spans. After a meta page's header:
//   magic u32 (0xED0CDAED) · version u32 (2) · pageSize u32 · flags u32 · root bucket {root pgid u64,
//   sequence u64} · freelist pgid u64 · pgid u64 (pages in use, the high-water mark) · txid u64 ·
//   checksum u64 (FNV-1a 64 over the 56 bytes before it)
// A leaf page holds `count` 16-byte elements {flags u32, pos u32, ksize u32, vsize u32} then the bytes; `pos`
// is relative to the element's own offset, the value follows the key. A branch element is {pos u32, ksize
// u32, pgid u64}: the first key of a child page and the child's id. An element with flag 0x01 is a nested
// bucket: its value is the bucket header {root pgid, sequence}; root 0 means an inline bucket whose leaf page
// (header included) follows the header inside the value. A freelist page lists free page ids (u64 each); a
// count of 0xFFFF means the real count is the first u64.

export const PAGE_HEADER_BYTES = 16;
export const ELEMENT_BYTES = 16;
export const BUCKET_HEADER_BYTES = 16;
export const META_BYTES = 64;
/** Bytes of the meta struct the checksum covers (all fields before it). */
export const META_CHECKSUMMED_BYTES = 56;
export const BOLT_MAGIC = 0xed0cdaed;
export const BOLT_VERSION = 2;
export const DEFAULT_PAGE_SIZE = 4096;

export const PageFlag = { Branch: 0x01, Leaf: 0x02, Meta: 0x04, Freelist: 0x10 } as const;
export const BUCKET_LEAF_FLAG = 0x01;
/** A meta's freelist id when the freelist is not persisted (bbolt's NoFreelistSync). */
export const NO_FREELIST = 0xffffffffffffffffn;
/** A freelist page's count that says "the count is the first u64". */
export const FREELIST_COUNT_OVERFLOW = 0xffff;

export interface Meta {
  readonly pageSize: number;
  readonly flags: number;
  readonly root: number;
  readonly sequence: bigint;
  readonly freelist: bigint;
  /** Pages in use: the file's logical size is pgid × pageSize. */
  readonly pgid: number;
  readonly txid: bigint;
}

export interface PageHeader {
  readonly id: number;
  readonly flags: number;
  readonly count: number;
  readonly overflow: number;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const U64 = (1n << 64n) - 1n;

export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV_OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & U64;
  return h;
}

export function safeNumber(n: bigint, what: string): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`bbolt: ${what} ${n} is out of range`);
  return Number(n);
}

export function writePageHeader(buf: Buffer, at: number, h: PageHeader): void {
  buf.writeBigUInt64LE(BigInt(h.id), at);
  buf.writeUInt16LE(h.flags, at + 8);
  buf.writeUInt16LE(h.count, at + 10);
  buf.writeUInt32LE(h.overflow, at + 12);
}

export function readPageHeader(buf: Buffer, at: number): PageHeader {
  return {
    id: safeNumber(buf.readBigUInt64LE(at), "page id"),
    flags: buf.readUInt16LE(at + 8),
    count: buf.readUInt16LE(at + 10),
    overflow: buf.readUInt32LE(at + 12),
  };
}

/** Writes a meta (with its checksum) at `at`, the byte after a meta page's header. */
export function writeMeta(buf: Buffer, at: number, m: Meta): void {
  buf.writeUInt32LE(BOLT_MAGIC, at);
  buf.writeUInt32LE(BOLT_VERSION, at + 4);
  buf.writeUInt32LE(m.pageSize, at + 8);
  buf.writeUInt32LE(m.flags, at + 12);
  buf.writeBigUInt64LE(BigInt(m.root), at + 16);
  buf.writeBigUInt64LE(m.sequence, at + 24);
  buf.writeBigUInt64LE(m.freelist, at + 32);
  buf.writeBigUInt64LE(BigInt(m.pgid), at + 40);
  buf.writeBigUInt64LE(m.txid, at + 48);
  buf.writeBigUInt64LE(fnv1a64(buf.subarray(at, at + META_CHECKSUMMED_BYTES)), at + META_CHECKSUMMED_BYTES);
}

/** The meta at `at`, or why it is not a valid one (bad magic, version or checksum). */
export function readMeta(buf: Buffer, at: number): Meta | string {
  if (buf.length < at + META_BYTES) return "too short for a meta page";
  if (buf.readUInt32LE(at) !== BOLT_MAGIC) return "invalid magic (not a bbolt file)";
  const version = buf.readUInt32LE(at + 4);
  if (version !== BOLT_VERSION) return `version ${version}, want ${BOLT_VERSION}`;
  const checksum = buf.readBigUInt64LE(at + META_CHECKSUMMED_BYTES);
  if (checksum !== 0n && checksum !== fnv1a64(buf.subarray(at, at + META_CHECKSUMMED_BYTES)))
    return "meta checksum mismatch";
  return {
    pageSize: buf.readUInt32LE(at + 8),
    flags: buf.readUInt32LE(at + 12),
    root: safeNumber(buf.readBigUInt64LE(at + 16), "root page"),
    sequence: buf.readBigUInt64LE(at + 24),
    freelist: buf.readBigUInt64LE(at + 32),
    pgid: safeNumber(buf.readBigUInt64LE(at + 40), "page count"),
    txid: buf.readBigUInt64LE(at + 48),
  };
}

/** Whether the first bytes of a file are a bbolt meta page (magic after the page header). */
export function looksLikeBolt(head: Buffer): boolean {
  return head.length >= PAGE_HEADER_BYTES + 4 && head.readUInt32LE(PAGE_HEADER_BYTES) === BOLT_MAGIC;
}
