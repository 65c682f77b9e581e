// Reads an etcd 3.4 bbolt database (a file saved by `etcdctl snapshot save` from real etcd) into a new etcd-ts
// backend: every revision of every key (tombstones included) at its revision, the compaction point, leases,
// the auth buckets and alarms. Members are not imported: as etcd's restore, the restored member starts a new
// cluster of its own (snapshot_restore.ts writes it). Writes go in batches of one write transaction each.
import { encodeU64, type Backend } from "../backend/backend.js";
import type { WriteView } from "../backend/read_view.js";
import type { BoltReader } from "../bbolt/reader.js";
import { AUTH_BUCKETS } from "../auth/auth_store.js";
import { encodeLeaseKey, encodeLeaseValue } from "../lease/lease_codec.js";
import { LEASE_BUCKET } from "../lease/lessor.js";
import { decodeKeyValue, encodeKeyValue } from "../mvcc/kv_codec.js";
import { KEY_BUCKET, MVCC_META_BUCKET, layoutKey } from "../mvcc/layout.js";
import { META_COMPACT_KEY, META_CURRENT_KEY } from "../mvcc/write_txn.js";
import { ALARM_BUCKET } from "./alarms.js";
import {
  ETCD_BUCKETS,
  FINISHED_COMPACT_KEY,
  SCHEDULED_COMPACT_KEY,
  decodeEtcdAlarm,
  decodeEtcdLease,
  parseRevKey,
} from "./etcd_bolt_codec.js";

const IMPORT_BATCH_ENTRIES = 5000;

export interface ImportSummary {
  readonly revision: number;
  readonly compactRevision: number;
  readonly keys: number;
  readonly leases: number;
}

/** Copies the etcd data of `bolt` into `backend` (a new, empty one). */
export async function importBolt(bolt: BoltReader, backend: Backend): Promise<ImportSummary> {
  const required = bolt.entries(Buffer.from(ETCD_BUCKETS.key));
  if (required === undefined) throw new Error(`no "${ETCD_BUCKETS.key}" bucket: not an etcd backend`);
  let revision = 1;
  let keys = 0;
  await inBatches(backend, required, (tx, e) => {
    const rev = parseRevKey(e.key);
    const kv = decodeKeyValue(e.value);
    tx.put(KEY_BUCKET, layoutKey(kv.key, rev), rev.tombstone ? new Uint8Array(0) : encodeKeyValue(kv));
    revision = Math.max(revision, rev.main);
    keys += 1;
  });
  const compactRevision = compactionPoint(bolt);
  revision = Math.max(revision, compactRevision);
  let leases = 0;
  await inBatches(backend, bolt.entries(Buffer.from(ETCD_BUCKETS.lease)) ?? [], (tx, e) => {
    const l = decodeEtcdLease(e.value);
    tx.put(
      LEASE_BUCKET,
      encodeLeaseKey(l.id),
      encodeLeaseValue({ ttlSeconds: l.ttl, remainingTtlSeconds: l.remainingTtl }),
    );
    leases += 1;
  });
  for (const bucket of AUTH_BUCKETS) {
    await inBatches(backend, bolt.entries(Buffer.from(bucket)) ?? [], (tx, e) =>
      tx.put(bucket, new Uint8Array(e.key), new Uint8Array(e.value)),
    );
  }
  await inBatches(backend, bolt.entries(Buffer.from(ETCD_BUCKETS.alarm)) ?? [], (tx, e) => {
    const a = decodeEtcdAlarm(e.key);
    const key = Buffer.alloc(9);
    key.writeBigUInt64BE(a.memberId);
    key.writeUInt8(a.alarm, 8);
    tx.put(ALARM_BUCKET, key, new Uint8Array(0));
  });
  await backend.batch(undefined, (tx) => {
    tx.put(MVCC_META_BUCKET, META_CURRENT_KEY, encodeU64(revision));
    if (compactRevision > 0) tx.put(MVCC_META_BUCKET, META_COMPACT_KEY, encodeU64(compactRevision));
  });
  return { revision, compactRevision, keys, leases };
}

/**
 * The compaction point (0 when never compacted): etcd's scheduled compaction when one was cut short (its older
 * revisions may be partly gone, so reads below it must fail as compacted), else its last finished one.
 */
function compactionPoint(bolt: BoltReader): number {
  let rev = 0;
  for (const e of bolt.entries(Buffer.from(ETCD_BUCKETS.meta)) ?? []) {
    const name = e.key.toString();
    if (name === FINISHED_COMPACT_KEY || name === SCHEDULED_COMPACT_KEY) rev = Math.max(rev, parseRevKey(e.value).main);
  }
  return rev;
}

async function inBatches<E>(backend: Backend, entries: Iterable<E>, put: (tx: WriteView, e: E) => void): Promise<void> {
  let batch: E[] = [];
  const flush = async (): Promise<void> => {
    const todo = batch;
    batch = [];
    await backend.batch(undefined, (tx) => {
      for (const e of todo) put(tx, e);
    });
  };
  for (const e of entries) {
    batch.push(e);
    if (batch.length >= IMPORT_BATCH_ENTRIES) await flush();
  }
  if (batch.length > 0) await flush();
}
