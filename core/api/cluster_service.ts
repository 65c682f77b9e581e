// etcd's Cluster service: MemberList, MemberAdd, MemberRemove, MemberUpdate and MemberPromote, answered with
// the member list as this member has applied it. With auth enabled, changing the membership needs the root role
// (etcd 3.4's checkMembershipOperationPermission); listing it does not.
import type * as grpc from "@grpc/grpc-js";
import type { EtcdServer, ResponseHeader } from "../server/etcd_server.js";
import { authInfoOf } from "./auth_service.js";
import { headerObject, int64, unary } from "./unary.js";

export interface MemberInfo {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export function clusterService(s: EtcdServer): grpc.UntypedServiceImplementation {
  const memberObject = (m: MemberInfo): Record<string, unknown> => ({
    ID: m.id.toString(),
    name: m.name,
    peerURLs: [...m.peerUrls],
    clientURLs: [...m.clientUrls],
    isLearner: m.isLearner,
  });
  const answer = (header: ResponseHeader, members: readonly MemberInfo[]): Record<string, unknown> => ({
    header: headerObject(header),
    members: members.map(memberObject),
  });
  const urls = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return {
    // etcd's Cluster service leaves the revision out of its headers (etcdctl shows none).
    MemberList: unary(async () => answer({ ...s.header(), revision: 0 }, s.members())),
    MemberAdd: unary(async (req: Record<string, unknown>, call) => {
      s.auth.checkAdmin(authInfoOf(s, call));
      const r = await s.memberAdd(urls(req["peerURLs"]), req["isLearner"] === true);
      return { ...answer({ ...r.header, revision: 0 }, r.members), member: memberObject(r.member) };
    }),
    MemberRemove: unary(async (req: Record<string, unknown>, call) => {
      s.auth.checkAdmin(authInfoOf(s, call));
      const r = await s.memberRemove(int64(req["ID"]));
      return answer({ ...r.header, revision: 0 }, r.members);
    }),
    MemberUpdate: unary(async (req: Record<string, unknown>, call) => {
      s.auth.checkAdmin(authInfoOf(s, call));
      const r = await s.memberUpdate(int64(req["ID"]), urls(req["peerURLs"]));
      return answer({ ...r.header, revision: 0 }, r.members);
    }),
    MemberPromote: unary(async (req: Record<string, unknown>, call) => {
      s.auth.checkAdmin(authInfoOf(s, call));
      const r = await s.memberPromote(int64(req["ID"]));
      return answer({ ...r.header, revision: 0 }, r.members);
    }),
  };
}
