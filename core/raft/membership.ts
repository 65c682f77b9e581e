// Single-step membership changes on the Raft core (etcd 3.4's raft, thesis §4.1): the progress set built from a
// ConfState, adding voters and learners, promoting a learner, removing a member, and, at restart, the conf
// changes the application applied after its snapshot. Encoding a ConfChange is conf_change.ts's.

import { decodeConfChange } from "./conf_change.js";
import { assert } from "./errors.js";
import { Progress } from "./progress.js";
import type { Raft } from "./raft.js";
import { releasePendingReadIndexMessages } from "./read_index.js";
import { bcastAppend, sendAppend } from "./replication.js";
import type { Config, ConfState, NodeId } from "./types.js";
import { EntryType, NONE, StateType as ST } from "./types.js";

/** Adds a progress for every voter and learner of `cs` (to the ones `r` already has). */
export function applyConfState(r: Raft, cs: ConfState): void {
  const next = r.raftLog.lastIndex() + 1;
  for (const id of cs.voters) r.prs.set(id, new Progress(next, r.maxInflight, false));
  for (const id of cs.learners) {
    assert(!cs.voters.includes(id), `node ${id} is both voter and learner in the configuration`);
    r.prs.set(id, new Progress(next, r.maxInflight, true));
  }
  const self = r.prs.get(r.id);
  if (self !== undefined) self.match = next - 1;
  r.isLearner = self?.isLearner ?? false;
}

/**
 * The configuration at restart is the snapshot's plus the conf changes the application already applied
 * after it (entries in (snapshot index, applied]): those are not handed out again, so apply them here.
 */
export function replayAppliedConfChanges(r: Raft, storage: Config["storage"]): void {
  let snapIndex: number;
  try {
    snapIndex = storage.snapshot().metadata.index;
  } catch {
    return; // a snapshot being made: the application re-applies from the snapshot's index itself
  }
  const lo = Math.max(snapIndex + 1, r.raftLog.firstIndex());
  const hi = r.raftLog.applied;
  if (hi < lo) return;
  for (const e of r.raftLog.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER)) {
    if (e.type === EntryType.ConfChange) r.applyConfChange(decodeConfChange(e.data));
  }
}

export function addNode(r: Raft, id: NodeId, learner: boolean): void {
  let pr = r.prs.get(id);
  if (pr === undefined) {
    pr = new Progress(r.raftLog.lastIndex() + 1, r.maxInflight, learner);
    if (id === r.id) pr.match = r.raftLog.lastIndex();
    r.prs.set(id, pr);
  } else if (pr.isLearner === learner) {
    return; // already so
  } else {
    pr.isLearner = learner; // promotion (or demotion, which etcd's membership layer never proposes)
  }
  if (id === r.id) {
    r.isLearner = learner;
    if (learner && r.state === ST.Leader) {
      r.becomeFollower(r.term, NONE); // a demoted leader stops leading, as a removed one does
      return;
    }
  }
  // A new member counts as active, so check-quorum does not depose the leader before it has answered.
  pr.recentActive = true;
  if (r.state === ST.Leader) {
    if (r.maybeCommit()) {
      releasePendingReadIndexMessages(r);
      bcastAppend(r);
    } else if (id !== r.id) sendAppend(r, id);
  }
}

export function removeNode(r: Raft, id: NodeId): void {
  r.prs.delete(id);
  if (id === r.id) r.isLearner = false;
  if (r.state !== ST.Leader) return;
  if (id === r.id) {
    // A removed leader stops leading; the others elect a new one after their election timeout.
    r.becomeFollower(r.term, NONE);
    return;
  }
  if (r.leadTransferee === id) r.abortLeaderTransfer();
  if (r.votersCount() > 0 && r.maybeCommit()) {
    releasePendingReadIndexMessages(r);
    bcastAppend(r);
  }
}
