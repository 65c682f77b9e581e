// TypeScript shapes of etcd's v3 messages as they travel through grpc-js with LOADER_OPTIONS (load.ts):
// int64/uint64 as decimal strings on the way in (a writer may also pass a number or string), bytes as
// Buffer, enums by name. Shared by the client and, later, the server handlers.

/** Int64 is how a 64-bit field is written (decimal string or safe number) and read (decimal string). */
export type Int64In = string | number;

export interface ResponseHeader {
  readonly cluster_id: string;
  readonly member_id: string;
  readonly revision: string;
  readonly raft_term: string;
}

export interface KeyValue {
  readonly key: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly version: string;
  readonly value: Buffer;
  readonly lease: string;
}

export type SortOrder = "NONE" | "ASCEND" | "DESCEND";
export type SortTarget = "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";

export interface RangeRequest {
  key: Buffer;
  range_end?: Buffer;
  limit?: Int64In;
  revision?: Int64In;
  sort_order?: SortOrder;
  sort_target?: SortTarget;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: Int64In;
  max_mod_revision?: Int64In;
  min_create_revision?: Int64In;
  max_create_revision?: Int64In;
}

export interface RangeResponse {
  readonly header: ResponseHeader;
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: string;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease?: Int64In;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
}

export interface PutResponse {
  readonly header: ResponseHeader;
  readonly prev_kv: KeyValue | null;
}

export interface DeleteRangeRequest {
  key: Buffer;
  range_end?: Buffer;
  prev_kv?: boolean;
}

export interface DeleteRangeResponse {
  readonly header: ResponseHeader;
  readonly deleted: string;
  readonly prev_kvs: KeyValue[];
}

export type RequestOp =
  | { request_range: RangeRequest }
  | { request_put: PutRequest }
  | { request_delete_range: DeleteRangeRequest }
  | { request_txn: TxnRequest };

export interface ResponseOp {
  readonly response?: "response_range" | "response_put" | "response_delete_range" | "response_txn";
  readonly response_range?: RangeResponse | null;
  readonly response_put?: PutResponse | null;
  readonly response_delete_range?: DeleteRangeResponse | null;
  readonly response_txn?: TxnResponse | null;
}

export type CompareResult = "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
export type CompareTarget = "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";

export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Buffer;
  version?: Int64In;
  create_revision?: Int64In;
  mod_revision?: Int64In;
  value?: Buffer;
  lease?: Int64In;
  range_end?: Buffer;
}

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  readonly header: ResponseHeader;
  readonly succeeded: boolean;
  readonly responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: Int64In;
  physical?: boolean;
}

export interface CompactionResponse {
  readonly header: ResponseHeader;
}

export type WatchFilterType = "NOPUT" | "NODELETE";

export interface WatchCreateRequest {
  key: Buffer;
  range_end?: Buffer;
  start_revision?: Int64In;
  progress_notify?: boolean;
  filters?: WatchFilterType[];
  prev_kv?: boolean;
  watch_id?: Int64In;
  fragment?: boolean;
}

export type WatchRequest =
  | { create_request: WatchCreateRequest }
  | { cancel_request: { watch_id: Int64In } }
  | { progress_request: Record<string, never> };

export interface Event {
  readonly type: "PUT" | "DELETE";
  readonly kv: KeyValue | null;
  readonly prev_kv: KeyValue | null;
}

export interface WatchResponse {
  readonly header: ResponseHeader;
  readonly watch_id: string;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly fragment: boolean;
  readonly events: Event[];
}

export interface LeaseGrantRequest {
  TTL: Int64In;
  ID?: Int64In;
}

export interface LeaseGrantResponse {
  readonly header: ResponseHeader;
  readonly ID: string;
  readonly TTL: string;
  readonly error: string;
}

export interface LeaseRevokeResponse {
  readonly header: ResponseHeader;
}

export interface LeaseKeepAliveResponse {
  readonly header: ResponseHeader;
  readonly ID: string;
  readonly TTL: string;
}

export interface LeaseTimeToLiveResponse {
  readonly header: ResponseHeader;
  readonly ID: string;
  readonly TTL: string;
  readonly grantedTTL: string;
  readonly keys: Buffer[];
}

export interface StatusResponse {
  readonly header: ResponseHeader;
  readonly version: string;
  readonly dbSize: string;
  readonly leader: string;
  readonly raftIndex: string;
  readonly raftTerm: string;
  readonly raftAppliedIndex: string;
  readonly errors: string[];
  readonly dbSizeInUse: string;
  readonly isLearner: boolean;
}

export interface Member {
  readonly ID: string;
  readonly name: string;
  readonly peerURLs: string[];
  readonly clientURLs: string[];
  readonly isLearner: boolean;
}

export interface MemberListResponse {
  readonly header: ResponseHeader;
  readonly members: Member[];
}
