// Whole-environment operations over a backend's buckets: the pages holding data (size and quota), the hash of
// every bucket, and copying a received backend file's buckets in. Kept apart from backend.ts, which owns the
// environment's lifecycle, batching and reads; each function here runs on what the caller hands it.
import { crc32 } from "node:zlib";
import { open, type Database, type RootDatabase } from "lmdb";

import { BackendFormatError, MAP_SIZE_BYTES, MAX_DBS, checkLmdbHeader } from "./backend_file.js";

type Buckets = ReadonlyMap<string, Database<Uint8Array, Uint8Array>>;

/** Bytes of the pages holding live data (etcd's db size in use), at most the file's size. */
export function bytesInUse(env: RootDatabase, dbs: Buckets, fileBytes: number): number {
  let pages = 0;
  let pageSize = 4096;
  for (const db of dbs.values()) {
    const s = db.getStats() as {
      pageSize: number;
      treeBranchPageCount: number;
      treeLeafPageCount: number;
      overflowPages: number;
    };
    pageSize = s.pageSize;
    pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
  }
  // The two meta pages and the main (root) database's pages are always in use.
  const root = env.getStats() as { treeBranchPageCount: number; treeLeafPageCount: number };
  pages += 2 + root.treeBranchPageCount + root.treeLeafPageCount;
  return Math.min(fileBytes, pages * pageSize);
}

/** CRC32 over every bucket's name, keys and values, buckets by name and entries in key order. */
export function hashBuckets(dbs: Buckets): number {
  let h = 0;
  for (const [name, db] of [...dbs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    h = crc32(name, h);
    for (const { key, value } of db.getRange({})) h = crc32(value, crc32(key, h));
  }
  return h;
}

/**
 * Replaces every bucket's contents with those of the backend file `received`, in one write transaction of
 * `env`. `isBackend(meta)` checks the source's meta bucket names an etcd-ts backend of this format.
 */
export function copyBucketsFrom(
  env: RootDatabase,
  dbs: Buckets,
  received: string,
  metaBucket: string,
  isBackend: (meta: Database<Uint8Array, Uint8Array>) => boolean,
): void {
  checkLmdbHeader(received);
  const src = open({ path: received, maxDbs: MAX_DBS, noSubdir: true, readOnly: true, mapSize: MAP_SIZE_BYTES });
  try {
    const meta = src.openDB<Uint8Array, Uint8Array>(metaBucket, { keyEncoding: "binary", encoding: "binary" });
    if (!isBackend(meta)) throw new BackendFormatError(received, "is not an etcd-ts backend");
    env.transactionSync(() => {
      for (const [name, db] of dbs) {
        for (const key of [...db.getKeys({})]) db.remove(key);
        const from = src.openDB<Uint8Array, Uint8Array>(name, { keyEncoding: "binary", encoding: "binary" });
        for (const { key, value } of from.getRange({})) db.put(key, value);
      }
    });
  } finally {
    void src.close();
  }
}
