// Writes a new bbolt file from top-level buckets whose keys arrive in ascending order (a bulk load): leaf pages
// are filled and written as entries come, so memory holds one page of entries plus one branch entry (first key
// and page id) per written page. Page ids are handed out in order: 0 and 1 the metas, 2 an empty freelist, then
// each bucket's leaves and branch levels, then the root bucket's page(s); every page below the high-water mark
// is reachable, which bbolt's consistency check (`tx.Check`, run by `etcdctl snapshot status`) requires.
// Buckets are never inline; bbolt reads a bucket with its own root page the same way.
import { closeSync, openSync, writeSync } from "node:fs";

import {
  BUCKET_HEADER_BYTES,
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  ELEMENT_BYTES,
  PAGE_HEADER_BYTES,
  PageFlag,
  writeMeta,
  writePageHeader,
} from "./format.js";

interface LeafEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly flags: number;
}

interface BranchEntry {
  readonly key: Uint8Array;
  readonly pgid: number;
}

/** Above this many elements a page's u16 count would overflow. */
const MAX_PAGE_ELEMENTS = 0xffff;

function compare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export class BoltWriter {
  readonly pageSize: number;
  #fd: number;
  #nextPage = 3;
  #roots: LeafEntry[] = [];
  #bucket: { name: Uint8Array; tree: TreeBuilder } | undefined;

  private constructor(fd: number, pageSize: number) {
    this.#fd = fd;
    this.pageSize = pageSize;
  }

  /** Creates (or truncates) `path`. */
  static create(path: string, pageSize = DEFAULT_PAGE_SIZE): BoltWriter {
    return new BoltWriter(openSync(path, "w"), pageSize);
  }

  /** Starts a top-level bucket (ending the one before); names must be distinct. */
  beginBucket(name: Uint8Array): void {
    this.#endBucket();
    if (this.#roots.some((r) => compare(r.key, name) === 0))
      throw new Error(`bbolt writer: bucket ${Buffer.from(name).toString()} written twice`);
    this.#bucket = { name: new Uint8Array(name), tree: new TreeBuilder(this) };
  }

  /** Adds a key to the current bucket; keys must be strictly ascending. The bytes are copied. */
  put(key: Uint8Array, value: Uint8Array): void {
    if (this.#bucket === undefined) throw new Error("bbolt writer: put outside a bucket");
    if (key.length === 0) throw new Error("bbolt writer: empty key");
    this.#bucket.tree.add({ key: new Uint8Array(key), value: new Uint8Array(value), flags: 0 });
  }

  /**
   * Writes the root bucket, the freelist and both metas and closes; returns the file's size in bytes. No fsync:
   * a snapshot file is streamed and discarded, and a caller that keeps one syncs it.
   */
  finish(): number {
    this.#endBucket();
    const root = new TreeBuilder(this);
    for (const r of [...this.#roots].sort((a, b) => compare(a.key, b.key))) root.add(r);
    const rootPage = root.finish();
    const pages = this.#nextPage;
    const head = Buffer.alloc(this.pageSize * 3);
    for (const [id, txid] of [
      [0, 2n],
      [1, 1n],
    ] as const) {
      writePageHeader(head, id * this.pageSize, { id, flags: PageFlag.Meta, count: 0, overflow: 0 });
      writeMeta(head, id * this.pageSize + PAGE_HEADER_BYTES, {
        pageSize: this.pageSize,
        flags: 0,
        root: rootPage,
        sequence: 0n,
        freelist: 2n,
        pgid: pages,
        txid,
      });
    }
    writePageHeader(head, 2 * this.pageSize, { id: 2, flags: PageFlag.Freelist, count: 0, overflow: 0 });
    this.#writeAt(head, 0);
    closeSync(this.#fd);
    this.#fd = -1;
    return pages * this.pageSize;
  }

  /** Closes the file without finishing it (after an error). */
  abort(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Writes one page (spanning overflow pages as needed) at the next free id; returns its id. */
  writePage(build: (buf: Buffer) => void, bytes: number, flags: number, count: number): number {
    const span = Math.max(1, Math.ceil(bytes / this.pageSize));
    const id = this.#nextPage;
    this.#nextPage += span;
    const buf = Buffer.alloc(span * this.pageSize);
    writePageHeader(buf, 0, { id, flags, count, overflow: span - 1 });
    build(buf);
    this.#writeAt(buf, id * this.pageSize);
    return id;
  }

  #endBucket(): void {
    const b = this.#bucket;
    if (b === undefined) return;
    this.#bucket = undefined;
    const header = Buffer.alloc(BUCKET_HEADER_BYTES);
    header.writeBigUInt64LE(BigInt(b.tree.finish()), 0);
    this.#roots.push({ key: b.name, value: header, flags: BUCKET_LEAF_FLAG });
  }

  #writeAt(buf: Buffer, position: number): void {
    let done = 0;
    while (done < buf.length) done += writeSync(this.#fd, buf, done, buf.length - done, position + done);
  }
}

/** One B+tree: leaves written as they fill, then branch levels until a single root page remains. */
class TreeBuilder {
  #leaf: LeafEntry[] = [];
  #leafBytes = PAGE_HEADER_BYTES;
  #children: BranchEntry[] = [];
  #last: Uint8Array | undefined;

  constructor(private readonly out: BoltWriter) {}

  add(e: LeafEntry): void {
    if (this.#last !== undefined && compare(this.#last, e.key) >= 0) throw new Error("bbolt writer: keys out of order");
    this.#last = e.key;
    const size = ELEMENT_BYTES + e.key.length + e.value.length;
    if (
      this.#leaf.length > 0 &&
      (this.#leafBytes + size > this.out.pageSize || this.#leaf.length === MAX_PAGE_ELEMENTS)
    )
      this.#flushLeaf();
    this.#leaf.push(e);
    this.#leafBytes += size;
  }

  /** Returns the root page id. An empty tree is one empty leaf page, as bbolt creates one. */
  finish(): number {
    if (this.#leaf.length > 0 || this.#children.length === 0) this.#flushLeaf();
    let level = this.#children;
    while (level.length > 1) level = this.#branchLevel(level);
    return (level[0] as BranchEntry).pgid;
  }

  #flushLeaf(): void {
    const entries = this.#leaf;
    const pgid = this.out.writePage((buf) => fillLeaf(buf, entries), this.#leafBytes, PageFlag.Leaf, entries.length);
    this.#children.push({ key: entries[0]?.key ?? new Uint8Array(0), pgid });
    this.#leaf = [];
    this.#leafBytes = PAGE_HEADER_BYTES;
  }

  #branchLevel(children: readonly BranchEntry[]): BranchEntry[] {
    const up: BranchEntry[] = [];
    let page: BranchEntry[] = [];
    let bytes = PAGE_HEADER_BYTES;
    const flush = (): void => {
      const entries = page;
      const pgid = this.out.writePage((buf) => fillBranch(buf, entries), bytes, PageFlag.Branch, entries.length);
      up.push({ key: (entries[0] as BranchEntry).key, pgid });
      page = [];
      bytes = PAGE_HEADER_BYTES;
    };
    for (const c of children) {
      const size = ELEMENT_BYTES + c.key.length;
      if (page.length > 0 && (bytes + size > this.out.pageSize || page.length === MAX_PAGE_ELEMENTS)) flush();
      page.push(c);
      bytes += size;
    }
    flush();
    return up;
  }
}

function fillLeaf(buf: Buffer, entries: readonly LeafEntry[]): void {
  let data = PAGE_HEADER_BYTES + entries.length * ELEMENT_BYTES;
  entries.forEach((e, i) => {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    buf.writeUInt32LE(e.flags, at);
    buf.writeUInt32LE(data - at, at + 4);
    buf.writeUInt32LE(e.key.length, at + 8);
    buf.writeUInt32LE(e.value.length, at + 12);
    buf.set(e.key, data);
    buf.set(e.value, data + e.key.length);
    data += e.key.length + e.value.length;
  });
}

function fillBranch(buf: Buffer, entries: readonly BranchEntry[]): void {
  let data = PAGE_HEADER_BYTES + entries.length * ELEMENT_BYTES;
  entries.forEach((e, i) => {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    buf.writeUInt32LE(data - at, at);
    buf.writeUInt32LE(e.key.length, at + 4);
    buf.writeBigUInt64LE(BigInt(e.pgid), at + 8);
    buf.set(e.key, data);
    data += e.key.length;
  });
}
