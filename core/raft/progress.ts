// The leader's view of each peer (etcd raft's Progress and Inflights), and the quorum arithmetic over voters.
// Invariant: match < next. States: probe (one MsgApp per heartbeat until a match is found), replicate
// (optimistic pipelining bounded by the in-flight window), snapshot (waiting for a snapshot to land).

import { assert } from "./errors.js";
import type { NodeId, ProgressState, ProgressStatus } from "./types.js";
import { ProgressState as PS } from "./types.js";

/** A ring of the last index of each MsgApp in flight to one peer, at most `size` of them. */
export class Inflights {
  private start = 0;
  count = 0;
  private readonly buffer: number[];

  constructor(readonly size: number) {
    assert(size > 0, `inflights size(${size}) must be > 0`);
    this.buffer = new Array<number>(size).fill(0);
  }

  add(last: number): void {
    assert(!this.full(), `cannot add into a full inflights (size ${this.size})`);
    this.buffer[(this.start + this.count) % this.size] = last;
    this.count++;
  }

  /** Frees every in-flight message whose last index is ≤ to. */
  freeLE(to: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= to) {
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.size;
    this.count--;
  }

  full(): boolean {
    return this.count === this.size;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = PS.Probe;
  /** Index of the snapshot in flight while in snapshot state (0 otherwise). */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Probe state: a MsgApp was sent and we wait for its answer (or the next heartbeat) before another. */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === PS.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(PS.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(PS.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(PS.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(PS.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an acknowledged index; returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * A MsgApp at `rejected` was refused; the follower hints its log may match up to `matchHint`. Returns false
   * for a stale rejection (out of order), true if next was moved back.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === PS.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case PS.Probe:
        return this.probeSent;
      case PS.Replicate:
        return this.inflights.full();
      default:
        return true;
    }
  }

  checkInvariant(id: NodeId): void {
    assert(this.match < this.next, `progress ${id}: match(${this.match}) >= next(${this.next})`);
  }

  toStatus(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
    };
  }
}

/** Votes needed among `voters` members: a strict majority. */
export function quorumOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The highest index stored on a quorum of voters (the q-th largest match). */
export function committedIndex(prs: ReadonlyMap<NodeId, Progress>): number {
  const matches: number[] = [];
  for (const pr of prs.values()) if (!pr.isLearner) matches.push(pr.match);
  if (matches.length === 0) return 0;
  matches.sort((a, b) => b - a);
  return matches[quorumOf(matches.length) - 1]!;
}

export const VoteResult = { Pending: "pending", Won: "won", Lost: "lost" } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** Tallies the votes of voters only (learners and unknown ids never count). */
export function voteResult(prs: ReadonlyMap<NodeId, Progress>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let voters = 0;
  let granted = 0;
  let rejected = 0;
  for (const [id, pr] of prs) {
    if (pr.isLearner) continue;
    voters++;
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = quorumOf(voters);
  if (granted >= q) return VoteResult.Won;
  if (voters - rejected < q) return VoteResult.Lost;
  return VoteResult.Pending;
}
