// etcd 3.4's restart tick rule as a pure function the server calls once after starting the Raft node.
// A single-member cluster fast-forwards to one tick before its election (it elects itself at once). A member of
// a multi-member cluster first waits, bounded, until a peer is reachable, then advances to electionTicks-2,
// leaving two ticks for the leader's heartbeat to arrive; so restarting a follower causes no election. If no
// peer shows up within the bound it advances nothing. etcd 3.3 always fast-forwarded to electionTicks-1.

import { assert } from "./errors.js";

/** How long the server waits for a reachable peer before giving up on fast-forwarding (etcd: rafthttp.ConnReadTimeout). */
export const TICK_ADVANCE_WAIT_MS = 5000;
/** How often the server re-asks while waiting (etcd polls its transport's active peers every 50 ms). */
export const TICK_ADVANCE_POLL_MS = 50;

export type TickMode = "etcd34" | "etcd33";

export interface TickAdvanceInput {
  /** Voters in the configuration this member restarts with. */
  readonly clusterSize: number;
  readonly electionTicks: number;
  /** Peers that are reachable right now. */
  readonly activePeers: number;
  readonly mode: TickMode;
  /** The bounded wait for a peer is over (the server stops waiting): advance what is safe now. */
  readonly waitExpired?: boolean;
}

/** Ticks to advance right now, or "wait" until a peer is reachable (or the wait expires; then call again). */
export function initialTickAdvance(o: TickAdvanceInput): number | "wait" {
  assert(o.electionTicks >= 2, `electionTicks(${o.electionTicks}) must be ≥ 2`);
  assert(
    o.clusterSize >= 0 && o.activePeers >= 0,
    `clusterSize(${o.clusterSize}) and activePeers(${o.activePeers}) must be ≥ 0`,
  );
  if (o.mode === "etcd33" || o.clusterSize <= 1) return o.electionTicks - 1;
  if (o.activePeers > 0) return o.electionTicks - 2;
  return o.waitExpired === true ? 0 : "wait";
}
