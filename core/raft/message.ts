// Outgoing messages as the Raft core builds them: etcd's zero values for every field not given, in one fixed
// object shape, and the small byte helpers message handling shares.

import type { Entry, Message, NodeId } from "./types.js";
import { NONE } from "./types.js";

/** An empty payload: the entry a new leader appends, the context of a read that names none. */
export const EMPTY: Uint8Array = new Uint8Array(0);
const NO_ENTRIES: readonly Entry[] = [];

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type MessageInit = Partial<Mutable<Message>> & { type: Message["type"]; to: NodeId };

/** A message with etcd's zero values for every field not given. */
export function newMessage(init: MessageInit): Mutable<Message> {
  // Explicit fields (not a spread): this is on the hot path, and every message gets the same shape.
  const m: Mutable<Message> = {
    type: init.type,
    to: init.to,
    from: init.from ?? NONE,
    term: init.term ?? 0,
    logTerm: init.logTerm ?? 0,
    index: init.index ?? 0,
    entries: init.entries ?? NO_ENTRIES,
    commit: init.commit ?? 0,
    reject: init.reject ?? false,
    rejectHint: init.rejectHint ?? 0,
  };
  if (init.snapshot !== undefined) m.snapshot = init.snapshot;
  if (init.context !== undefined) m.context = init.context;
  return m;
}

export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
