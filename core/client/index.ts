// core/client's public surface: a small etcd v3 client over the .proto files of core/api, used by the harness
// (see README.md in this folder).
export { EtcdClient } from "./client.js";
export type {
  ClientOptions,
  Compare,
  DeleteOptions,
  DeleteResult,
  LeaseGrant,
  Op,
  OpResult,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult,
  TxnResult,
  TxnSpec,
} from "./client.js";
export { AuthApi, PERMISSION_TYPES } from "./auth_api.js";
export type { Permission, PermissionSpec, PermissionType } from "./auth_api.js";
export { ClusterApi } from "./cluster_api.js";
export type { Member, MemberAddResult, MembersResult } from "./cluster_api.js";
export { RETRY_POLICY } from "./connection.js";
export type { ConnectionOptions, TlsOptions } from "./connection.js";
export { CLIENT_ERROR_CODES, ClientCallError, errorCode, toClientError } from "./errors.js";
export { parseEndpoint, parseEndpoints } from "./endpoints.js";
export type { Endpoint } from "./endpoints.js";
export { LeaseKeepAlive } from "./lease_keepalive.js";
export { ALARM_TYPES, MaintenanceApi } from "./maintenance_api.js";
export type { Alarm, AlarmType, SnapshotChunk, Status } from "./maintenance_api.js";
export { Watcher } from "./watch.js";
export type { WatchBatch, WatchEvent, WatchOptions } from "./watch.js";
export { prefixEnd, summariseRange } from "./wire.js";
export type { Bytes, KeyValue, RangeSummary, ResponseHeader } from "./wire.js";
