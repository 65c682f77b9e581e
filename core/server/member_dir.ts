// Opening a member's data directory (<data-dir>/member: the backend file, wal/ and snap/): the backend with every
// bucket the server keeps, the WAL, a snapshot install a crash interrupted, and a new member's first write.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { AUTH_BUCKETS } from "../auth/auth_store.js";
import { LEASE_BUCKET } from "../lease/lessor.js";
import { Cluster, MEMBERSHIP_BUCKETS } from "../membership/cluster.js";
import { KvStore } from "../mvcc/kv_store.js";
import { UNLIMITED } from "../mvcc/validate.js";
import { WalStorage } from "../wal/wal_storage.js";
import { ALARM_BUCKET } from "./alarms.js";
import { CLUSTER_META_BUCKET, CONF_OUTCOME_BUCKET, storeBootstrap } from "./membership_apply.js";
import type { ServerConfig } from "./server_config.js";
import { V2_BUCKET } from "./v2_keys.js";
import { finishSnapshotInstall } from "./snapshots.js";

/** Creates <data-dir>/member/snap (and the data dir) if missing: the directory lock needs the data dir to exist. */
export function makeMemberDir(dataDir: string): void {
  mkdirSync(join(dataDir, "member", "snap"), { recursive: true });
}

/** Every bucket a member keeps in its backend besides the KV store's own. */
export const MEMBER_BUCKETS = [
  LEASE_BUCKET,
  ALARM_BUCKET,
  ...AUTH_BUCKETS,
  ...MEMBERSHIP_BUCKETS,
  CONF_OUTCOME_BUCKET,
  CLUSTER_META_BUCKET,
  V2_BUCKET,
];

/** The member's backend and WAL, consistent with each other. The caller holds the directory lock. */
export async function openMemberDir(
  config: ServerConfig,
  onSyncError?: (err: Error) => void,
  onCommit?: (seconds: number) => void,
): Promise<{ kv: KvStore; storage: WalStorage }> {
  const memberDir = join(config.dataDir, "member");
  const kv = KvStore.open(memberDir, {
    extraBuckets: MEMBER_BUCKETS,
    // The proposer checks --max-request-bytes and --max-txn-ops; apply must not depend on a member's flags.
    limits: UNLIMITED,
    ...(config.readMode !== undefined ? { readMode: config.readMode } : {}),
    ...(onSyncError !== undefined ? { onSyncError } : {}),
    ...(onCommit !== undefined ? { onCommit } : {}),
    ...(config.backendBatchIntervalMs !== undefined ? { batchIntervalMs: config.backendBatchIntervalMs } : {}),
    ...(config.backendBatchLimit !== undefined ? { batchLimit: config.backendBatchLimit } : {}),
  });
  const storage = WalStorage.open(
    memberDir,
    config.walSegmentBytes !== undefined ? { segmentBytes: config.walSegmentBytes } : {},
  );
  await finishSnapshotInstall(kv, storage.snapshot().metadata.index, join(memberDir, "snap"));
  if (storage.lastIndex() === 0 && config.joinExisting !== true) {
    // Embedded without a member list: this member alone, with etcd's default peer URL.
    const members = config.initialMembers ?? [
      { id: config.memberId, name: config.name, peerUrls: ["http://localhost:2380"], clientUrls: [], isLearner: false },
    ];
    await kv.backend.batch(undefined, (tx) =>
      storeBootstrap(
        tx,
        kv.backend.readNow((v) => Cluster.load(v)),
        config.clusterId,
        members,
      ),
    );
  }
  return { kv, storage };
}
