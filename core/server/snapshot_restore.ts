// Restoring a snapshot saved by `etcdctl snapshot save` into a new member data dir, as `etcdctl snapshot
// restore` does: the data dir must not exist; a file whose size is a multiple of 512 plus 32 ends with its
// SHA-256, which is checked unless skipped (a file without one needs --skip-hash-check); keys (every revision),
// leases, users, roles and alarms are kept; the old members are dropped and the member starts a new cluster
// made of --initial-cluster (ids from the peer URLs and --initial-cluster-token, as etcd computes them), stored
// in the backend so that a member started on the data dir uses it whatever its own cluster flags say.
// The file is etcd's bbolt database (from real etcd or from etcd-ts) or, as older etcd-ts versions sent,
// etcd-ts's own LMDB backend.
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync } from "node:fs";
import { createReadStream, copyFileSync, truncateSync, statSync } from "node:fs";
import { join } from "node:path";

import { BACKEND_FILE, Backend } from "../backend/backend.js";
import { looksLikeBolt } from "../bbolt/format.js";
import { BoltReader } from "../bbolt/reader.js";
import { AUTH_BUCKETS } from "../auth/auth_store.js";
import { LEASE_BUCKET } from "../lease/lessor.js";
import { Cluster, MEMBERSHIP_BUCKETS } from "../membership/cluster.js";
import type { Member } from "../membership/member_codec.js";
import { ALARM_BUCKET } from "./alarms.js";
import { importBolt } from "./bolt_import.js";
import { CLUSTER_META_BUCKET, CONF_OUTCOME_BUCKET, storeBootstrap } from "./membership_apply.js";
import { KEY_BUCKET, MVCC_META_BUCKET } from "../mvcc/layout.js";

const SHA256_BYTES = 32;
/** etcd's rule for "this file carries a hash": its size is 32 more than a multiple of 512. */
const HASHED_SIZE_MODULUS = 512;
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

export class SnapshotRestoreError extends Error {}

export interface RestoreOptions {
  readonly file: string;
  readonly dataDir: string;
  readonly skipHashCheck?: boolean;
  /** The new cluster (already validated): its members and id. */
  readonly members: readonly Member[];
  readonly clusterId: bigint;
}

export interface RestoreResult {
  /** Bytes of the database restored (the file less its hash). */
  readonly bytes: number;
  readonly format: "bbolt" | "etcd-ts";
}

/** Writes `<dataDir>/member/kv.mdb` from the snapshot with the new cluster's members. */
export async function restoreSnapshot(o: RestoreOptions): Promise<RestoreResult> {
  if (existsSync(o.dataDir)) throw new SnapshotRestoreError(`data-dir ${JSON.stringify(o.dataDir)} exists`);
  const size = statSync(o.file).size;
  const hashed = size % HASHED_SIZE_MODULUS === SHA256_BYTES;
  if (!hashed && o.skipHashCheck !== true)
    throw new SnapshotRestoreError("snapshot missing hash but --skip-hash-check=false");
  if (hashed && o.skipHashCheck !== true) await checkHash(o.file, size);
  const bytes = hashed ? size - SHA256_BYTES : size;
  const memberDir = join(o.dataDir, "member");
  mkdirSync(memberDir, { recursive: true });
  try {
    const format = isBolt(o.file) ? "bbolt" : "etcd-ts";
    const backend = format === "bbolt" ? await fromBolt(o.file, memberDir) : fromLmdb(o.file, bytes, memberDir);
    try {
      await backend.batch(undefined, (tx) => {
        for (const bucket of [...MEMBERSHIP_BUCKETS, CONF_OUTCOME_BUCKET, CLUSTER_META_BUCKET]) {
          for (const { key } of [...tx.range(bucket, {})]) tx.del(bucket, new Uint8Array(key));
        }
      });
      await backend.batch(undefined, (tx) => storeBootstrap(tx, Cluster.load(tx), o.clusterId, o.members));
    } finally {
      await backend.close();
    }
    return { bytes, format };
  } catch (err) {
    rmSync(o.dataDir, { recursive: true, force: true });
    throw err instanceof SnapshotRestoreError
      ? err
      : new SnapshotRestoreError(`not an etcd snapshot: ${(err as Error).message}`);
  }
}

async function checkHash(file: string, size: number): Promise<void> {
  const sha = createHash("sha256");
  for await (const chunk of createReadStream(file, { start: 0, end: size - SHA256_BYTES - 1 }))
    sha.update(chunk as Buffer);
  const want = Buffer.alloc(SHA256_BYTES);
  const fd = openSync(file, "r");
  try {
    readSync(fd, want, 0, SHA256_BYTES, size - SHA256_BYTES);
  } finally {
    closeSync(fd);
  }
  if (!sha.digest().equals(want))
    throw new SnapshotRestoreError("expected sha256 mismatch: snapshot file integrity check failed");
}

function isBolt(file: string): boolean {
  const head = Buffer.alloc(64);
  const fd = openSync(file, "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  return looksLikeBolt(head);
}

async function fromBolt(file: string, memberDir: string): Promise<Backend> {
  const bolt = BoltReader.open(file);
  try {
    const backend = Backend.open(memberDir, { buckets: SERVER_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
    try {
      await importBolt(bolt, backend);
    } catch (err) {
      await backend.close();
      throw err;
    }
    return backend;
  } finally {
    bolt.close();
  }
}

/** An etcd-ts backend file: copied (less its hash), its consistent index reset for the new Raft log. */
function fromLmdb(file: string, bytes: number, memberDir: string): Backend {
  const target = join(memberDir, BACKEND_FILE);
  copyFileSync(file, target);
  truncateSync(target, bytes);
  const backend = Backend.open(memberDir, { buckets: SERVER_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
  backend.resetConsistentIndex();
  return backend;
}
