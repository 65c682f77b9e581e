// The leader's outgoing side of log replication (Raft thesis §3.5): a MsgApp to each follower as far as its
// progress allows (one probe at a time, or a window of in-flight appends), a snapshot when the entries it needs
// are compacted away, heartbeats carrying the commit index and a ReadIndex context, and MsgTimeoutNow.

import { RaftError, RaftErrorCode, assert } from "./errors.js";
import type { Progress } from "./progress.js";
import type { Raft } from "./raft.js";
import type { Entry, NodeId, Snapshot } from "./types.js";
import { MessageType as MT } from "./types.js";

export function sendAppend(r: Raft, to: NodeId): void {
  maybeSendAppend(r, to, true);
}

/** Sends entries (or a snapshot) to `to` if its progress allows; returns whether a message was sent. */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.prs.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  let logTerm: number | undefined;
  let ents: Entry[] | undefined;
  try {
    logTerm = r.raftLog.termOrUndefined(pr.next - 1);
    if (logTerm !== undefined) ents = r.raftLog.entries(pr.next, r.maxMsgSizeBytes);
  } catch (e) {
    if (!(e instanceof RaftError && e.code === RaftErrorCode.Compacted)) throw e;
    ents = undefined;
  }
  if (logTerm === undefined || ents === undefined) {
    // Only a compacted prefix calls for a snapshot; next-1 beyond our log would be a bug.
    assert(
      pr.next - 1 <= r.raftLog.lastIndex(),
      `progress ${to}: next(${pr.next}) > lastIndex+1(${r.raftLog.lastIndex() + 1})`,
    );
    return maybeSendSnapshot(r, to, pr);
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  const prevIndex = pr.next - 1;
  if (ents.length > 0) {
    const last = ents[ents.length - 1]!.index;
    if (pr.state === "StateReplicate") {
      pr.optimisticUpdate(last);
      pr.inflights.add(last);
    } else if (pr.state === "StateProbe") {
      pr.probeSent = true;
    }
  }
  r.send({ type: MT.App, to, index: prevIndex, logTerm, entries: ents, commit: r.raftLog.committed });
  return true;
}

function maybeSendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) return false;
  let snapshot: Snapshot;
  try {
    snapshot = r.raftLog.snapshot();
  } catch (e) {
    if (e instanceof RaftError && e.code === RaftErrorCode.SnapshotTemporarilyUnavailable) return false;
    throw e;
  }
  assert(snapshot.metadata.index > 0, "need non-empty snapshot");
  pr.becomeSnapshot(snapshot.metadata.index);
  r.send({ type: MT.Snap, to, snapshot });
  return true;
}

export function sendHeartbeat(r: Raft, to: NodeId, ctx: Uint8Array | undefined): void {
  const pr = r.prs.get(to);
  const commit = Math.min(pr === undefined ? 0 : pr.match, r.raftLog.committed);
  r.send(ctx === undefined ? { type: MT.Heartbeat, to, commit } : { type: MT.Heartbeat, to, commit, context: ctx });
}

export function bcastAppend(r: Raft): void {
  for (const id of r.prs.keys()) if (id !== r.id) sendAppend(r, id);
}

export function bcastHeartbeat(r: Raft): void {
  bcastHeartbeatWithCtx(r, r.readOnly.lastPendingRequestCtx());
}

export function bcastHeartbeatWithCtx(r: Raft, ctx: Uint8Array | undefined): void {
  for (const id of r.prs.keys()) if (id !== r.id) sendHeartbeat(r, id, ctx);
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send({ type: MT.TimeoutNow, to });
}
