// A batch whose transaction fails (a storage failure part-way through) leaves the store's in-memory state as it
// was: the live-key index, the key count and the revision match the backend, which committed nothing of it, so
// later writes see the keys the failed batch had deleted or created as they were before it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { StorageError } from "../../core/backend/backend.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore, ReadMode } from "../../core/mvcc/kv_store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
let dir: string | undefined;
let store: KvStore | undefined;
afterEach(async () => {
  await store?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  [store, dir] = [undefined, undefined];
});

describe("a failed batch", () => {
  for (const readMode of [ReadMode.Concurrent, ReadMode.Blocking]) {
    it(`takes back its live-index changes (${readMode} reads)`, async () => {
      dir = mkdtempSync(join(tmpdir(), "mvcc-abort-"));
      const s = KvStore.open(dir, { readWorkers: 0, readMode });
      store = s;
      await s.write([{ put: { key: enc("a"), value: enc("1") } }, { put: { key: enc("b"), value: enc("1") } }]);
      const rev = s.revision;
      const failing = s.write(
        [
          { deleteRange: { key: enc("a"), rangeEnd: enc("b") } },
          { put: { key: enc("c"), value: enc("1") } },
          { put: { key: enc("b"), value: enc("2") } },
        ],
        undefined,
        (slot) => {
          if (slot === 2) throw new StorageError("disk gone", new Error("EIO"));
        },
      );
      await expect(failing).rejects.toThrow(/disk gone/);
      expect([s.revision, s.keyCount]).toEqual([rev, 2]);
      const page = await s.range({ key: enc("a"), rangeEnd: enc("z"), limit: 1 });
      expect(page.count).toBe(2);
      // A put of "a" finds its old version (the live index still has it); "c" is created afresh.
      const putA = await s.put({ key: enc("a"), value: enc("x"), prevKv: true });
      expect(putA.prevKv === undefined ? undefined : decodeKeyValue(putA.prevKv).version).toBe(1);
      await s.put({ key: enc("c"), value: enc("x") });
      const all = await s.range({ key: enc("a"), rangeEnd: enc("z") });
      expect(all.kvs.map((b) => decodeKeyValue(b).version)).toEqual([2, 1, 1]);
      expect(s.keyCount).toBe(3);
    });
  }
});
