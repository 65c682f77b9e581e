// ReadIndex on the leader (Raft thesis §6.4): a read is answered with the commit index once a heartbeat round
// shows this member still leads (ReadOnlySafe), or at once under check-quorum's lease (ReadOnlyLeaseBased).
// Reads that reach a new leader before it committed an entry of its term wait for that commit. The queue of
// reads waiting for heartbeat acks is read_only.ts.

import { EMPTY } from "./message.js";
import { quorumOf } from "./progress.js";
import type { Raft } from "./raft.js";
import type { Message } from "./types.js";
import { MessageType as MT, NONE, ReadOnlyOption as RO } from "./types.js";
import { bcastHeartbeatWithCtx } from "./replication.js";

/** Reads queued on a new leader before its first commit; more are dropped (the server retries them). */
export const MAX_PENDING_READ_INDEX = 4096;

export function leaderReadIndex(r: Raft, m: Message): void {
  const ctx = m.context ?? EMPTY;
  if (r.votersCount() <= 1 && r.promotable()) {
    answerRead(r, m, r.raftLog.committed, ctx);
    return;
  }
  // The commit index is only known to be current once this term has committed an entry; until then the read
  // waits (as newer etcd raft; 3.4 dropped it and let the server retry).
  if (!committedEntryInCurrentTerm(r)) {
    if (r.pendingReadIndexMessages.length < MAX_PENDING_READ_INDEX) r.pendingReadIndexMessages.push(m);
    return;
  }
  sendReadIndexResponse(r, m);
}

function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.raftLog.termOrUndefined(r.raftLog.committed) === r.term;
}

/** The leader's commit index moved: reads that waited for this term's first commit go ahead. */
export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !committedEntryInCurrentTerm(r)) return;
  const pending = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of pending) sendReadIndexResponse(r, m);
}

function sendReadIndexResponse(r: Raft, m: Message): void {
  const ctx = m.context ?? EMPTY;
  if (r.readOnlyOption === RO.Safe) {
    r.readOnly.addRequest(r.raftLog.committed, m, ctx);
    r.readOnly.recvAck(r.id, ctx);
    bcastHeartbeatWithCtx(r, ctx);
  } else {
    answerRead(r, m, r.raftLog.committed, ctx);
  }
}

/** A heartbeat response carrying a read's context: once a quorum of voters acked it, that read is answered. */
export function handleReadIndexAck(r: Raft, m: Message): void {
  if (r.readOnlyOption !== RO.Safe || m.context === undefined || m.context.length === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (acks === undefined) return;
  let voterAcks = 0;
  for (const id of acks) {
    const p = r.prs.get(id);
    if (p !== undefined && !p.isLearner) voterAcks++;
  }
  if (voterAcks < quorumOf(r.votersCount())) return;
  for (const rs of r.readOnly.advance(m.context)) answerRead(r, rs.req, rs.index, rs.ctx);
}

function answerRead(r: Raft, req: Message, index: number, ctx: Uint8Array): void {
  if (req.from === NONE || req.from === r.id) r.readStates.push({ index, requestCtx: ctx });
  else r.send({ type: MT.ReadIndexResp, to: req.from, index, context: ctx });
}
