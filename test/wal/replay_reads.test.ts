// Proves that WAL replay reads a segment a bounded window at a time: a clean 64 MiB preallocated segment is
// never loaded whole and no single read exceeds the window (a record larger than the window is read on its
// own); and that the streamed end-of-log check still sees damage anywhere in the zero tail, beyond the first
// window, as a corrupt record naming the file and offset; records straddling window boundaries replay whole.
import * as realFs from "node:fs";
import { mkdtempSync, openSync, closeSync, readdirSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { Entry } from "../../core/raft/types.js";
import { READ_WINDOW_BYTES } from "../../core/wal/segment_reader.js";
import { WalError } from "../../core/wal/wal.js";
import { WalStorage } from "../../core/wal/wal_storage.js";

/** Every read the WAL code makes: readSync lengths and whole-file reads. */
const reads = vi.hoisted(() => ({ sync: [] as number[], wholeFiles: [] as string[] }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    readSync: (...args: Parameters<typeof fs.readSync>) => {
      const n = fs.readSync(...args);
      reads.sync.push(n);
      return n;
    },
    readFileSync: (...args: Parameters<typeof fs.readFileSync>) => {
      reads.wholeFiles.push(String(args[0]));
      return fs.readFileSync(...args);
    },
  };
});

const SEGMENT = 64 * 1024 * 1024;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "wal-reads-"));
  reads.sync.length = 0;
  reads.wholeFiles.length = 0;
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const entry = (index: number, size: number): Entry => ({
  term: 1,
  index,
  type: 0,
  data: new Uint8Array(size).fill(index % 251),
});

function segmentFile(): string {
  const wal = join(dir, "wal");
  return join(wal, readdirSync(wal).sort().at(-1) as string);
}

/** Writes `bytes` at `at` of the segment (damage in its zero tail). */
function poke(at: number, bytes: number[]): void {
  const fd = openSync(segmentFile(), "r+");
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, at);
  closeSync(fd);
}

describe("WAL replay reads", () => {
  it("streams a clean preallocated segment in bounded reads, a record larger than the window on its own", () => {
    const big = READ_WINDOW_BYTES * 3;
    const s = WalStorage.open(dir, { segmentBytes: SEGMENT });
    s.save(
      { hardState: { term: 1, vote: 1n, commit: 3 }, entries: [entry(1, 100), entry(2, big), entry(3, 100)] },
      true,
    );
    s.close();
    expect(realFs.statSync(segmentFile()).size, "preallocated").toBe(SEGMENT);
    reads.sync.length = 0;
    reads.wholeFiles.length = 0;

    const r = WalStorage.open(dir, { segmentBytes: SEGMENT });
    try {
      expect([r.lastIndex(), r.entries(2, 3, Infinity)[0]?.data.length, r.repaired]).toEqual([3, big, undefined]);
      expect(r.initialState().hardState.commit).toBe(3);
      expect(
        reads.wholeFiles.filter((f) => f.endsWith(".wal")),
        "no segment read whole",
      ).toEqual([]);
      const total = reads.sync.reduce((a, b) => a + b, 0);
      expect(total, "the zero tail was checked to the end of the file").toBeGreaterThanOrEqual(SEGMENT);
      const over = reads.sync.filter((n) => n > READ_WINDOW_BYTES);
      expect(over, "only the big record's body exceeds the window").toEqual([big + 18]);
    } finally {
      r.close();
    }
  });

  it("replays records that straddle window boundaries, each one whole", () => {
    const s = WalStorage.open(dir, { segmentBytes: SEGMENT });
    const n = 4000; // 4000 records of 1,026 bytes: about four windows, boundaries falling inside records
    for (let i = 1; i <= n; i += 100)
      s.save({ entries: Array.from({ length: 100 }, (_, k) => entry(i + k, 1000)) }, false);
    s.close();
    const r = WalStorage.open(dir, { segmentBytes: SEGMENT });
    try {
      const got = r.entries(1, n + 1, Infinity);
      expect(got.length).toBe(n);
      const bad = got.filter(
        (e, k) => e.index !== k + 1 || e.data.length !== 1000 || e.data.some((b) => b !== e.index % 251),
      );
      expect(bad.map((e) => e.index)).toEqual([]);
    } finally {
      r.close();
    }
  });

  it.each([
    ["the second window", READ_WINDOW_BYTES + 12_345],
    ["the last byte of the file", SEGMENT - 1],
  ])("a non-zero byte in the zero tail (%s) is a corrupt record, not the end", (_where, at) => {
    const s = WalStorage.open(dir, { segmentBytes: SEGMENT });
    s.save({ entries: [entry(1, 10), entry(2, 10)] }, true);
    s.close();
    const end = 32 + 2 * 36;
    poke(at, [7]);
    const message = `wal ${segmentFile()} at offset ${end}: corrupt record: zero length record`;
    expect(() => WalStorage.open(dir, { segmentBytes: SEGMENT })).toThrow(WalError);
    expect(() => WalStorage.open(dir, { segmentBytes: SEGMENT })).toThrow(message);
  });
});
