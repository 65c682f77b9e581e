// Physical compaction of the `key` bucket, as etcd compacts: below the compaction revision each key keeps only
// its newest revision, and not even that when it is a tombstone. Compaction makes no new revision.
import { encodeU64 } from "../backend/backend.js";
import type { WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import { KEY_BUCKET, MVCC_META_BUCKET, REV_BYTES, revisionOf } from "./layout.js";
import { META_COMPACT_KEY } from "./write_txn.js";

/** Entries a compaction reads before it deletes what it found doomed among them. */
const COMPACT_CHUNK_ENTRIES = 10_000;

/**
 * Compacts at `rev` and records it in the meta bucket; returns the new compacted revision.
 * The scan goes in chunks of COMPACT_CHUNK_ENTRIES entries, deleting each chunk's doomed entries before it
 * goes on just past the last one read, so memory is bounded whatever the number of keys and revisions.
 */
export function applyCompact(tx: WriteView, rev: number, current: number, compacted: number): number {
  if (rev <= compacted) throw new EtcdError("COMPACTED", `compact ${rev} <= compacted ${compacted}`);
  if (rev > current) throw new EtcdError("FUTURE_REV", `compact ${rev} > current ${current}`);
  // The key being scanned: its first layout key, and its newest revision ≤ rev so far (kept unless superseded).
  let group: { first: Uint8Array; keep: { key: Uint8Array; tomb: boolean } | undefined } | undefined;
  let start: Uint8Array | undefined;
  for (;;) {
    const doomed: Uint8Array[] = [];
    let seen = 0;
    let last: Uint8Array | undefined;
    for (const { key, value } of tx.range(KEY_BUCKET, start === undefined ? {} : { start })) {
      last = key;
      seen += 1;
      if (group === undefined || !sameKeyPart(group.first, key)) {
        if (group?.keep?.tomb === true) doomed.push(group.keep.key);
        group = { first: key, keep: undefined };
      }
      if (revisionOf(key).main <= rev) {
        if (group.keep !== undefined) doomed.push(group.keep.key);
        group.keep = { key, tomb: value.length === 0 };
      }
      if (seen >= COMPACT_CHUNK_ENTRIES) break;
    }
    for (const k of doomed) tx.del(KEY_BUCKET, k);
    if (seen < COMPACT_CHUNK_ENTRIES || last === undefined) break;
    start = successorKey(last);
  }
  if (group?.keep?.tomb === true) tx.del(KEY_BUCKET, group.keep.key);
  tx.put(MVCC_META_BUCKET, META_COMPACT_KEY, encodeU64(rev));
  return rev;
}

/** Whether two layout keys belong to the same user key (equal but for the revision). */
export function sameKeyPart(a: Uint8Array, b: Uint8Array): boolean {
  const len = a.length - REV_BYTES;
  if (b.length - REV_BYTES !== len) return false;
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The smallest key greater than `key`. */
function successorKey(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}
