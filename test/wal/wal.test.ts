// Proves the WAL and its raft Storage: what is saved replays after reopen (hard state, entries, a newer
// leader's overwrite of a suffix); segments roll over and are released after a snapshot; a torn tail is cut
// back to the last whole record and reported; a corrupt middle record, a foreign or newer-format segment and
// a corrupt snapshot file are errors naming the file; compacted/unavailable reads are raft's errors.
import {
  appendFileSync,
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { startPowerLossModel, stopPowerLossModel } from "../../core/failpoints.js";
import { RaftError } from "../../core/raft/errors.js";
import type { Entry } from "../../core/raft/types.js";
import { SnapError } from "../../core/wal/snap.js";
import { readRecord } from "../../core/wal/record.js";
import { WalError } from "../../core/wal/wal.js";
import { WalStorage } from "../../core/wal/wal_storage.js";

let dir: string;
let open: WalStorage[] = [];
/** A small segment size for the damage tests (files are written back whole). */
const SEGMENT = 1024 * 1024;

function openStorage(segmentBytes = 64 * 1024 * 1024): WalStorage {
  const s = WalStorage.open(dir, { segmentBytes });
  open.push(s);
  return s;
}

function closeAll(): void {
  for (const s of open) s.close();
  open = [];
}

const entry = (index: number, term = 1, size = 10): Entry => ({
  term,
  index,
  type: 0,
  data: new Uint8Array(size).fill(index % 251),
});
const range = (lo: number, hi: number, term = 1, size = 10): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => entry(lo + i, term, size));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "wal-"));
});

afterEach(() => {
  closeAll();
  rmSync(dir, { recursive: true, force: true });
});

describe("WAL replay", () => {
  it("replays hard state and entries; a newer term's entries replace the old suffix", () => {
    const s = openStorage();
    s.save({ hardState: { term: 1, vote: 2n, commit: 3 }, entries: range(1, 5) }, true);
    s.save({ hardState: { term: 2, vote: 3n, commit: 3 }, entries: range(4, 6, 2) }, true);
    closeAll();
    const r = openStorage();
    expect(r.initialState().hardState).toEqual({ term: 2, vote: 3n, commit: 3 });
    expect([r.firstIndex(), r.lastIndex(), r.term(3), r.term(4), r.term(6)]).toEqual([1, 6, 1, 2, 2]);
    expect(r.entries(1, 7, Infinity).map((e) => e.data[0])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.repaired).toBeUndefined();
  });

  it("rolls segments over, releases them after a snapshot, and recovers from snapshot + remaining log", () => {
    const s = openStorage(4096);
    for (let i = 1; i <= 200; i += 10)
      s.save({ hardState: { term: 1, vote: 1n, commit: i + 9 }, entries: range(i, i + 9, 1, 100) }, true);
    const before = s.walSegments.length;
    expect(before, `segments ${before}`).toBeGreaterThan(4);
    s.createSnapshot(150, { voters: [1n], learners: [] }, new Uint8Array([7, 7]), 20);
    expect(s.walSegments.length, "old segments released").toBeLessThan(before);
    expect(s.firstIndex()).toBe(131);
    closeAll();
    const r = openStorage(4096);
    expect([r.snapshot().metadata.index, r.firstIndex(), r.lastIndex()]).toEqual([150, 151, 200]);
    expect([...r.snapshot().data]).toEqual([7, 7]);
    expect(r.initialState().confState.voters).toEqual([1n]);
    expect(r.entries(151, 201, Infinity).every((e) => e.data[0] === e.index % 251)).toBe(true);
    expect(() => r.term(100)).toThrow(RaftError);
    expect(() => r.entries(150, 152, Infinity)).toThrow("compaction");
    expect(() => r.entries(151, 202, Infinity)).toThrow("unavailable");
  });
});

describe("WAL trimmed in memory", () => {
  it("drops in-memory entries without a snapshot; the WAL keeps them, and a later snapshot still releases segments", () => {
    const s = openStorage(4096);
    for (let i = 1; i <= 200; i += 10)
      s.save({ hardState: { term: 1, vote: 1n, commit: i + 9 }, entries: range(i, i + 9, 1, 100) }, true);
    const segments = s.walSegments.length;
    s.trimLog(180);
    expect([s.firstIndex(), s.lastIndex(), s.term(180)]).toEqual([181, 200, 1]);
    expect(() => s.entries(180, 182, Infinity)).toThrow("compaction");
    expect(s.walSegments.length, "nothing released without a snapshot").toBe(segments);
    closeAll();
    const r = openStorage(4096);
    expect([r.firstIndex(), r.lastIndex()]).toEqual([1, 200]);
    expect(r.entries(1, 201, Infinity).every((e) => e.data[0] === e.index % 251)).toBe(true);
    r.trimLog(180);
    // The snapshot's own compaction point (170) is below the trimmed log: memory stays, old segments go.
    r.createSnapshot(190, { voters: [1n], learners: [] }, new Uint8Array(0), 20);
    expect(r.firstIndex()).toBe(181);
    expect(r.walSegments.length, "old segments released").toBeLessThan(segments);
    closeAll();
    const t = openStorage(4096);
    expect([t.snapshot().metadata.index, t.firstIndex(), t.lastIndex()]).toEqual([190, 191, 200]);
  });
});

describe("WAL segment creation", () => {
  it("creates each segment under a temporary name; one left by a crash is removed and the log opens whole", () => {
    const s = openStorage(4096);
    for (let i = 1; i <= 100; i += 10) s.save({ entries: range(i, i + 9, 1, 100) }, true);
    closeAll();
    const wal = join(dir, "wal");
    const segments = readdirSync(wal).sort();
    expect(segments.length).toBeGreaterThan(2);
    expect(
      segments.every((n) => n.endsWith(".wal")),
      "no temporary name left after a cut",
    ).toBe(true);
    // What a kill between the file's creation and its rename leaves: a zero-filled file under the next name.
    const stray = join(wal, "00000000000000ff-0000000000000065.wal.tmp");
    writeFileSync(stray, Buffer.alloc(4096));
    const t = openStorage(4096);
    expect([t.firstIndex(), t.lastIndex()]).toEqual([1, 100]);
    expect(readdirSync(wal).includes("00000000000000ff-0000000000000065.wal.tmp")).toBe(false);
    t.save({ entries: range(101, 140, 1, 100) }, true);
    closeAll();
    expect(openStorage(4096).lastIndex()).toBe(140);
  });

  it("a power cut after segment cuts keeps every synced entry (the power-loss model follows the rename)", () => {
    const data = join(dir, "data");
    const shadow = join(dir, "shadow");
    startPowerLossModel(data, shadow);
    try {
      const s = WalStorage.open(data, { segmentBytes: 4096 });
      for (let i = 1; i <= 100; i += 10) s.save({ entries: range(i, i + 9, 1, 100) }, true);
      expect(readdirSync(join(data, "wal")).length).toBeGreaterThan(2);
      s.close();
    } finally {
      stopPowerLossModel();
    }
    // The image is what the disk holds after a cut that drops everything not fsynced.
    const t = WalStorage.open(join(shadow, "image"), { segmentBytes: 4096 });
    open.push(t);
    expect([t.firstIndex(), t.lastIndex()]).toEqual([1, 100]);
  });
});

describe("WAL damage", () => {
  function lastSegment(): string {
    const wal = join(dir, "wal");
    return join(wal, readdirSync(wal).sort().at(-1) as string);
  }

  /** Where the records of a segment end (the zeros of its preallocated space begin). */
  function recordsEnd(buf: Buffer): number {
    let offset = 0;
    for (;;) {
      const r = readRecord(buf, offset);
      if (r.kind !== "record") return offset;
      offset = r.next;
    }
  }

  it("creates segments at their full size; the zeros after the last record are the end, not damage", () => {
    const s = openStorage(SEGMENT);
    s.save({ hardState: { term: 1, vote: 1n, commit: 3 }, entries: range(1, 3) }, true);
    closeAll();
    const buf = readFileSync(lastSegment());
    expect(buf.length, "preallocated").toBe(SEGMENT);
    expect(recordsEnd(buf), "header (32) + 3 entries (36 each) + hard state (33)").toBe(32 + 3 * 36 + 33);
    const r = openStorage(SEGMENT);
    expect(r.repaired).toBeUndefined();
    r.save({ entries: range(4, 4) }, true);
    closeAll();
    const again = readFileSync(lastSegment());
    expect([again.length, recordsEnd(again)], "the append went after the records, not after the zeros").toEqual([
      SEGMENT,
      32 + 4 * 36 + 33,
    ]);
    expect(openStorage(SEGMENT).lastIndex()).toBe(4);
  });

  it("cuts a torn tail back to the last whole record, reports it, and keeps appending", () => {
    const s = openStorage(SEGMENT);
    s.save({ hardState: { term: 1, vote: 1n, commit: 3 }, entries: range(1, 3) }, true);
    closeAll();
    const file = lastSegment();
    const end = recordsEnd(readFileSync(file));
    const torn = Buffer.from([40, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9]); // a 40-byte record cut after 3 bytes
    const fd = openSync(file, "r+");
    writeSync(fd, torn, 0, torn.length, end);
    closeSync(fd);
    const r = openStorage(SEGMENT);
    expect(r.repaired?.file).toBe(file);
    expect([r.repaired?.offset, r.repaired?.cutBytes]).toEqual([end, 11]);
    expect(r.lastIndex()).toBe(3);
    const cut = readFileSync(file);
    expect(
      [cut.length, cut.subarray(end).every((b) => b === 0)],
      "the torn bytes are zeros again, the file keeps its size",
    ).toEqual([SEGMENT, true]);
    r.save({ entries: range(4, 4) }, true);
    closeAll();
    expect(openStorage(SEGMENT).lastIndex()).toBe(4);
  });

  it("a torn tail in a segment that grew by appends (no free space after it) is cut too", () => {
    const s = openStorage(SEGMENT);
    s.save({ entries: range(1, 3) }, true);
    closeAll();
    const file = lastSegment();
    const end = recordsEnd(readFileSync(file));
    truncateSync(file, end);
    appendFileSync(file, Buffer.from([40, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9]));
    const r = openStorage(SEGMENT);
    expect([r.repaired?.offset, r.repaired?.cutBytes, r.lastIndex()]).toEqual([end, 11, 3]);
  });

  // Segment layout here: a 32-byte header record, then five 76-byte entry records (8 header + 1 type + 67),
  // then zeros to the segment's size.
  it.each([
    ["a data byte", 32 + 2 * 76 + 40, "crc"],
    [
      "a length byte, past the end of the file",
      32 + 2 * 76 + 2,
      "length 16711748 runs past the end, but a whole record follows at 260",
    ],
    ["a length byte, into the free space", 32 + 2 * 76 + 1, "and a whole record follows at 260"],
  ])("a corrupt record in the middle (%s) is an error naming the file and offset", (what, at, why) => {
    const s = openStorage(SEGMENT);
    s.save({ entries: range(1, 5, 1, 50) }, true);
    closeAll();
    const file = lastSegment();
    const buf = readFileSync(file);
    expect(recordsEnd(buf), "segment layout as the comment says").toBe(32 + 5 * 76);
    buf[at] = (buf[at] as number) ^ 0xff;
    if (what.endsWith("free space")) {
      // Length 68 + 0xff00 = 65,348 ends inside the 1 MiB segment, among the zeros: without the check for whole
      // records it swallows, this would read as a torn tail and the last two entries would be cut.
      expect(buf.readUInt32LE(32 + 2 * 76) + 32 + 2 * 76 + 8, "the damaged length ends in the free space").toBeLessThan(
        SEGMENT,
      );
    }
    writeFileSync(file, buf);
    expect(() => WalStorage.open(dir)).toThrow(WalError);
    expect(() => WalStorage.open(dir)).toThrow(`wal ${file} at offset ${32 + 2 * 76}: corrupt record: `);
    expect(() => WalStorage.open(dir)).toThrow(why);
    expect(readFileSync(file).equals(buf), "the damaged file is left as it was").toBe(true);
  });

  it("a foreign or newer-format segment is refused by name", () => {
    const wal = join(dir, "wal");
    openStorage();
    closeAll();
    const file = lastSegment();
    const buf = readFileSync(file);
    buf.write("etcd-ts-wal", 9);
    const versionAt = 9 + "etcd-ts-wal".length;
    buf.writeUInt32LE(99, versionAt);
    // re-frame the header with a valid CRC so only the version is wrong
    const len = buf.readUInt32LE(0);
    buf.writeUInt32LE(crc32(buf.subarray(8, 8 + len)), 4);
    writeFileSync(file, buf);
    expect(() => WalStorage.open(dir)).toThrow(`wal ${file} at offset 0: WAL format version 99`);
    writeFileSync(file, Buffer.from("this is not a wal segment at all, just some text\n"));
    expect(() => WalStorage.open(dir)).toThrow(`wal ${file} at offset 0`);
    expect(readdirSync(wal).length).toBe(1);
  });

  it("a corrupt snapshot file is an error naming it, never skipped", () => {
    const s = openStorage();
    s.save({ entries: range(1, 10) }, true);
    s.createSnapshot(8, { voters: [1n], learners: [] }, new Uint8Array([1, 2, 3]), 0);
    closeAll();
    const snapDir = join(dir, "snap");
    const file = join(snapDir, readdirSync(snapDir)[0] as string);
    const buf = readFileSync(file);
    buf[buf.length - 1] = (buf[buf.length - 1] as number) ^ 0xff;
    writeFileSync(file, buf);
    expect(() => WalStorage.open(dir)).toThrow(SnapError);
    expect(() => WalStorage.open(dir)).toThrow(`snapshot ${file}: crc mismatch`);
  });
});
