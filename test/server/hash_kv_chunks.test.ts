// Proves HashKV hashed in chunks (the event loop free between them, so a corruption check never stalls Raft) gives
// the single-pass hash over every stored revision at or below the asked revision, ignores writes made while it
// runs, and starts again when a compaction runs through it, answering for the compacted store.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { HASH_KV_CHUNK_ENTRIES } from "../../core/limits.js";
import { KEY_BUCKET, revisionOf } from "../../core/mvcc/layout.js";
import { KvStore } from "../../core/mvcc/kv_store.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function onePass(kv: KvStore, rev: number): number {
  return kv.backend.readNow((v) => {
    let h = 0;
    for (const { key, value } of v.range(KEY_BUCKET, {}))
      if (revisionOf(key).main <= rev) h = crc32(value, crc32(key, h));
    return h;
  });
}

async function filled(): Promise<KvStore> {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-hash-"));
  dirs.push(dir);
  const kv = KvStore.open(dir, { readWorkers: 0 });
  const n = Math.ceil(HASH_KV_CHUNK_ENTRIES * 2.5);
  for (let b = 0; b < n / 500; b++) {
    await kv.write(
      Array.from({ length: 500 }, (_, i) => ({
        put: { key: new TextEncoder().encode(`k/${(b * 500 + i) % 3000}`), value: Uint8Array.of(b, i % 256) },
      })),
    );
  }
  return kv;
}

describe("HashKV in chunks", () => {
  it("equals the single-pass hash, at the current and at an older revision", async () => {
    const kv = await filled();
    try {
      expect((await kv.hashKV(0)).hash).toBe(onePass(kv, kv.revision));
      expect((await kv.hashKV(5000)).hash).toBe(onePass(kv, 5000));
    } finally {
      await kv.close();
    }
  });

  it("ignores writes made while it runs, and starts again after a compaction that ran through it", async () => {
    const kv = await filled();
    try {
      const rev = kv.revision;
      const before = onePass(kv, rev);
      const hashing = kv.hashKV(rev);
      await kv.put({ key: new TextEncoder().encode("k/late"), value: Uint8Array.of(1) });
      expect((await hashing).hash).toBe(before);
      const again = kv.hashKV(rev);
      await kv.compact(rev - 100);
      const after = await again;
      expect(after.compactRevision).toBe(rev - 100);
      expect(after.hash).toBe(onePass(kv, rev));
      expect(after.hash).not.toBe(before);
    } finally {
      await kv.close();
    }
  });
});
