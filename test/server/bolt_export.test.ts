// Proves the snapshot export (core/server/bolt_export.ts) on an in-process backend: etcd's key bucket is in
// revision order with 17-byte revision keys, a tombstone's key ends in 't' and its value holds only the user key,
// live values are the stored KeyValue bytes; leases become leasepb.Lease; the meta bucket has the consistent
// index and both compaction revisions; members are keyed by their hex id with Go's JSON. And the export gives the
// event loop a turn between batches: 20,000 keys take a turn after each 1,000 entries read in each of its two
// passes, so a large store never holds the server for the whole export.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import { BoltReader } from "../../core/bbolt/reader.js";
import { encodeLeaseKey, encodeLeaseValue } from "../../core/lease/lease_codec.js";
import { LEASE_BUCKET } from "../../core/lease/lessor.js";
import { MEMBERSHIP_BUCKETS, MEMBERS_BUCKET } from "../../core/membership/cluster.js";
import { encodeMember, memberKey } from "../../core/membership/member_codec.js";
import { decodeKeyValue, encodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KEY_BUCKET, MVCC_META_BUCKET, layoutKey } from "../../core/mvcc/layout.js";
import { META_COMPACT_KEY } from "../../core/mvcc/write_txn.js";
import { AUTH_BUCKETS } from "../../core/auth/auth_store.js";
import { ALARM_BUCKET } from "../../core/server/alarms.js";
import { EXPORT_BATCH_ENTRIES, exportBoltSnapshot } from "../../core/server/bolt_export.js";
import { decodeEtcdLease, parseRevKey } from "../../core/server/etcd_bolt_codec.js";
import { CLUSTER_META_BUCKET, CONF_OUTCOME_BUCKET } from "../../core/server/membership_apply.js";
import { encodeU64 } from "../../core/backend/backend.js";

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-bolt-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEYS = 20_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function fill(): Promise<Backend> {
  mkdirSync(join(dir, "m"));
  const buckets = [
    KEY_BUCKET,
    MVCC_META_BUCKET,
    LEASE_BUCKET,
    ALARM_BUCKET,
    ...AUTH_BUCKETS,
    ...MEMBERSHIP_BUCKETS,
    CONF_OUTCOME_BUCKET,
    CLUSTER_META_BUCKET,
  ];
  const b = Backend.open(join(dir, "m"), { buckets, readWorkers: 0, syncIntervalMs: 0 });
  await b.batch(42, (tx) => {
    // Revisions interleave across user keys, so key order and revision order differ: key i is written at
    // revision KEYS + 1 - i.
    for (let i = 0; i < KEYS; i++) {
      const key = enc(`k/${String(i).padStart(5, "0")}`);
      const rev = KEYS + 1 - i;
      tx.put(
        KEY_BUCKET,
        layoutKey(key, { main: rev, sub: 0 }),
        encodeKeyValue({ key, createRevision: rev, modRevision: rev, version: 1, value: enc(`v${i}`), lease: 0n }),
      );
    }
    tx.put(KEY_BUCKET, layoutKey(enc("k/00000"), { main: KEYS + 2, sub: 0 }), new Uint8Array(0)); // deleted last
    tx.put(MVCC_META_BUCKET, META_COMPACT_KEY, encodeU64(5));
    tx.put(LEASE_BUCKET, encodeLeaseKey(0x1234n), encodeLeaseValue({ ttlSeconds: 600, remainingTtlSeconds: 42 }));
    tx.put(
      MEMBERS_BUCKET,
      memberKey(0xabcn),
      encodeMember({ id: 0xabcn, name: "m", peerUrls: ["http://127.0.0.1:2380"], clientUrls: [], isLearner: false }),
    );
  });
  return b;
}

describe("snapshot export to etcd's bbolt layout", () => {
  it("writes etcd's encodings in revision order and yields the event loop between batches", async () => {
    const backend = await fill();
    let turns = 0;
    const nextTurn = (): Promise<void> => {
      turns += 1;
      return new Promise((resolve) => setImmediate(resolve));
    };
    mkdirSync(join(dir, "work"));
    const file = join(dir, "out.db");
    await exportBoltSnapshot(backend, { file, workDir: join(dir, "work"), nextTurn });
    await backend.close();
    expect(turns).toBeGreaterThanOrEqual((2 * KEYS) / EXPORT_BATCH_ENTRIES - 2);

    const bolt = BoltReader.open(file);
    const names = bolt.bucketNames().map((n) => n.toString());
    expect(names).toEqual([
      "alarm",
      "auth",
      "authRoles",
      "authUsers",
      "cluster",
      "key",
      "lease",
      "members",
      "members_removed",
      "meta",
    ]);
    const keys = [...(bolt.entries(Buffer.from("key")) ?? [])].map((e) => ({
      rev: parseRevKey(e.key),
      kv: decodeKeyValue(e.value),
    }));
    expect(keys.length).toBe(KEYS + 1);
    expect(keys.map((k) => k.rev.main)).toEqual(Array.from({ length: KEYS + 1 }, (_, i) => i + 2));
    expect(keys[0]).toEqual({
      rev: { main: 2, sub: 0, tombstone: false },
      kv: expect.objectContaining({ createRevision: 2, version: 1 }) as unknown,
    });
    expect(Buffer.from(keys[0]?.kv.key ?? []).toString()).toBe(`k/${String(KEYS - 1).padStart(5, "0")}`);
    const last = keys[KEYS];
    expect(last?.rev).toEqual({ main: KEYS + 2, sub: 0, tombstone: true });
    expect({
      key: Buffer.from(last?.kv.key ?? []).toString(),
      mod: last?.kv.modRevision,
      value: last?.kv.value.length,
    }).toEqual({ key: "k/00000", mod: 0, value: 0 });
    const lease = [...(bolt.entries(Buffer.from("lease")) ?? [])];
    expect(lease.map((e) => [e.key.toString("hex"), decodeEtcdLease(e.value)])).toEqual([
      ["0000000000001234", { id: 0x1234n, ttl: 600, remainingTtl: 42 }],
    ]);
    const meta = Object.fromEntries(
      [...(bolt.entries(Buffer.from("meta")) ?? [])].map((e) => [e.key.toString(), e.value.toString("hex")]),
    );
    expect(meta).toEqual({
      consistent_index: "000000000000002a",
      finishedCompactRev: "00000000000000055f0000000000000000",
      scheduledCompactRev: "00000000000000055f0000000000000000",
    });
    const members = [...(bolt.entries(Buffer.from("members")) ?? [])].map((e) => [
      e.key.toString(),
      e.value.toString(),
    ]);
    expect(members).toEqual([["abc", '{"id":2748,"peerURLs":["http://127.0.0.1:2380"],"name":"m"}']]);
    bolt.close();
  }, 60_000);
});
