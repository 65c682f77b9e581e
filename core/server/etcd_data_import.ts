// Taking over a data dir that `etcdctl snapshot restore` made (etcd's layout: `member/wal` with the new cluster's
// membership entries, `member/snap/db` the bbolt backend): on its first start etcd-ts imports it into its own
// backend — keys with history, leases, auth, alarms (bolt_import.ts) and the members and ids the WAL records — and
// moves etcd's files to `member/etcd-import/` (kept, not read again). Only a WAL whose history starts at its
// beginning and whose entries are all applied to the db is taken: that is what a restore writes, and what an etcd
// member holds until its first snapshot. Anything else is refused by name rather than half imported.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

import { BACKEND_FILE, Backend } from "../backend/backend.js";
import { BoltReader } from "../bbolt/reader.js";
import { AUTH_BUCKETS } from "../auth/auth_store.js";
import { LEASE_BUCKET } from "../lease/lessor.js";
import { Cluster, MEMBERSHIP_BUCKETS } from "../membership/cluster.js";
import { decodeConfChangeContext, type Member } from "../membership/member_codec.js";
import { KEY_BUCKET, MVCC_META_BUCKET } from "../mvcc/layout.js";
import { ALARM_BUCKET } from "./alarms.js";
import { lockDataDir } from "./dir_lock.js";
import { importBolt, type ImportSummary } from "./bolt_import.js";
import { CONSISTENT_INDEX_KEY, ETCD_BUCKETS } from "./etcd_bolt_codec.js";
import { EtcdConfChangeType, readEtcdWal, walSegments, type EtcdWal } from "./etcd_wal_reader.js";
import { CLUSTER_META_BUCKET, CONF_OUTCOME_BUCKET, storeBootstrap } from "./membership_apply.js";

const SERVER_BUCKETS = [
  KEY_BUCKET,
  MVCC_META_BUCKET,
  LEASE_BUCKET,
  ALARM_BUCKET,
  ...AUTH_BUCKETS,
  ...MEMBERSHIP_BUCKETS,
  CONF_OUTCOME_BUCKET,
  CLUSTER_META_BUCKET,
];
const IMPORTED_DIR = "etcd-import";

export class EtcdImportError extends Error {}

export interface EtcdImport extends ImportSummary {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly members: readonly Member[];
}

/** Whether the data dir holds etcd's files and no etcd-ts backend yet. */
export function isEtcdDataDir(dataDir: string): boolean {
  const member = join(dataDir, "member");
  return (
    !existsSync(join(member, BACKEND_FILE)) &&
    existsSync(join(member, "snap", "db")) &&
    walSegments(join(member, "wal")).length > 0
  );
}

/**
 * Imports an etcd data dir (see the file comment); the caller then starts the member on it as usual. `saveIds`
 * runs before etcd's files are moved away, so a crash leaves either etcd's dir or the ids with the new backend.
 */
export async function importEtcdDataDir(
  dataDir: string,
  saveIds: (memberId: bigint, clusterId: bigint) => void,
): Promise<EtcdImport | undefined> {
  // Held while importing, so a second process started at the same time neither imports too nor reads a half-made dir.
  const lock = await lockDataDir(dataDir);
  try {
    return isEtcdDataDir(dataDir) ? await importLocked(dataDir, saveIds) : undefined;
  } finally {
    await lock.release();
  }
}

async function importLocked(
  dataDir: string,
  saveIds: (memberId: bigint, clusterId: bigint) => void,
): Promise<EtcdImport> {
  const member = join(dataDir, "member");
  const wal = readEtcdWal(join(member, "wal"));
  if (wal.snapshotIndex > 0) {
    throw new EtcdImportError(
      `etcd data dir ${dataDir}: its WAL starts after a snapshot at index ${wal.snapshotIndex}; save a snapshot from the running member and use etcd-ts snapshot restore`,
    );
  }
  const members = membersOf(wal);
  const me = members.find((m) => m.id === wal.memberId);
  if (me === undefined)
    throw new EtcdImportError(
      `etcd data dir ${dataDir}: member ${wal.memberId.toString(16)} is not among the members its WAL records`,
    );
  const bolt = BoltReader.open(join(member, "snap", "db"));
  const tmp = join(member, "import.tmp");
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  let summary: ImportSummary;
  try {
    const applied = consistentIndex(bolt);
    if (applied < wal.lastIndex) {
      // etcd records its applied index in the db only with writes to the key space, so entries past it (auth,
      // leases, conf changes) may or may not be in the db: replaying them could apply one twice.
      throw new EtcdImportError(
        `etcd data dir ${dataDir}: its WAL goes to index ${wal.lastIndex} but its db records entries applied up to ${applied} only; save a snapshot from the running member and use etcd-ts snapshot restore`,
      );
    }
    const backend = Backend.open(tmp, { buckets: SERVER_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
    try {
      summary = await importBolt(bolt, backend);
      await backend.batch(undefined, (tx) => storeBootstrap(tx, Cluster.load(tx), wal.clusterId, members));
    } finally {
      await backend.close();
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    bolt.close();
  }
  saveIds(wal.memberId, wal.clusterId);
  const kept = join(member, IMPORTED_DIR);
  mkdirSync(kept, { recursive: true });
  renameSync(join(member, "wal"), join(kept, "wal"));
  renameSync(join(member, "snap"), join(kept, "snap"));
  renameSync(join(tmp, BACKEND_FILE), join(member, BACKEND_FILE));
  rmSync(tmp, { recursive: true, force: true });
  return { ...summary, memberId: wal.memberId, clusterId: wal.clusterId, members };
}

/** The members after replaying the WAL's conf changes in order. */
function membersOf(wal: EtcdWal): Member[] {
  const byId = new Map<bigint, Member>();
  for (const cc of wal.confChanges) {
    if (cc.type === EtcdConfChangeType.RemoveNode) byId.delete(cc.nodeId);
    else {
      const m = decodeConfChangeContext(cc.context).member;
      if (m.id !== cc.nodeId)
        throw new EtcdImportError(
          `etcd wal: conf change for ${cc.nodeId.toString(16)} carries member ${m.id.toString(16)}`,
        );
      const before = byId.get(cc.nodeId);
      byId.set(
        cc.nodeId,
        cc.type === EtcdConfChangeType.UpdateNode && before !== undefined
          ? { ...before, peerUrls: m.peerUrls }
          : { ...m, isLearner: cc.type === EtcdConfChangeType.AddLearnerNode },
      );
    }
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function consistentIndex(bolt: BoltReader): number {
  for (const e of bolt.entries(Buffer.from(ETCD_BUCKETS.meta)) ?? []) {
    if (e.key.toString() === CONSISTENT_INDEX_KEY && e.value.length === 8) return Number(e.value.readBigUInt64BE(0));
  }
  return 0;
}
