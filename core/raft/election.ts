// Elections (Raft thesis §3.4) with pre-vote (§9.6) and the forced campaign that ends a leader transfer (§3.10):
// starting a campaign, counting the votes, and answering another member's (pre-)vote request.

import type { Raft } from "./raft.js";
import { VoteResult, voteResult } from "./progress.js";
import type { Message, NodeId } from "./types.js";
import { EntryType, MessageType as MT, NONE, StateType as ST } from "./types.js";

/** Vote context marking a campaign started by MsgTimeoutNow: voters grant it despite their leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode("CampaignTransfer");

export const CampaignType = { PreElection: "pre", Election: "election", Transfer: "transfer" } as const;
export type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

/** MsgHup: an election timeout passed (or the application asked); campaign unless leading or unable to. */
export function hup(r: Raft): void {
  if (r.state === ST.Leader) return;
  if (!r.promotable()) return;
  if (r.raftLog.committed > r.raftLog.applied && hasUnappliedConfChange(r)) return;
  campaign(r, r.preVote ? CampaignType.PreElection : CampaignType.Election);
}

function hasUnappliedConfChange(r: Raft): boolean {
  const ents = r.raftLog.slice(
    Math.max(r.raftLog.applied + 1, r.raftLog.firstIndex()),
    r.raftLog.committed + 1,
    Number.MAX_SAFE_INTEGER,
  );
  return ents.some((e) => e.type === EntryType.ConfChange);
}

export function campaign(r: Raft, t: CampaignType): void {
  if (!r.promotable()) return;
  let term: number;
  let voteType: "MsgPreVote" | "MsgVote";
  if (t === CampaignType.PreElection) {
    r.becomePreCandidate();
    voteType = MT.PreVote;
    term = r.term + 1; // ask as if campaigning, without raising our own term
  } else {
    r.becomeCandidate();
    voteType = MT.Vote;
    term = r.term;
  }
  const res = poll(r, r.id, true);
  if (res === VoteResult.Won) {
    if (t === CampaignType.PreElection) campaign(r, CampaignType.Election);
    else r.becomeLeader();
    return;
  }
  const index = r.raftLog.lastIndex();
  const logTerm = r.raftLog.lastTerm();
  for (const [id, pr] of r.prs) {
    if (id === r.id || pr.isLearner) continue;
    if (t === CampaignType.Transfer)
      r.send({ type: voteType, to: id, term, index, logTerm, context: CAMPAIGN_TRANSFER });
    else r.send({ type: voteType, to: id, term, index, logTerm });
  }
}

/** Records `id`'s vote (the first one counts) and returns the tally's outcome. */
export function poll(r: Raft, id: NodeId, granted: boolean): VoteResult {
  if (!r.votes.has(id)) r.votes.set(id, granted);
  return voteResult(r.prs, r.votes);
}

export function handleVoteRequest(r: Raft, m: Message): void {
  const respType = m.type === MT.Vote ? MT.VoteResp : MT.PreVoteResp;
  const canVote =
    r.vote === m.from || (r.vote === NONE && r.lead === NONE) || (m.type === MT.PreVote && m.term > r.term);
  if (canVote && r.raftLog.isUpToDate(m.index, m.logTerm)) {
    // A pre-vote is answered at the term it asks for, so the pre-candidate counts it.
    r.send({ type: respType, to: m.from, term: m.term });
    if (m.type === MT.Vote) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else if (r.term > 0) {
    r.send({ type: respType, to: m.from, term: r.term, reject: true });
  }
  // else: a member still at term 0 with a log (one seeded from a snapshot) rejects a pre-vote silently, like a
  // lost message; a rejection must carry a term, and the pre-candidate's would raise its term for nothing.
}
