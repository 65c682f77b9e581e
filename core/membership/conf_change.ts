// Member changes as they travel through Raft: etcd's ConfChange types (proto numbers AddNode 0, RemoveNode 1,
// UpdateNode 2, AddLearnerNode 3) with the member's JSON as context (a promote is AddNode with isPromote), and
// their application in Raft order. The shapes are structurally core/raft's ConfChange, without importing it.
import type { WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import type { Cluster } from "./cluster.js";
import { decodeConfChangeContext, encodeConfChangeContext, type Member } from "./member_codec.js";

export const ConfChangeKind = { AddNode: 0, RemoveNode: 1, UpdateNode: 2, AddLearnerNode: 3 } as const;
export type ConfChangeKind = (typeof ConfChangeKind)[keyof typeof ConfChangeKind];

export interface MemberConfChange {
  readonly type: ConfChangeKind;
  readonly nodeId: bigint;
  readonly context: Uint8Array;
}

export type MemberChange =
  | { readonly kind: "add"; readonly member: Member }
  | { readonly kind: "remove"; readonly id: bigint }
  | { readonly kind: "update"; readonly id: bigint; readonly peerUrls: readonly string[] }
  | { readonly kind: "promote"; readonly id: bigint };

const EMPTY = new Uint8Array(0);

/** The conf change to propose for a member change. */
export function toConfChange(c: MemberChange): MemberConfChange {
  switch (c.kind) {
    case "add":
      return {
        type: c.member.isLearner ? ConfChangeKind.AddLearnerNode : ConfChangeKind.AddNode,
        nodeId: c.member.id,
        context: encodeConfChangeContext({ member: c.member, isPromote: false }),
      };
    case "remove":
      return { type: ConfChangeKind.RemoveNode, nodeId: c.id, context: EMPTY };
    case "update": {
      const member: Member = { id: c.id, name: "", peerUrls: [...c.peerUrls].sort(), clientUrls: [], isLearner: false };
      return {
        type: ConfChangeKind.UpdateNode,
        nodeId: c.id,
        context: encodeConfChangeContext({ member, isPromote: false }),
      };
    }
    case "promote": {
      const member: Member = { id: c.id, name: "", peerUrls: [], clientUrls: [], isLearner: false };
      return {
        type: ConfChangeKind.AddNode,
        nodeId: c.id,
        context: encodeConfChangeContext({ member, isPromote: true }),
      };
    }
  }
}

/** Reads a committed conf change back; throws on a context that does not match its node id. */
export function fromConfChange(cc: MemberConfChange): MemberChange {
  if (cc.type === ConfChangeKind.RemoveNode) return { kind: "remove", id: cc.nodeId };
  const ctx = decodeConfChangeContext(cc.context);
  if (ctx.member.id !== cc.nodeId) {
    throw new Error(
      `membership: conf change for ${cc.nodeId.toString(16)} carries member ${ctx.member.id.toString(16)}`,
    );
  }
  if (cc.type === ConfChangeKind.UpdateNode) return { kind: "update", id: cc.nodeId, peerUrls: ctx.member.peerUrls };
  if (ctx.isPromote) return { kind: "promote", id: cc.nodeId };
  const isLearner = cc.type === ConfChangeKind.AddLearnerNode;
  return { kind: "add", member: { ...ctx.member, isLearner } };
}

/**
 * Applies a committed change on every member, in Raft order, inside the batch's write txn: etcd's apply-time
 * checks first; a refused change writes nothing and returns its error — the server then hands Raft the conf
 * change with node id 0 (etcd's raft.None), so Raft's configuration stays as it was.
 */
export function applyMemberChange(tx: WriteView, cluster: Cluster, c: MemberChange): EtcdError | undefined {
  try {
    switch (c.kind) {
      case "add":
        cluster.checkAdd(c.member);
        cluster.add(tx, c.member);
        return undefined;
      case "remove":
        cluster.checkRemove(c.id);
        cluster.remove(tx, c.id);
        return undefined;
      case "update":
        cluster.checkUpdate(c.id, c.peerUrls);
        cluster.update(tx, c.id, c.peerUrls);
        return undefined;
      case "promote":
        cluster.checkPromote(c.id);
        cluster.promote(tx, c.id);
        return undefined;
    }
  } catch (err) {
    if (err instanceof EtcdError) return err;
    throw err;
  }
}
