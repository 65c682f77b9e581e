// etcd 3.4's strict-reconfig arithmetic as pure functions over counts. "Started" is etcd's IsStarted: the member
// has published its name (members named in --initial-cluster count as started from bootstrap). Learners never
// count: callers pass voters only.

/** Votes needed among `voters` voting members. */
export function quorumOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/**
 * Adding one voter (unstarted) to `voters` of which `started` are started: the started ones must still be a
 * quorum of voters + 1. etcd lets a 1-member cluster grow to 2 anyway (its documented restore path) — the seed's
 * Figure 2: a bad peer URL then leaves the cluster without quorum.
 */
export function isReadyToAddVoter(voters: number, started: number): boolean {
  checkCounts(voters, started);
  const after = voters + 1;
  if (started === 1 && after === 2) return true;
  return started >= quorumOf(after);
}

/** Removing a voter: the started voters among the `otherVoters` that stay must be a quorum of them. */
export function isReadyToRemoveVoter(otherVoters: number, otherStarted: number): boolean {
  checkCounts(otherVoters, otherStarted);
  return otherStarted >= quorumOf(otherVoters);
}

/** Promoting a learner: it joins the voters and counts as started (etcd 3.4.23's rule). */
export function isReadyToPromote(voters: number, started: number): boolean {
  checkCounts(voters, started);
  return started + 1 >= quorumOf(voters + 1);
}

/**
 * The peer-connectivity half of removing a voter (etcd's mayRemoveMember): `active` voters (the local member
 * included) have been connected for the health interval; after the removal the active ones left must still be a
 * quorum of the voters left.
 */
export function isActiveQuorumAfterRemove(voters: number, active: number): boolean {
  checkCounts(voters, active);
  return active - 1 >= 1 + Math.floor((voters - 1) / 2);
}

function checkCounts(total: number, part: number): void {
  if (!(Number.isInteger(total) && Number.isInteger(part) && part >= 0 && part <= total)) {
    throw new Error(`membership: counts out of range: ${part} of ${total}`);
  }
}
