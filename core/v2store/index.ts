// etcd 3.4's v2 key store: a tree of directories and files with TTLs, compare-and-swap, an event history and
// watchers. Pure: no I/O; the server persists what changed and feeds it the time.
export { V2Code, V2Error, type V2ErrorJson } from "./errors.js";
export { eventJson, isCreated, HISTORY_CAPACITY, type V2Action, type V2Event } from "./events.js";
export { formatNs, type NodeJson } from "./node.js";
export { applyV2, type V2Request } from "./request.js";
export { cleanPath, STAT_NAMES, V2Store, type NodeRecord, type TtlOptions } from "./store.js";
