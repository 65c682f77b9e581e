// Restoring a snapshot saved by `etcdctl snapshot save` from etcd-ts (a compacted copy of the backend followed by
// its SHA-256, as etcd's stream sends it) into a new member data dir. As etcdctl's restore: the data dir must not
// exist, the hash is checked unless skipped, keys and leases are kept, and the Raft history is not — the member
// starts a fresh log (and so a new cluster of its own flags) whose first entry follows the restored data.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BACKEND_FILE, Backend } from "../backend/backend.js";

const SHA256_BYTES = 32;

export class SnapshotRestoreError extends Error {}

export interface RestoreOptions {
  readonly file: string;
  readonly dataDir: string;
  readonly skipHashCheck?: boolean;
}

/** Writes `<dataDir>/member/kv.mdb` from the snapshot; returns the bytes of data restored. */
export async function restoreSnapshot(o: RestoreOptions): Promise<number> {
  if (existsSync(o.dataDir)) throw new SnapshotRestoreError(`data-dir ${JSON.stringify(o.dataDir)} exists`);
  const raw = readFileSync(o.file);
  let data = raw;
  if (o.skipHashCheck !== true) {
    if (raw.length <= SHA256_BYTES) throw new SnapshotRestoreError(`snapshot file ${JSON.stringify(o.file)} is too small (${raw.length} bytes)`);
    data = raw.subarray(0, raw.length - SHA256_BYTES);
    const want = raw.subarray(raw.length - SHA256_BYTES);
    if (!createHash("sha256").update(data).digest().equals(want)) throw new SnapshotRestoreError("expected sha256 mismatch: snapshot file integrity check failed");
  }
  const memberDir = join(o.dataDir, "member");
  mkdirSync(memberDir, { recursive: true });
  try {
    writeFileSync(join(memberDir, BACKEND_FILE), data);
    const backend = Backend.open(memberDir, { buckets: [], readWorkers: 0, syncIntervalMs: 0 });
    backend.resetConsistentIndex();
    await backend.close();
  } catch (err) {
    rmSync(o.dataDir, { recursive: true, force: true });
    throw err instanceof SnapshotRestoreError ? err : new SnapshotRestoreError(`not an etcd-ts snapshot: ${(err as Error).message}`);
  }
  return data.length;
}

