// core/client's public surface.
export { EtcdClient } from "./client.js";
export type {
  ClientOptions, Compare, DeleteOptions, DeleteResult, LeaseGrant, Op, OpResult, PutOptions, PutResult,
  RangeOptions, RangeResult, Status, TxnResult, TxnSpec,
} from "./client.js";
export { RETRY_POLICY } from "./connection.js";
export { ClientCallError, errorCode, toClientError } from "./errors.js";
export { parseEndpoint, parseEndpoints } from "./endpoints.js";
export type { Endpoint } from "./endpoints.js";
export { LeaseKeepAlive } from "./lease_keepalive.js";
export { Watcher } from "./watch.js";
export type { WatchBatch, WatchEvent, WatchOptions } from "./watch.js";
export { prefixEnd, summariseRange } from "./wire.js";
export type { Bytes, KeyValue, RangeSummary, ResponseHeader } from "./wire.js";
