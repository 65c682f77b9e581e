// The read and write views a backend hands out over its LMDB buckets: reads over the thread's current snapshot
// (or, inside a write transaction, that transaction), writes into the open transaction. Kept apart from
// backend.ts, which decides when a transaction runs.
import type { Database, RootDatabase } from "lmdb";

import type { Entry, RangeSpan, ReadView, WriteView } from "./read_view.js";

type BucketOf = (name: string) => Database<Uint8Array, Uint8Array>;

export function lmdbReadView(bucket: BucketOf): ReadView {
  return {
    get: (b, key) => bucket(b).get(key),
    range: (b, span) => rangeOf(bucket(b), span),
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

function rangeOf(db: Database<Uint8Array, Uint8Array>, span: RangeSpan): Iterable<Entry> {
  return db.getRange(span); // RangeSpan is a subset of lmdb's RangeOptions: no copy on this hot path
}
