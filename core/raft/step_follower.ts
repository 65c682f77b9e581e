// The follower's and the candidate's side of step (etcd raft's stepFollower and stepCandidate): proposals and
// reads forwarded to the leader, the vote tally of a campaign, and what both do with the leader's messages
// (append entries, heartbeats, snapshots).

import { campaign, CampaignType, poll } from "./election.js";
import { RaftError, RaftErrorCode } from "./errors.js";
import { EMPTY } from "./message.js";
import { VoteResult } from "./progress.js";
import type { Raft } from "./raft.js";
import { bcastAppend } from "./replication.js";
import type { Message } from "./types.js";
import { MessageType as MT, NONE, StateType as ST } from "./types.js";

export function stepCandidate(r: Raft, m: Message): void {
  const myVoteResp = r.state === ST.PreCandidate ? MT.PreVoteResp : MT.VoteResp;
  switch (m.type) {
    case MT.Prop:
      throw new RaftError(RaftErrorCode.ProposalDropped, "no leader");
    case MT.App:
      r.becomeFollower(m.term, m.from);
      handleAppendEntries(r, m);
      return;
    case MT.Heartbeat:
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return;
    case MT.Snap:
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return;
    case myVoteResp: {
      const res = poll(r, m.from, !m.reject);
      if (res === VoteResult.Won) {
        if (r.state === ST.PreCandidate) campaign(r, CampaignType.Election);
        else {
          r.becomeLeader();
          bcastAppend(r);
        }
      } else if (res === VoteResult.Lost) {
        r.becomeFollower(r.term, NONE);
      }
      return;
    }
    default:
      return; // MsgTimeoutNow and the rest: ignored while campaigning
  }
}

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MT.Prop:
      if (r.lead === NONE) throw new RaftError(RaftErrorCode.ProposalDropped, "no leader");
      if (r.disableProposalForwarding)
        throw new RaftError(RaftErrorCode.ProposalDropped, "proposal forwarding disabled");
      r.send({ ...m, term: 0, to: r.lead });
      return;
    case MT.App:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppendEntries(r, m);
      return;
    case MT.Heartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case MT.Snap:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case MT.TransferLeader:
      if (r.lead === NONE) return;
      r.send({ type: MT.TransferLeader, to: r.lead, from: m.from });
      return;
    case MT.TimeoutNow:
      // Leader transfer: campaign at once, skipping pre-vote, and force voters past their lease.
      if (r.promotable()) campaign(r, CampaignType.Transfer);
      return;
    case MT.ReadIndex:
      if (r.lead === NONE) return;
      r.send({ ...m, term: 0, to: r.lead });
      return;
    case MT.ReadIndexResp:
      r.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY });
      return;
    default:
      return;
  }
}

function handleAppendEntries(r: Raft, m: Message): void {
  if (!validAppend(m)) return; // malformed: ignore rather than risk the log
  if (m.index < r.raftLog.committed) {
    r.send({ type: MT.AppResp, to: m.from, index: r.raftLog.committed });
    return;
  }
  const mlast = r.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (mlast >= 0) {
    r.send({ type: MT.AppResp, to: m.from, index: mlast });
    return;
  }
  // Fast backtracking: hint the largest index whose term is ≤ the leader's logTerm.
  const hintIndex = r.raftLog.findConflictByTerm(Math.min(m.index, r.raftLog.lastIndex()), m.logTerm);
  const hintTerm = r.raftLog.termOrUndefined(hintIndex) ?? 0;
  r.send({ type: MT.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
}

function handleHeartbeat(r: Raft, m: Message): void {
  // The leader sends min(match, committed), so the commit is within our log; a larger one is bad input.
  if (m.commit <= r.raftLog.lastIndex()) r.raftLog.commitTo(m.commit);
  r.send(
    m.context === undefined
      ? { type: MT.HeartbeatResp, to: m.from }
      : { type: MT.HeartbeatResp, to: m.from, context: m.context },
  );
}

function handleSnapshot(r: Raft, m: Message): void {
  const snap = m.snapshot;
  if (snap === undefined) return;
  if (r.restore(snap)) r.send({ type: MT.AppResp, to: m.from, index: r.raftLog.lastIndex() });
  else r.send({ type: MT.AppResp, to: m.from, index: r.raftLog.committed });
}

/** A MsgApp's entries must be contiguous after m.index and no newer than the message's term. */
function validAppend(m: Message): boolean {
  if (m.index < 0 || m.commit < 0) return false;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.index !== m.index + 1 + i || e.term > m.term || e.term < m.logTerm) return false;
  }
  return true;
}
