// Proves the log's entry arena: MemoryStorage keeps small payloads as views into shared chunks (equal bytes, no
// reference to the caller's buffer, many entries per chunk), leaves empty and large payloads as they are, and a
// chunk that fills up gives way to a new one without touching entries already kept.

import { describe, expect, it } from "vitest";
import { ARENA_CHUNK_BYTES, ARENA_MAX_COPIED_BYTES, EntryArena } from "../../../core/raft/entry_arena.js";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { EntryType, type Entry } from "../../../core/raft/types.js";

function ent(index: number, bytes: number, fill = index & 0xff): Entry {
  return { index, term: 1, type: EntryType.Normal, data: new Uint8Array(bytes).fill(fill) };
}

describe("EntryArena", () => {
  it("MemoryStorage stores copies in a shared chunk, not the appended buffers", () => {
    const s = new MemoryStorage();
    const appended = [ent(1, 2103), ent(2, 2103), ent(3, 10)];
    s.append(appended);
    const kept = s.entries(1, 4, Infinity);
    expect(kept.map((e) => [e.index, e.term, e.type])).toEqual(appended.map((e) => [e.index, e.term, e.type]));
    for (let i = 0; i < kept.length; i++) {
      expect(kept[i]!.data).toEqual(appended[i]!.data);
      expect(kept[i]!.data.buffer).not.toBe(appended[i]!.data.buffer);
    }
    expect(kept[1]!.data.buffer).toBe(kept[0]!.data.buffer);
    expect(kept[2]!.data.buffer).toBe(kept[0]!.data.buffer);
    appended[0]!.data.fill(0xee);
    expect(s.entries(1, 2, Infinity)[0]!.data.every((b) => b === 1)).toBe(true);
  });

  it("leaves empty and large payloads in their own buffers", () => {
    const arena = new EntryArena();
    const empty = ent(1, 0),
      large = ent(2, ARENA_MAX_COPIED_BYTES + 1);
    expect(arena.keep(empty)).toBe(empty);
    expect(arena.keep(large)).toBe(large);
    expect(arena.keep(ent(3, ARENA_MAX_COPIED_BYTES)).data.buffer.byteLength).toBe(ARENA_CHUNK_BYTES);
  });

  it("starts a new chunk when the current one is full; earlier entries keep their bytes", () => {
    const arena = new EntryArena();
    const size = 3000,
      perChunk = Math.floor(ARENA_CHUNK_BYTES / size);
    const kept = Array.from({ length: perChunk + 1 }, (_, i) => arena.keep(ent(i + 1, size)));
    expect(kept[perChunk - 1]!.data.buffer).toBe(kept[0]!.data.buffer);
    expect(kept[perChunk]!.data.buffer).not.toBe(kept[0]!.data.buffer);
    kept.forEach((e, i) => expect(e.data.every((b) => b === ((i + 1) & 0xff))).toBe(true));
  });
});
