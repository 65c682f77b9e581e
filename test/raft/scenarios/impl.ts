// Binds the simulator (test/sim) to the real Raft core in core/raft, plus small helpers the scenarios share.
import { decodeConfChange } from "../../../core/raft/conf_change.js";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { initialTickAdvance } from "../../../core/raft/tick_policy.js";
import type { NodeId, Rng } from "../../../core/raft/types.js";
import { Cluster, type ClusterOptions, type RaftImpl } from "../../sim/cluster.js";

export const raftImpl: RaftImpl = {
  newRawNode: (config) => new RawNode(config),
  bootstrapStorage: (cs) => MemoryStorage.fromConfState(cs),
  emptyStorage: () => new MemoryStorage(),
  decodeConfChange: (data) => decodeConfChange(data),
  initialTickAdvance: (o) => initialTickAdvance(o),
};

export const ELECTION_TICKS = 10;

/** A cluster of `voters` (ids 1..n) with etcd-ts's defaults (pre-vote and check-quorum on) unless overridden. */
export function cluster(o: Partial<ClusterOptions> & { seed: number; n?: number }): Cluster {
  const voters = o.voters ?? Array.from({ length: o.n ?? 3 }, (_, i) => BigInt(i + 1));
  return new Cluster(raftImpl, { electionTicks: ELECTION_TICKS, heartbeatTicks: 1, ...o, voters });
}

/** An Rng that always draws 0: the member gets the shortest randomized election timeout (the worst case). */
export const SHORTEST_TIMEOUT_RNG: Rng = { nextInt: () => 0 };

export const ids = (...xs: number[]): NodeId[] => xs.map((x) => BigInt(x));
