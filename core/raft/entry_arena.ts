// Keeps the payloads of the entries a log holds in shared chunks instead of one ArrayBuffer each. A log holds up
// to --snapshot-count entries between compactions; as separate buffers each one also costs a JS ArrayBuffer, a
// native backing-store record and a malloc header (a few hundred bytes beside a small payload) and gives the
// garbage collector one more buffer to track and sweep. A view into a chunk costs only the view. Chunks are
// released as a whole once every entry in them has been compacted away.

import type { Entry } from "./types.js";

/** Bytes of one chunk. */
export const ARENA_CHUNK_BYTES = 256 * 1024;
/** Payloads larger than this keep their own buffer: copying them saves little and would waste chunk tails. */
export const ARENA_MAX_COPIED_BYTES = 16 * 1024;

export class EntryArena {
  #chunk = new Uint8Array(0);
  #used = 0;

  /** `e` with its payload copied into the current chunk (or `e` itself when empty or large). */
  keep(e: Entry): Entry {
    const n = e.data.byteLength;
    if (n === 0 || n > ARENA_MAX_COPIED_BYTES) return e;
    if (this.#used + n > this.#chunk.byteLength) {
      this.#chunk = new Uint8Array(ARENA_CHUNK_BYTES);
      this.#used = 0;
    }
    const data = this.#chunk.subarray(this.#used, this.#used + n);
    data.set(e.data);
    this.#used += n;
    return { term: e.term, index: e.index, type: e.type, data };
  }
}
