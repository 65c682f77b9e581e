// etcd's HashKV over the `key` bucket: CRC32 of every stored (layout key, value) whose main revision is at or
// below the hashed revision, in key order. The store reads it in chunks with the event loop free between them.
import { crc32 } from "node:zlib";

import type { ReadView } from "../backend/read_view.js";
import { HASH_KV_CHUNK_ENTRIES } from "../limits.js";
import { KEY_BUCKET, compareBytes, revisionOf } from "./layout.js";

export interface HashChunk {
  readonly hash: number;
  /** The last layout key hashed (the next chunk starts after it). */
  readonly after: Uint8Array | undefined;
  readonly done: boolean;
}

export const FIRST_HASH_CHUNK: HashChunk = { hash: 0, after: undefined, done: false };

/** CRC32 of up to HASH_KV_CHUNK_ENTRIES more (layout key, value) pairs with main revision ≤ rev. */
export function hashChunk(view: ReadView, rev: number, from: HashChunk): HashChunk {
  let hash = from.hash;
  let last: Uint8Array | undefined;
  let n = 0;
  for (const { key, value } of view.range(KEY_BUCKET, from.after === undefined ? {} : { start: from.after })) {
    if (from.after !== undefined && n === 0 && last === undefined && compareBytes(key, from.after) === 0) {
      last = from.after;
      continue;
    }
    if (n === HASH_KV_CHUNK_ENTRIES) return { hash, after: last, done: false };
    n++;
    last = Uint8Array.from(key);
    if (revisionOf(key).main > rev) continue;
    hash = crc32(value, crc32(key, hash));
  }
  return { hash, after: last, done: true };
}
