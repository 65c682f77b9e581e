// When etcd 3.4 lets a learner be promoted (etcdserver isLearnerReady): only the leader knows, from its Raft
// progress; the learner is in sync when its match index is at least 90% of the leader's own match index
// (readyPercent = 0.9, compared in float64 as etcd does — JS numbers are the same doubles). An id with no progress
// entry is reported ready, so the conf-change checks answer "member not found" / "not a learner" for it.

/** etcd's readyPercent. */
export const LEARNER_READY_PERCENT = 0.9;

export const LearnerReadiness = { Ready: "ready", NotReady: "not-ready", NotLeader: "not-leader" } as const;
export type LearnerReadiness = (typeof LearnerReadiness)[keyof typeof LearnerReadiness];

/** The part of raft's Status this needs (structurally a core/raft Status). */
export interface LeaderProgressView {
  /** The local member. */
  readonly id: bigint;
  /** Present only on the leader: every member's progress, the leader's own included. */
  readonly progress?: ReadonlyMap<bigint, { readonly match: number }>;
}

/** The pure rule: learner match ≥ 0.9 × leader match. */
export function isLearnerInSync(learnerMatch: number, leaderMatch: number): boolean {
  if (
    !(Number.isSafeInteger(learnerMatch) && Number.isSafeInteger(leaderMatch) && learnerMatch >= 0 && leaderMatch >= 0)
  ) {
    throw new Error(`membership: bad match indexes learner=${learnerMatch} leader=${leaderMatch}`);
  }
  return !(learnerMatch < leaderMatch * LEARNER_READY_PERCENT);
}

/** etcd's isLearnerReady over the local Raft status: NotLeader means "forward the promote to the leader". */
export function learnerReadiness(status: LeaderProgressView, learnerId: bigint): LearnerReadiness {
  const progress = status.progress;
  if (progress === undefined) return LearnerReadiness.NotLeader;
  const learner = progress.get(learnerId);
  if (learner === undefined) return LearnerReadiness.Ready;
  const leader = progress.get(status.id);
  if (leader === undefined) throw new Error(`membership: leader ${status.id.toString(16)} has no progress of its own`);
  return isLearnerInSync(learner.match, leader.match) ? LearnerReadiness.Ready : LearnerReadiness.NotReady;
}
