// The Maintenance Snapshot stream's file: etcd-ts's backend written as etcd 3.4's bbolt database, so
// `etcdctl snapshot status` and `etcdctl snapshot restore` accept it and real etcd starts on the result.
// A consistent copy of the backend is taken first (LMDB's compacting backup), then read in batches with a turn
// of the event loop between them, so a large store never blocks the server for long and memory holds a batch.
// etcd's key bucket is ordered by revision where etcd-ts's is ordered by user key, so the copy gets a scratch
// bucket keyed by etcd's revision keys, written batch by batch, and the bbolt file is written from that.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";

import { BACKEND_FILE, Backend, decodeU64 } from "../backend/backend.js";
import type { Entry } from "../backend/read_view.js";
import { BoltWriter } from "../bbolt/writer.js";
import { AUTH_BUCKETS } from "../auth/auth_store.js";
import { decodeLeaseKey, decodeLeaseValue } from "../lease/lease_codec.js";
import { LEASE_BUCKET } from "../lease/lessor.js";
import { MEMBERSHIP_BUCKETS, MEMBERS_BUCKET, REMOVED_MEMBERS_BUCKET } from "../membership/cluster.js";
import { decodeMember, memberIdOfKey } from "../membership/member_codec.js";
import { encodeKeyValue } from "../mvcc/kv_codec.js";
import { KEY_BUCKET, MVCC_META_BUCKET, revisionOf, userKeyOf } from "../mvcc/layout.js";
import { META_COMPACT_KEY } from "../mvcc/write_txn.js";
import { ALARM_BUCKET } from "./alarms.js";
import {
  CLUSTER_VERSION,
  CLUSTER_VERSION_KEY,
  CONSISTENT_INDEX_KEY,
  ETCD_BUCKETS,
  FINISHED_COMPACT_KEY,
  REMOVED_MEMBER_VALUE,
  SCHEDULED_COMPACT_KEY,
  encodeEtcdAlarm,
  encodeEtcdLease,
  encodeEtcdMember,
  etcdMemberKey,
  revKey,
} from "./etcd_bolt_codec.js";
import { CLUSTER_META_BUCKET, CONF_OUTCOME_BUCKET } from "./membership_apply.js";

/** A step reads (then writes) up to this many entries or bytes: a few milliseconds of main-thread work. */
export const EXPORT_BATCH_ENTRIES = 1000;
export const EXPORT_BATCH_BYTES = 1024 * 1024;
const BY_REVISION_BUCKET = "bolt_export_by_revision";
const COPY_BUCKETS = [
  KEY_BUCKET,
  MVCC_META_BUCKET,
  LEASE_BUCKET,
  ALARM_BUCKET,
  ...AUTH_BUCKETS,
  ...MEMBERSHIP_BUCKETS,
  CONF_OUTCOME_BUCKET,
  CLUSTER_META_BUCKET,
  BY_REVISION_BUCKET,
];

type Pair = readonly [Uint8Array, Uint8Array];

export interface ExportOptions {
  readonly file: string;
  /** Scratch space for the backend copy. */
  readonly workDir: string;
  /** Gives the event loop a turn between batches (default: one setImmediate). */
  readonly nextTurn?: () => Promise<unknown>;
}

/** Writes the bbolt snapshot of `backend` to `o.file`; returns its size in bytes. */
export async function exportBoltSnapshot(backend: Backend, o: ExportOptions): Promise<number> {
  const { file, workDir } = o;
  const turn = o.nextTurn ?? (() => nextTurn());
  const copyDir = join(workDir, "lmdb-copy");
  mkdirSync(copyDir, { recursive: true });
  await backend.backupTo(join(copyDir, BACKEND_FILE));
  const copy = Backend.open(copyDir, { buckets: COPY_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
  const out = BoltWriter.create(file);
  try {
    await indexByRevision(copy, turn);
    await writeBuckets(copy, out, turn);
    return out.finish();
  } catch (err) {
    out.abort();
    throw err;
  } finally {
    await copy.close();
    rmSync(copyDir, { recursive: true, force: true });
  }
}

/** The entries of a bucket in key order, a batch at a time, yielding the event loop between batches. */
async function* scan(b: Backend, bucket: string, turn: () => Promise<unknown>): AsyncGenerator<Entry[]> {
  let start: Uint8Array | undefined;
  for (;;) {
    const from = start;
    const { batch, more } = b.readNow((v) => {
      const got: Entry[] = [];
      let bytes = 0;
      // One entry past the batch tells whether the bucket goes on.
      for (const e of v.range(bucket, {
        ...(from === undefined ? {} : { start: from }),
        limit: EXPORT_BATCH_ENTRIES + 1,
      })) {
        if (
          got.length === EXPORT_BATCH_ENTRIES ||
          (got.length > 0 && bytes + e.key.length + e.value.length > EXPORT_BATCH_BYTES)
        )
          return { batch: got, more: true };
        got.push({ key: new Uint8Array(e.key), value: new Uint8Array(e.value) });
        bytes += e.key.length + e.value.length;
      }
      return { batch: got, more: false };
    });
    if (batch.length > 0) yield batch;
    if (!more) return;
    const last = (batch[batch.length - 1] as Entry).key;
    start = new Uint8Array(last.length + 1);
    start.set(last);
    await turn();
  }
}

/** Fills the scratch bucket: etcd's revision key → etcd's value, for every entry of etcd-ts's key bucket. */
async function indexByRevision(copy: Backend, turn: () => Promise<unknown>): Promise<void> {
  for await (const batch of scan(copy, KEY_BUCKET, turn)) {
    await copy.batch(undefined, (tx) => {
      for (const { key, value } of batch) {
        const rev = revisionOf(key);
        const tombstone = value.length === 0;
        const etcdValue = tombstone
          ? encodeKeyValue({
              key: userKeyOf(key),
              createRevision: 0,
              modRevision: 0,
              version: 0,
              value: new Uint8Array(0),
              lease: 0n,
            })
          : value;
        tx.put(BY_REVISION_BUCKET, revKey(rev.main, rev.sub, tombstone), etcdValue);
      }
    });
  }
}

async function writeBuckets(copy: Backend, out: BoltWriter, turn: () => Promise<unknown>): Promise<void> {
  const small = (name: string, pairs: Pair[]): void => {
    out.beginBucket(Buffer.from(name));
    for (const [k, v] of pairs.sort((a, b) => Buffer.compare(a[0], b[0]))) out.put(k, v);
  };
  const all = (bucket: string): Entry[] =>
    copy.readNow((v) =>
      [...v.range(bucket, {})].map((e) => ({ key: new Uint8Array(e.key), value: new Uint8Array(e.value) })),
    );
  const text = (s: string): Uint8Array => Buffer.from(s);

  small(
    ETCD_BUCKETS.alarm,
    all(ALARM_BUCKET).map(({ key }) => [
      encodeEtcdAlarm(Buffer.from(key).readBigUInt64BE(0), key[8] ?? 0),
      new Uint8Array(0),
    ]),
  );
  for (const name of AUTH_BUCKETS)
    small(
      name,
      all(name).map(({ key, value }) => [key, value]),
    );
  small(ETCD_BUCKETS.cluster, [[text(CLUSTER_VERSION_KEY), text(CLUSTER_VERSION)]]);

  out.beginBucket(text(ETCD_BUCKETS.key));
  for await (const batch of scan(copy, BY_REVISION_BUCKET, turn))
    for (const { key, value } of batch) out.put(key, value);

  out.beginBucket(text(ETCD_BUCKETS.lease));
  for await (const batch of scan(copy, LEASE_BUCKET, turn)) {
    for (const { key, value } of batch) {
      const id = decodeLeaseKey(key);
      const r = decodeLeaseValue(id, value);
      out.put(key, encodeEtcdLease({ id, ttl: r.ttlSeconds, remainingTtl: r.remainingTtlSeconds }));
    }
  }

  small(
    ETCD_BUCKETS.members,
    all(MEMBERS_BUCKET).map(({ value }) => {
      const m = decodeMember(value);
      return [etcdMemberKey(m.id), encodeEtcdMember(m)];
    }),
  );
  small(
    ETCD_BUCKETS.membersRemoved,
    all(REMOVED_MEMBERS_BUCKET).map(({ key }) => [etcdMemberKey(memberIdOfKey(key)), text(REMOVED_MEMBER_VALUE)]),
  );
  small(ETCD_BUCKETS.meta, metaPairs(copy));
}

/** etcd's meta bucket: the consistent index and, once compacted, both compaction revisions. */
function metaPairs(copy: Backend): Pair[] {
  const ci = Buffer.alloc(8);
  ci.writeBigUInt64BE(BigInt(copy.consistentIndex()));
  const pairs: Pair[] = [[Buffer.from(CONSISTENT_INDEX_KEY), ci]];
  const compacted = copy.readNow((v) => v.get(MVCC_META_BUCKET, META_COMPACT_KEY));
  const compactRev = compacted === undefined ? 0 : decodeU64(compacted);
  if (compactRev > 0) {
    pairs.push([Buffer.from(FINISHED_COMPACT_KEY), revKey(compactRev, 0, false)]);
    pairs.push([Buffer.from(SCHEDULED_COMPACT_KEY), revKey(compactRev, 0, false)]);
  }
  return pairs;
}
