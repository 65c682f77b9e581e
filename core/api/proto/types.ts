// etcd's v3 messages as TypeScript types, generated into gen/ from the .proto files beside this module by
// proto-loader-gen-types (`npm run proto:types`) with the options the loader uses (load.ts). For each message,
// `X` is what a writer may hand grpc-js (every field optional, 64-bit integers as number or decimal string, bytes
// as Buffer) and `X__Output` what grpc-js hands a reader (64-bit integers as decimal strings, bytes as Buffer,
// enums by name, absent fields filled with their defaults, the chosen oneof member named). Only the messages the
// code names are re-exported here; the rest are in gen/.
export type * from "./gen/etcdserverpb/AlarmRequest.js";
export type * from "./gen/etcdserverpb/AlarmResponse.js";
export type * from "./gen/etcdserverpb/AuthRoleGetRequest.js";
export type * from "./gen/etcdserverpb/AuthRoleGetResponse.js";
export type * from "./gen/etcdserverpb/AuthRoleListRequest.js";
export type * from "./gen/etcdserverpb/AuthRoleListResponse.js";
export type * from "./gen/etcdserverpb/AuthUserGetRequest.js";
export type * from "./gen/etcdserverpb/AuthUserGetResponse.js";
export type * from "./gen/etcdserverpb/AuthUserListRequest.js";
export type * from "./gen/etcdserverpb/AuthUserListResponse.js";
export type * from "./gen/etcdserverpb/CompactionRequest.js";
export type * from "./gen/etcdserverpb/CompactionResponse.js";
export type * from "./gen/etcdserverpb/Compare.js";
export type * from "./gen/etcdserverpb/DefragmentRequest.js";
export type * from "./gen/etcdserverpb/DefragmentResponse.js";
export type * from "./gen/etcdserverpb/DeleteRangeRequest.js";
export type * from "./gen/etcdserverpb/DeleteRangeResponse.js";
export type * from "./gen/etcdserverpb/HashKVRequest.js";
export type * from "./gen/etcdserverpb/HashKVResponse.js";
export type * from "./gen/etcdserverpb/HashRequest.js";
export type * from "./gen/etcdserverpb/HashResponse.js";
export type * from "./gen/etcdserverpb/LeaseGrantRequest.js";
export type * from "./gen/etcdserverpb/LeaseGrantResponse.js";
export type * from "./gen/etcdserverpb/LeaseKeepAliveRequest.js";
export type * from "./gen/etcdserverpb/LeaseKeepAliveResponse.js";
export type * from "./gen/etcdserverpb/LeaseLeasesRequest.js";
export type * from "./gen/etcdserverpb/LeaseLeasesResponse.js";
export type * from "./gen/etcdserverpb/LeaseRevokeRequest.js";
export type * from "./gen/etcdserverpb/LeaseRevokeResponse.js";
export type * from "./gen/etcdserverpb/LeaseTimeToLiveRequest.js";
export type * from "./gen/etcdserverpb/LeaseTimeToLiveResponse.js";
export type * from "./gen/etcdserverpb/Member.js";
export type * from "./gen/etcdserverpb/MemberAddRequest.js";
export type * from "./gen/etcdserverpb/MemberAddResponse.js";
export type * from "./gen/etcdserverpb/MemberListRequest.js";
export type * from "./gen/etcdserverpb/MemberListResponse.js";
export type * from "./gen/etcdserverpb/MemberPromoteRequest.js";
export type * from "./gen/etcdserverpb/MemberRemoveRequest.js";
export type * from "./gen/etcdserverpb/MemberUpdateRequest.js";
export type * from "./gen/etcdserverpb/MoveLeaderRequest.js";
export type * from "./gen/etcdserverpb/MoveLeaderResponse.js";
export type * from "./gen/etcdserverpb/PutRequest.js";
export type * from "./gen/etcdserverpb/PutResponse.js";
export type * from "./gen/etcdserverpb/RangeRequest.js";
export type * from "./gen/etcdserverpb/RangeResponse.js";
export type * from "./gen/etcdserverpb/RequestOp.js";
export type * from "./gen/etcdserverpb/ResponseHeader.js";
export type * from "./gen/etcdserverpb/ResponseOp.js";
export type * from "./gen/etcdserverpb/SnapshotResponse.js";
export type * from "./gen/etcdserverpb/StatusRequest.js";
export type * from "./gen/etcdserverpb/StatusResponse.js";
export type * from "./gen/etcdserverpb/TxnRequest.js";
export type * from "./gen/etcdserverpb/TxnResponse.js";
export type * from "./gen/etcdserverpb/WatchCreateRequest.js";
export type * from "./gen/etcdserverpb/WatchRequest.js";
export type * from "./gen/etcdserverpb/WatchResponse.js";
export type * from "./gen/mvccpb/Event.js";
export type * from "./gen/mvccpb/KeyValue.js";
export type {
  _etcdserverpb_Compare_CompareResult__Output as CompareResult,
  _etcdserverpb_Compare_CompareTarget__Output as CompareTarget,
} from "./gen/etcdserverpb/Compare.js";
