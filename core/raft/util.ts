// Small helpers shared inside core/raft.

import type { Entry } from "./types.js";

/** Approximate wire size of an entry (data plus a fixed header), used for maxSizePerMsgBytes batching. */
export function entrySizeBytes(e: Entry): number {
  return e.data.length + 16;
}

/** The longest prefix of `ents` within `maxSizeBytes`, but always at least one entry (etcd's limitSize). */
export function limitSize(ents: Entry[], maxSizeBytes: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = entrySizeBytes(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySizeBytes(ents[n]!);
    if (size > maxSizeBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** Sum of entrySizeBytes over the entries' data (the uncommitted-size bound counts payloads only). */
export function payloadsSizeBytes(ents: readonly Entry[]): number {
  let n = 0;
  for (const e of ents) n += e.data.length;
  return n;
}
