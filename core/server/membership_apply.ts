// Member changes on the apply path. A committed conf change is checked against the stored members (etcd's
// ValidateConfigurationChange) and applied inside the batch's write txn; its outcome (accepted or refused) is
// recorded under its Raft index in the same txn. Raft must see the same outcome whenever the entry passes by
// again — after a restart, or after a snapshot from the leader whose backend is ahead of its Raft snapshot —
// and the stored members are by then already past it, so the outcome is read back instead of re-checked.
import type { ReadView, WriteView } from "../backend/read_view.js";
import { encodeU64 } from "../backend/backend.js";
import type { EtcdError } from "../errors.js";
import type { Cluster, Member } from "../membership/cluster.js";
import { applyMemberChange, fromConfChange, type MemberChange } from "../membership/conf_change.js";
import type { Effect } from "../mvcc/types.js";
import type { ConfChange } from "../raft/index.js";

/** Backend bucket: Raft index (8 bytes big-endian) → 1 (applied) or 0 (refused). */
export const CONF_OUTCOME_BUCKET = "conf_outcomes";
/** Backend bucket of cluster-wide facts: the cluster id. */
export const CLUSTER_META_BUCKET = "cluster";
const CLUSTER_ID_KEY = new TextEncoder().encode("clusterID");

export interface ConfOutcome {
  readonly change: MemberChange;
  readonly error: EtcdError | undefined;
}

/** The write that applies one committed conf change and records its outcome under `index`. */
export function confChangeEffect(cluster: Cluster, cc: ConfChange, index: number): Effect {
  return {
    run: (tx: WriteView) => {
      const change = fromConfChange(cc);
      const error = applyMemberChange(tx, cluster, change);
      tx.put(CONF_OUTCOME_BUCKET, encodeU64(index), Uint8Array.of(error === undefined ? 1 : 0));
      const outcome: ConfOutcome = { change, error };
      return { value: outcome };
    },
    // A conf change that could not be applied (a malformed context, say) is refused, and recorded as refused so
    // that Raft sees the same outcome whenever the entry passes by again.
    refused: (tx: WriteView, err: EtcdError) => {
      tx.put(CONF_OUTCOME_BUCKET, encodeU64(index), Uint8Array.of(0));
      const outcome: ConfOutcome = { change: { kind: "remove", id: cc.nodeId }, error: err };
      return { value: outcome };
    },
  };
}

/** Whether the conf change at `index` was applied (undefined: not recorded, i.e. not yet applied here). */
export function recordedOutcome(view: ReadView, index: number): boolean | undefined {
  const v = view.get(CONF_OUTCOME_BUCKET, encodeU64(index));
  return v === undefined ? undefined : v[0] === 1;
}

/** A brand-new member's first write: the cluster id and the --initial-cluster members. */
export function storeBootstrap(tx: WriteView, cluster: Cluster, clusterId: bigint, members: readonly Member[]): void {
  const id = Buffer.alloc(8);
  id.writeBigUInt64BE(clusterId);
  tx.put(CLUSTER_META_BUCKET, CLUSTER_ID_KEY, id);
  for (const m of members) if (cluster.member(m.id) === undefined) cluster.add(tx, m);
}
