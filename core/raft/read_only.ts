// Pending ReadIndex requests on the leader (etcd raft's readOnly, ReadOnlySafe): each waits for a quorum of
// heartbeat acks carrying its context; acknowledging a later request acknowledges every earlier one.

import type { Message, NodeId } from "./types.js";

export interface ReadIndexStatus {
  readonly req: Message;
  /** The leader's commit index when the request arrived. */
  readonly index: number;
  readonly acks: Set<NodeId>;
  readonly ctx: Uint8Array;
}

export function ctxKey(ctx: Uint8Array): string {
  let s = "";
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Context keys in arrival order. */
  private queue: string[] = [];

  addRequest(index: number, m: Message, ctx: Uint8Array): void {
    const key = ctxKey(ctx);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Set(), ctx });
    this.queue.push(key);
  }

  /** Records a heartbeat ack for ctx; returns the acks so far, or undefined if ctx is not pending. */
  recvAck(from: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /** Removes and returns every request up to and including ctx's, in arrival order. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (rs !== undefined) out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)?.ctx;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
