// Reads a bbolt file (format.ts): picks the current meta page, then walks a bucket's B+tree page by page with
// positional reads, so a large file is never loaded whole. Inline buckets (a small bucket stored inside its
// parent's leaf value) and nested buckets are followed like any other.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

import {
  BUCKET_HEADER_BYTES,
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  ELEMENT_BYTES,
  PAGE_HEADER_BYTES,
  PageFlag,
  readMeta,
  readPageHeader,
  safeNumber,
  type Meta,
  type PageHeader,
} from "./format.js";

export class BoltFormatError extends Error {}

export interface BoltEntry {
  readonly key: Buffer;
  readonly value: Buffer;
  /** A nested bucket (its value is a bucket header, not data). */
  readonly isBucket: boolean;
}

/** Where a bucket's tree lives: a page of the file, or an inline leaf page inside its parent's value. */
type BucketRoot = { readonly page: number } | { readonly inline: Buffer };

/** Nesting depth past which a tree is taken as corrupt (a cycle of page references). */
const MAX_DEPTH = 64;

export class BoltReader {
  readonly meta: Meta;
  #fd: number;
  readonly #fileBytes: number;

  private constructor(fd: number, meta: Meta, fileBytes: number) {
    this.#fd = fd;
    this.meta = meta;
    this.#fileBytes = fileBytes;
  }

  static open(path: string): BoltReader {
    const fd = openSync(path, "r");
    try {
      const fileBytes = fstatSync(fd).size;
      return new BoltReader(fd, pickMeta(fd, fileBytes), fileBytes);
    } catch (err) {
      closeSync(fd);
      throw err instanceof BoltFormatError ? err : new BoltFormatError(`bbolt: ${(err as Error).message}`);
    }
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  /** The names of the top-level buckets, in key order. */
  bucketNames(): Buffer[] {
    const out: Buffer[] = [];
    for (const e of this.#walk({ page: this.meta.root }, 0)) if (e.isBucket) out.push(e.key);
    return out;
  }

  /** Every entry of the top-level bucket `name` in key order, or undefined when there is no such bucket. */
  entries(name: Uint8Array): Iterable<BoltEntry> | undefined {
    for (const e of this.#walk({ page: this.meta.root }, 0)) {
      if (e.isBucket && e.key.equals(name)) return this.#walk(bucketRoot(e.value), 1);
    }
    return undefined;
  }

  *#walk(root: BucketRoot, depth: number): Generator<BoltEntry> {
    if (depth > MAX_DEPTH) throw new BoltFormatError("bbolt: page tree too deep (corrupt file)");
    if ("inline" in root) {
      yield* leafEntries(root.inline, readPageHeader(root.inline, 0));
      return;
    }
    const { buf, header } = this.#page(root.page);
    if (header.flags & PageFlag.Leaf) yield* leafEntries(buf, header);
    else if (header.flags & PageFlag.Branch) {
      for (const child of branchChildren(buf, header)) yield* this.#walk({ page: child }, depth + 1);
    } else throw new BoltFormatError(`bbolt: page ${root.page} is not a branch or leaf page (flags ${header.flags})`);
  }

  #page(id: number): { buf: Buffer; header: PageHeader } {
    const size = this.meta.pageSize;
    if (id < 2 || id >= this.meta.pgid)
      throw new BoltFormatError(`bbolt: page ${id} outside the file's ${this.meta.pgid} pages`);
    const first = this.#read(id * size, size);
    const header = readPageHeader(first, 0);
    if (header.id !== id) throw new BoltFormatError(`bbolt: page ${id} says it is page ${header.id}`);
    if (header.overflow === 0) return { buf: first, header };
    if (id + header.overflow >= this.meta.pgid)
      throw new BoltFormatError(`bbolt: page ${id} overflows past the file's end`);
    return { buf: this.#read(id * size, (header.overflow + 1) * size), header };
  }

  #read(position: number, length: number): Buffer {
    if (position + length > this.#fileBytes)
      throw new BoltFormatError(`bbolt: file ends at ${this.#fileBytes} bytes, before ${position + length}`);
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fd, buf, done, length - done, position + done);
      if (n === 0) throw new BoltFormatError(`bbolt: short read at ${position + done}`);
      done += n;
    }
    return buf;
  }
}

function pickMeta(fd: number, fileBytes: number): Meta {
  const read = (at: number, n: number): Buffer => {
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, at);
    return buf;
  };
  const first = read(0, PAGE_HEADER_BYTES + 64);
  const m0 = readMeta(first, PAGE_HEADER_BYTES);
  const pageSize = typeof m0 === "string" ? DEFAULT_PAGE_SIZE : m0.pageSize;
  const m1 =
    fileBytes >= pageSize * 2 ? readMeta(read(pageSize, PAGE_HEADER_BYTES + 64), PAGE_HEADER_BYTES) : "file too short";
  const valid = [m0, m1].filter((m): m is Meta => typeof m !== "string");
  if (valid.length === 0) throw new BoltFormatError(`bbolt: no valid meta page (${String(m0)}; ${String(m1)})`);
  const meta = valid.reduce((a, b) => (b.txid > a.txid ? b : a));
  if (meta.pageSize < 512 || meta.pageSize > 1 << 20)
    throw new BoltFormatError(`bbolt: page size ${meta.pageSize} out of range`);
  if (meta.root < 2 || meta.root >= meta.pgid)
    throw new BoltFormatError(`bbolt: root page ${meta.root} outside ${meta.pgid} pages`);
  return meta;
}

function bucketRoot(value: Buffer): BucketRoot {
  if (value.length < BUCKET_HEADER_BYTES) throw new BoltFormatError(`bbolt: bucket header of ${value.length} bytes`);
  const page = safeNumber(value.readBigUInt64LE(0), "bucket root");
  if (page !== 0) return { page };
  const inline = value.subarray(BUCKET_HEADER_BYTES);
  if (inline.length < PAGE_HEADER_BYTES) throw new BoltFormatError("bbolt: inline bucket without a page");
  return { inline };
}

function* leafEntries(buf: Buffer, header: PageHeader): Generator<BoltEntry> {
  for (let i = 0; i < header.count; i++) {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    if (at + ELEMENT_BYTES > buf.length) throw new BoltFormatError("bbolt: leaf element past its page");
    const flags = buf.readUInt32LE(at);
    const start = at + buf.readUInt32LE(at + 4);
    const ksize = buf.readUInt32LE(at + 8);
    const vsize = buf.readUInt32LE(at + 12);
    if (start + ksize + vsize > buf.length) throw new BoltFormatError("bbolt: leaf key/value past its page");
    yield {
      key: buf.subarray(start, start + ksize),
      value: buf.subarray(start + ksize, start + ksize + vsize),
      isBucket: (flags & BUCKET_LEAF_FLAG) !== 0,
    };
  }
}

function branchChildren(buf: Buffer, header: PageHeader): number[] {
  const out: number[] = [];
  for (let i = 0; i < header.count; i++) {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    if (at + ELEMENT_BYTES > buf.length) throw new BoltFormatError("bbolt: branch element past its page");
    out.push(safeNumber(buf.readBigUInt64LE(at + 8), "child page"));
  }
  return out;
}
