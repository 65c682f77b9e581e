// The public API of the Raft core (core/raft): the pure Raft state machine — elections, replication, snapshots,
// ReadIndex, leader transfer, learners, conf changes — with no I/O, timers or randomness of its own.

export * from "./types.js";
export { RaftError, RaftErrorCode, assert } from "./errors.js";
export { RawNode } from "./raw_node.js";
export { MemoryStorage } from "./memory_storage.js";
export { encodeConfChange, decodeConfChange } from "./conf_change.js";
export { initialTickAdvance, TICK_ADVANCE_WAIT_MS, TICK_ADVANCE_POLL_MS } from "./tick_policy.js";
export type { TickAdvanceInput, TickMode } from "./tick_policy.js";
export { CAMPAIGN_TRANSFER, DEFAULT_MAX_INFLIGHT_MSGS, DEFAULT_MAX_SIZE_PER_MSG_BYTES } from "./raft.js";
