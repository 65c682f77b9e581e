// The public API of the Raft core.

export * from "./types.js";
export { RaftError, RaftErrorCode, assert } from "./errors.js";
export { RawNode } from "./raw_node.js";
export { MemoryStorage } from "./memory_storage.js";
export { encodeConfChange, decodeConfChange } from "./conf_change.js";
export { initialTickAdvance, TICK_ADVANCE_WAIT_MS, TICK_ADVANCE_POLL_MS } from "./tick_policy.js";
export type { TickAdvanceInput, TickMode } from "./tick_policy.js";
export { CAMPAIGN_TRANSFER, DEFAULT_MAX_INFLIGHT_MSGS, DEFAULT_MAX_SIZE_PER_MSG_BYTES } from "./raft.js";
