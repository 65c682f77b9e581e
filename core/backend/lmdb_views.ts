// The read and write views a backend hands out over its LMDB buckets: reads over the thread's current snapshot
// (or, inside a write transaction, that transaction), writes into the open transaction. Kept apart from
// backend.ts, which decides when a transaction runs.
import type { Database, RootDatabase } from "lmdb";

import type { Entry, RangeSpan, ReadView, WriteView } from "./read_view.js";

/** A bucket's handle; with `views`, its zero-copy one (openScanHandle), for spans that take views. */
export type BucketOf = (name: string, views?: boolean) => Database<Uint8Array, Uint8Array>;

export function lmdbReadView(bucket: BucketOf): ReadView {
  return {
    get: (b, key) => bucket(b).get(key),
    range: (b, span) => rangeOf(bucket(b, span.views === true), span),
  };
}

/** A view for inside `env.transactionSync`: its writes go to that transaction. */
export function lmdbWriteView(env: RootDatabase, bucket: BucketOf): WriteView {
  const view: WriteView = {
    ...lmdbReadView(bucket),
    put: (b, key, value) => void bucket(b).put(key, value),
    del: (b, key) => void bucket(b).remove(key),
    // Inside a write transaction, lmdb-js runs a nested transactionSync as an abortable child transaction.
    atomic: <T>(fn: (tx: WriteView) => T): T => env.transactionSync(() => fn(view)) as T,
  };
  return view;
}

/**
 * A handle on bucket `name` whose range() hands out views instead of copies: its decoder returns a view of
 * lmdb-js's read buffer and its readKey (which lmdb-js 3 calls with its reused key buffer at every step) a view
 * of that, so a scan allocates no buffer per entry. Plain Uint8Arrays, not Buffers, so a caller's slice() copies.
 */
export function openScanHandle(env: RootDatabase, name: string): Database<Uint8Array, Uint8Array> {
  const noCopy = {
    encode: (v: Uint8Array): Uint8Array => v,
    decode: (bytes: Uint8Array, size: number): Uint8Array => new Uint8Array(bytes.buffer, bytes.byteOffset, size),
  };
  // lmdb-js takes a custom `encoder`; its typings do not list it.
  const options = { keyEncoding: "binary", encoder: noCopy } as unknown as Parameters<RootDatabase["openDB"]>[1];
  const db = env.openDB<Uint8Array, Uint8Array>(name, options);
  (db as unknown as { readKey: (buf: Uint8Array, start: number, end: number) => Uint8Array }).readKey = (
    buf,
    start,
    end,
  ) => new Uint8Array(buf.buffer, buf.byteOffset + start, end - start);
  return db;
}

function rangeOf(db: Database<Uint8Array, Uint8Array>, span: RangeSpan): Iterable<Entry> {
  return db.getRange(span); // RangeSpan is a subset of lmdb's RangeOptions: no copy on this hot path
}
