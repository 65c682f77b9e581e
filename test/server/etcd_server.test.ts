// Proves a single-member EtcdServer takes writes through Raft (propose → commit → apply), serves linearizable
// and serializable reads, reports etcd's errors, batches concurrent proposals, and keeps its data across a
// restart without re-applying entries; its in-memory Raft log stays short between snapshots while the WAL keeps
// every entry until a snapshot is cut.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isEtcdError } from "../../core/errors.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { EtcdServer, type ServerConfig } from "../../core/server/etcd_server.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const dirs: string[] = [];
const servers: EtcdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(dataDir: string, snapshotCount?: number): ServerConfig {
  return {
    name: "n1",
    dataDir,
    memberId: 0x3f87d1e9930d82d9n,
    clusterId: 0xc053a5fbc1c5ad1en,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
    ...(snapshotCount !== undefined ? { snapshotCount } : {}),
  };
}

async function startServer(dataDir?: string, snapshotCount?: number): Promise<EtcdServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "etcd-ts-server-"));
  if (dataDir === undefined) dirs.push(dir);
  const s = await EtcdServer.start(config(dir, snapshotCount));
  servers.push(s);
  return s;
}

describe("single-member EtcdServer", () => {
  it("knows a leader before it is used (what the CLI waits for before listening)", async () => {
    const s = await startServer();
    await s.whenLeader();
    expect(s.leader).toBe(s.config.memberId);
    expect(s.isLeader).toBe(true);
  });

  it("puts through Raft and reads the value back linearizably", async () => {
    const s = await startServer();
    const put = await s.put({ key: enc("foo"), value: enc("bar") });
    expect(put.response.revision).toBe(2);
    expect(put.header.revision).toBe(2);
    expect(put.header.raftTerm).toBeGreaterThanOrEqual(2);
    expect(s.isLeader).toBe(true);
    const got = await s.range({ key: enc("foo") });
    expect(got.response.count).toBe(1);
    const kv = decodeKeyValue(got.response.kvs[0] ?? new Uint8Array());
    expect(dec(kv.value)).toBe("bar");
    expect(kv.modRevision).toBe(2);
    const serial = await s.range({ key: enc("foo"), serializable: true });
    expect(serial.response.count).toBe(1);
  });

  it("applies many concurrent proposals, each answered with its own revision", async () => {
    const s = await startServer();
    const puts = await Promise.all(
      Array.from({ length: 500 }, (_, i) => s.put({ key: enc(`k${i}`), value: enc(`v${i}`) })),
    );
    const revs = puts.map((p) => p.response.revision).sort((a, b) => a - b);
    expect(revs[0]).toBe(2);
    expect(revs[revs.length - 1]).toBe(501);
    expect(new Set(revs).size).toBe(500);
    const all = await s.range({ key: enc("k"), rangeEnd: enc("l"), countOnly: true });
    expect(all.response.count).toBe(500);
  });

  it("answers a txn and a compaction, and reports etcd's compacted error", async () => {
    const s = await startServer();
    await s.put({ key: enc("a"), value: enc("1") });
    await s.put({ key: enc("a"), value: enc("2") });
    const t = await s.txn({
      compare: [{ key: enc("a"), target: 3, result: 0, value: enc("2") }],
      success: [{ put: { key: enc("b"), value: enc("x") } }],
      failure: [],
    });
    expect(t.response.succeeded).toBe(true);
    await s.compact(3);
    let caught: unknown;
    try {
      await s.range({ key: enc("a"), revision: 2 });
    } catch (err) {
      caught = err;
    }
    expect(isEtcdError(caught, "COMPACTED")).toBe(true);
    expect((caught as Error).message).toBe("etcdserver: mvcc: required revision has been compacted");
  });

  it("keeps its data across a restart and continues the revision sequence", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-server-"));
    dirs.push(dir);
    const s1 = await startServer(dir);
    for (let i = 0; i < 20; i++) await s1.put({ key: enc(`r${i}`), value: enc("v") });
    const applied = s1.appliedIndex;
    await s1.stop();
    servers.splice(servers.indexOf(s1), 1);
    const s2 = await startServer(dir);
    // Everything from before the restart, plus possibly the new term's empty entry (already applied when the
    // election's Ready synced inline).
    expect(s2.appliedIndex - applied).toBeGreaterThanOrEqual(0);
    expect(s2.appliedIndex - applied).toBeLessThanOrEqual(1);
    const got = await s2.range({ key: enc("r"), rangeEnd: enc("s"), countOnly: true });
    expect(got.response.count).toBe(20);
    const next = await s2.put({ key: enc("after"), value: enc("v") });
    expect(next.response.revision).toBe(22);
  });

  it("drops applied entries from its in-memory log without a snapshot; the WAL still has them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-server-"));
    dirs.push(dir);
    const s1 = await EtcdServer.start({ ...config(dir), snapshotCatchUpEntries: 10 });
    servers.push(s1);
    for (let i = 0; i < 1200; i += 100)
      await Promise.all(Array.from({ length: 100 }, (_, j) => s1.put({ key: enc(`t${i + j}`), value: enc("v") })));
    // No snapshot was cut (--snapshot-count is 100,000), yet the log in memory starts near the applied index.
    expect(readdirSync(join(dir, "member", "snap")).filter((f) => f.endsWith(".snap")).length).toBe(1);
    expect(s1.raftLogFirstIndex).toBeGreaterThan(s1.appliedIndex - 10 - 1024 - 200);
    expect(s1.raftLogFirstIndex).toBeGreaterThan(1000);
    await s1.stop();
    servers.splice(servers.indexOf(s1), 1);
    const s2 = await startServer(dir);
    // The restart read every entry since the bootstrap snapshot back from the WAL.
    expect(s2.raftLogFirstIndex).toBe(2);
    expect((await s2.range({ key: enc("t"), rangeEnd: enc("u"), countOnly: true })).response.count).toBe(1200);
  });

  it("snapshots every --snapshot-count entries and restarts from snapshot + WAL tail", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-server-"));
    dirs.push(dir);
    const s1 = await startServer(dir, 10);
    for (let i = 0; i < 35; i++) await s1.put({ key: enc(`s${i}`), value: enc(`v${i}`) });
    const applied = s1.appliedIndex;
    await s1.stop();
    servers.splice(servers.indexOf(s1), 1);
    expect(readdirSync(join(dir, "member", "snap")).filter((f) => f.endsWith(".snap")).length).toBeGreaterThanOrEqual(
      3,
    );
    const s2 = await startServer(dir, 10);
    // Everything from before the restart, plus possibly the new term's empty entry (already applied when the
    // election's Ready synced inline).
    expect(s2.appliedIndex - applied).toBeGreaterThanOrEqual(0);
    expect(s2.appliedIndex - applied).toBeLessThanOrEqual(1);
    const got = await s2.range({ key: enc("s"), rangeEnd: enc("t"), countOnly: true });
    expect(got.response.count).toBe(35);
    expect((await s2.put({ key: enc("z"), value: enc("1") })).response.revision).toBe(37);
  });
});
