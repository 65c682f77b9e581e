// Cluster service wrappers: member list/add/remove/update/promote, ids as bigint. MemberList is repeatable (a
// read); the changes are not (an UNAVAILABLE add may have been applied, and adding twice would fail or worse).
import type * as pb from "../api/proto/types.js";
import type { Connection } from "./connection.js";
import { big, header, type ResponseHeader } from "./wire.js";

export interface Member {
  readonly id: bigint;
  /** Empty until the member has started (an added member that has not joined yet). */
  readonly name: string;
  readonly peerUrls: string[];
  readonly clientUrls: string[];
  readonly isLearner: boolean;
}

export interface MembersResult {
  readonly header: ResponseHeader;
  readonly members: Member[];
}

export interface MemberAddResult extends MembersResult {
  readonly member: Member;
}

/** What every Cluster method answers with (MemberAdd adds the new member). */
type MembersResponse = pb.MemberListResponse__Output;

function member(m: pb.Member__Output): Member {
  return { id: big(m.ID), name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner };
}

function members(res: MembersResponse): MembersResult {
  return { header: header(res.header), members: res.members.map(member) };
}

export class ClusterApi {
  constructor(private readonly conn: Connection) {}

  async memberList(): Promise<MembersResult> {
    return members(await this.conn.unary<pb.MemberListRequest, MembersResponse>("Cluster", "MemberList", {}));
  }

  /** memberAdd announces a new member by its peer URLs (as a learner with `isLearner`). */
  async memberAdd(peerUrls: readonly string[], opts: { isLearner?: boolean } = {}): Promise<MemberAddResult> {
    if (peerUrls.length === 0) throw new Error("memberAdd needs at least one peer URL");
    const res = await this.conn.unary<pb.MemberAddRequest, pb.MemberAddResponse__Output>("Cluster", "MemberAdd", {
      peerURLs: [...peerUrls],
      isLearner: opts.isLearner ?? false,
    });
    if (res.member === null) throw new Error("MemberAdd response without the added member");
    return { ...members(res), member: member(res.member) };
  }

  async memberRemove(id: bigint): Promise<MembersResult> {
    return members(
      await this.conn.unary<pb.MemberRemoveRequest, MembersResponse>("Cluster", "MemberRemove", { ID: id.toString() }),
    );
  }

  /** memberUpdate replaces a member's peer URLs. */
  async memberUpdate(id: bigint, peerUrls: readonly string[]): Promise<MembersResult> {
    return members(
      await this.conn.unary<pb.MemberUpdateRequest, MembersResponse>("Cluster", "MemberUpdate", {
        ID: id.toString(),
        peerURLs: [...peerUrls],
      }),
    );
  }

  /** memberPromote makes a learner a voter (etcd refuses while the learner lags the leader). */
  async memberPromote(id: bigint): Promise<MembersResult> {
    return members(
      await this.conn.unary<pb.MemberPromoteRequest, MembersResponse>("Cluster", "MemberPromote", {
        ID: id.toString(),
      }),
    );
  }
}
