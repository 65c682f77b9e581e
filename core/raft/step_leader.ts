// The leader's side of step (etcd raft's stepLeader): heartbeat and check-quorum ticks, proposals, and the
// followers' answers that move their progress and the commit index (append and heartbeat responses, snapshot
// status, unreachable reports), plus leader transfer. ReadIndex requests are read_index.ts's.

import { RaftError, RaftErrorCode, assert } from "./errors.js";
import { EMPTY } from "./message.js";
import { quorumOf, type Progress } from "./progress.js";
import type { Raft } from "./raft.js";
import { handleReadIndexAck, leaderReadIndex, releasePendingReadIndexMessages } from "./read_index.js";
import { bcastAppend, bcastHeartbeat, maybeSendAppend, sendAppend, sendTimeoutNow } from "./replication.js";
import type { Message } from "./types.js";
import { EntryType, MessageType as MT, NONE } from "./types.js";

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case MT.Beat:
      bcastHeartbeat(r);
      return;
    case MT.CheckQuorum:
      if (!checkQuorumActive(r)) r.becomeFollower(r.term, NONE);
      return;
    case MT.Prop:
      propose(r, m);
      return;
    case MT.ReadIndex:
      leaderReadIndex(r, m);
      return;
  }
  const pr = r.prs.get(m.from);
  if (pr === undefined) return;
  switch (m.type) {
    case MT.AppResp:
      handleAppendResponse(r, m, pr);
      return;
    case MT.HeartbeatResp:
      handleHeartbeatResponse(r, m, pr);
      return;
    case MT.SnapStatus:
      if (pr.state !== "StateSnapshot") return;
      if (m.reject) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      // Wait for the next heartbeat response (or MsgAppResp) before probing again.
      pr.probeSent = true;
      return;
    case MT.Unreachable:
      if (pr.state === "StateReplicate") pr.becomeProbe();
      return;
    case MT.TransferLeader:
      handleTransferLeader(r, m, pr);
      return;
  }
}

function propose(r: Raft, m: Message): void {
  if (m.entries.length === 0) {
    assert(m.from !== r.id, "stepped empty MsgProp"); // our own API never does this
    return; // a peer's malformed proposal: ignore
  }
  if (!r.prs.has(r.id)) throw new RaftError(RaftErrorCode.ProposalDropped, "leader was removed from the configuration");
  if (r.leadTransferee !== NONE)
    throw new RaftError(RaftErrorCode.ProposalDropped, `leader transfer to ${r.leadTransferee} in progress`);
  let ents = m.entries;
  for (let i = 0; i < ents.length; i++) {
    if (ents[i]!.type !== EntryType.ConfChange) continue;
    if (r.pendingConfIndex > r.raftLog.applied) {
      // One conf change at a time: as etcd, the second becomes an empty normal entry (it is dropped, not queued).
      const copy = ents.slice();
      copy[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY };
      ents = copy;
    } else {
      r.pendingConfIndex = r.raftLog.lastIndex() + i + 1;
    }
  }
  if (!r.appendEntry(ents)) throw new RaftError(RaftErrorCode.ProposalDropped, "too many uncommitted entry bytes");
  bcastAppend(r);
}

function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (m.reject) {
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = r.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === "StateReplicate") pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  // Bad input: nobody can have acknowledged entries we never had (never let match pass our log).
  if (m.index > r.raftLog.lastIndex()) return;
  const oldPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index)) return;
  if (pr.state === "StateProbe") pr.becomeReplicate();
  else if (pr.state === "StateSnapshot" && pr.match >= pr.pendingSnapshot) {
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === "StateReplicate") pr.inflights.freeLE(m.index);

  if (r.maybeCommit()) {
    releasePendingReadIndexMessages(r);
    bcastAppend(r);
  } else if (oldPaused) sendAppend(r, m.from);
  // Fill the in-flight window with whatever else is ready.
  while (maybeSendAppend(r, m.from, false)) {
    // keep sending
  }
  if (m.from === r.leadTransferee && pr.match === r.raftLog.lastIndex()) sendTimeoutNow(r, m.from);
}

function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  pr.probeSent = false;
  if (pr.state === "StateReplicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.raftLog.lastIndex()) sendAppend(r, m.from);
  handleReadIndexAck(r, m);
}

function handleTransferLeader(r: Raft, m: Message, pr: Progress): void {
  if (pr.isLearner) return; // a learner cannot lead
  const transferee = m.from;
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) return;
    r.abortLeaderTransfer();
  }
  if (transferee === r.id) return;
  // The transfer must finish within an election timeout (the heartbeat tick aborts it after that).
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.raftLog.lastIndex()) sendTimeoutNow(r, transferee);
  else sendAppend(r, transferee);
}

/** Did a quorum of voters talk to us since the last check? Clears the marks for the next round. */
function checkQuorumActive(r: Raft): boolean {
  let active = 0;
  for (const [id, pr] of r.prs) {
    if (id === r.id) {
      if (!pr.isLearner) active++;
      continue;
    }
    if (pr.recentActive && !pr.isLearner) active++;
    pr.recentActive = false;
  }
  return r.promotable() && active >= quorumOf(r.votersCount());
}
