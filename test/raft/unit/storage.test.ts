// Proves MemoryStorage: bootstrapping from a configuration, append truncating a conflicting suffix, term and
// entries bounds (COMPACTED / UNAVAILABLE), size-limited reads, snapshots (SNAP_OUT_OF_DATE) and compaction.

import { describe, expect, it } from "vitest";
import { RaftError } from "../../../core/raft/errors.js";
import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { EntryType, type Entry } from "../../../core/raft/types.js";

function ent(index: number, term: number, bytes = 4): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(bytes) };
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof RaftError ? e.code : `not a RaftError: ${String(e)}`;
  }
  return undefined;
}

function filled(): MemoryStorage {
  const s = MemoryStorage.fromConfState({ voters: [1n], learners: [] });
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)]);
  return s;
}

describe("MemoryStorage", () => {
  it("fromConfState: empty log, snapshot at 0/0 holding the configuration", () => {
    const s = MemoryStorage.fromConfState({ voters: [1n, 2n], learners: [3n] });
    expect([s.firstIndex(), s.lastIndex(), s.term(0)]).toEqual([1, 0, 0]);
    expect(s.initialState().confState).toEqual({ voters: [1n, 2n], learners: [3n] });
    expect(s.snapshot().metadata).toEqual({ index: 0, term: 0, confState: { voters: [1n, 2n], learners: [3n] } });
    expect(s.entries(1, 1, 100)).toEqual([]);
  });

  it("append truncates the conflicting suffix and keeps what precedes it", () => {
    const s = filled();
    s.append([ent(3, 4), ent(4, 4)]);
    expect([s.lastIndex(), s.term(2), s.term(3), s.term(4)]).toEqual([4, 1, 4, 4]);
    expect(
      codeOf(() => s.append([ent(7, 4)])),
      "a gap is an invariant violation",
    ).toBe("INVARIANT");
  });

  it("entries and term are bounded: COMPACTED below, UNAVAILABLE above", () => {
    const s = filled();
    s.compact(2);
    expect(codeOf(() => s.term(1))).toBe("COMPACTED");
    expect(s.term(2), "the compaction point keeps its term").toBe(1);
    expect(codeOf(() => s.entries(2, 4, 1e9))).toBe("COMPACTED");
    expect(codeOf(() => s.term(6))).toBe("UNAVAILABLE");
    expect(codeOf(() => s.entries(3, 7, 1e9))).toBe("UNAVAILABLE");
    expect(s.entries(3, 6, 1e9).map((e) => e.index)).toEqual([3, 4, 5]);
  });

  it("entries respects maxSizeBytes but always returns at least one", () => {
    const s = MemoryStorage.fromConfState({ voters: [1n], learners: [] });
    s.append([ent(1, 1, 100), ent(2, 1, 100), ent(3, 1, 100)]);
    expect(s.entries(1, 4, 1).map((e) => e.index)).toEqual([1]);
    expect(s.entries(1, 4, 250).map((e) => e.index)).toEqual([1, 2]);
    expect(s.entries(1, 4, 1e9).map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it("createSnapshot, compact and applySnapshot; older snapshots are refused", () => {
    const s = filled();
    const snap = s.createSnapshot(4, { voters: [1n, 2n], learners: [] }, new Uint8Array([9]));
    expect(snap.metadata).toEqual({ index: 4, term: 2, confState: { voters: [1n, 2n], learners: [] } });
    expect(codeOf(() => s.createSnapshot(3, undefined, new Uint8Array()))).toBe("SNAP_OUT_OF_DATE");
    s.compact(4);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([5, 5]);
    const t = MemoryStorage.fromConfState({ voters: [1n], learners: [] });
    t.applySnapshot(snap);
    expect([t.firstIndex(), t.lastIndex(), t.term(4)]).toEqual([5, 4, 2]);
    expect(codeOf(() => t.applySnapshot({ ...snap, metadata: { ...snap.metadata, index: 3 } }))).toBe(
      "SNAP_OUT_OF_DATE",
    );
    expect(codeOf(() => t.compact(4))).toBe("COMPACTED");
  });

  it("append skips entries that are already compacted", () => {
    const s = filled();
    s.compact(3);
    s.append([ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3), ent(6, 3)]);
    expect([s.firstIndex(), s.lastIndex(), s.term(6)]).toEqual([4, 6, 3]);
  });
});
