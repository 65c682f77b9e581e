// Writes over hundreds of thousands of keys or revisions at the store level: a DeleteRange of 500,000 keys (which
// `etcdctl check perf` ends with), a lease revoke's deletion of 200,000 keys, and a compaction that drops 200,000
// revisions of one key all complete, in one request, with the right counts and no "Maximum call stack size
// exceeded" (no spread or recursion by key count). A DeleteRange nobody wants the deleted values of hands out
// changes that name where each value is stored instead of carrying it, and those revisions read back right.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { KvStore } from "../../core/mvcc/kv_store.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KEY_BUCKET, layoutKey } from "../../core/mvcc/layout.js";
import type { WriteRequest } from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const PUTS_PER_WRITE = 10_000;
let dir: string | undefined;
let store: KvStore | undefined;
afterEach(async () => {
  await store?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  [store, dir] = [undefined, undefined];
});

function openStore(): KvStore {
  dir = mkdtempSync(join(tmpdir(), "mvcc-large-"));
  store = KvStore.open(dir, { readWorkers: 0 });
  return store;
}

/** `n` puts in writes of PUTS_PER_WRITE requests; key(i) names the i-th put's key. */
async function putMany(s: KvStore, n: number, key: (i: number) => string): Promise<void> {
  const value = enc("v");
  for (let i = 0; i < n; i += PUTS_PER_WRITE) {
    const reqs: WriteRequest[] = [];
    for (let j = i; j < Math.min(n, i + PUTS_PER_WRITE); j++) reqs.push({ put: { key: enc(key(j)), value } });
    await s.write(reqs);
  }
}

describe("writes over very many keys", () => {
  it("deletes 500,000 keys in one DeleteRange and hands every deletion to the watch feed", async () => {
    const s = openStore();
    const n = 500_000;
    await putMany(s, n, (i) => `/perf/${i.toString().padStart(7, "0")}`);
    let events = 0;
    s.setCommitListener((changes) => (events += changes.length));
    const before = s.revision;
    const res = await s.deleteRange({ key: enc("/perf/"), rangeEnd: enc("/perf0") });
    expect([res.deleted, res.revision, events, s.keyCount]).toEqual([n, before + 1, n, 0]);
    expect((await s.range({ key: enc("/perf/"), rangeEnd: enc("/perf0"), countOnly: true })).count).toBe(0);
    await s.compact(s.revision);
    expect(s.backend.readNow((v) => [...v.range(KEY_BUCKET, { limit: 1 })].length)).toBe(0);
  }, 300_000);

  it("deletes without reading values when no one wants them; each change names where its value is", async () => {
    const s = openStore();
    const n = 25_000; // more than one chunk of the DeleteRange's scan
    const key = (i: number): string => `/k/${i.toString().padStart(6, "0")}`;
    await putMany(s, n, key);
    await s.put({ key: enc(key(7)), value: enc("newer") }); // a key with two revisions: the newest is named
    for (const wanted of [false, true]) {
      if (wanted) await putMany(s, n, key);
      const seen: { key: string; prev: string | undefined }[] = [];
      s.setCommitListener(
        (changes) => {
          for (const c of changes) {
            const k = decodeKeyValue(c.kv).key;
            const stored =
              c.prevKv ?? (c.prevRev && s.backend.readNow((v) => v.get(KEY_BUCKET, layoutKey(k, c.prevRev!))));
            seen.push({
              key: new TextDecoder().decode(k),
              prev: stored && new TextDecoder().decode(decodeKeyValue(stored).value),
            });
            expect(c.prevKv === undefined, "values carried only when wanted").toBe(!wanted);
          }
        },
        () => wanted,
      );
      const res = await s.deleteRange({ key: enc("/k/"), rangeEnd: enc("/k0") });
      expect(res.deleted).toBe(n);
      expect(seen.length).toBe(n);
      expect(seen.every((c, i) => c.key === key(i))).toBe(true);
      expect(seen.filter((c) => c.prev !== "v").map((c) => `${c.key}=${c.prev}`)).toEqual(
        wanted ? [] : [`${key(7)}=newer`],
      );
    }
  }, 300_000);

  it("deletes the 200,000 keys of a revoked lease at one revision", async () => {
    const s = openStore();
    const n = 200_000; // spreading 150,000 changes into one call already overflows the stack
    const key = (i: number): string => `/lease/${i.toString().padStart(7, "0")}`;
    await putMany(s, n, key);
    const deleteKeys = Array.from({ length: n }, (_, i) => enc(key(i)));
    let events = 0;
    s.setCommitListener((changes) => (events += changes.length));
    const [res] = await s.write([{ effect: { run: () => ({ deleteKeys }) } }]);
    expect(res).toMatchObject({ effect: { revision: n + 2, deleted: n } });
    expect([events, s.keyCount]).toEqual([n, 0]);
  }, 300_000);

  it("compacts away 200,000 revisions of one key", async () => {
    const s = openStore();
    await putMany(s, 200_000, () => "hot");
    await s.compact(s.revision);
    expect(s.backend.readNow((v) => [...v.range(KEY_BUCKET, {})].length)).toBe(1);
    expect((await s.range({ key: enc("hot") })).kvs.length).toBe(1);
  }, 300_000);
});
