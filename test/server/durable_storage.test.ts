// Proves the crash-consistency rules of a member's storage, in process: a snapshot is cut at the backend's
// consistent index and only after the backend is fsynced; start-up loads the snapshot the WAL names (not a newer
// file the WAL never recorded), and a WAL cut right after a received snapshot's mark still starts with a hard
// state that covers it; a failed background fsync of the backend is reported and never retried; a failed defrag
// leaves the store serving on its old file; a storage error in the Ready loop stops the member (fail-stop) with a
// clear log line (a failed background fsync of the backend included), loses nothing acknowledged, and the member
// restarts on its data dir.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Backend, StorageError, setBackendSyncObserver } from "../../core/backend/backend.js";
import { armFailpoints, disarmAllFailpoints, startPowerLossModel, stopPowerLossModel } from "../../core/failpoints.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import { EntryType, type Entry } from "../../core/raft/index.js";
import { EtcdServer, type ServerConfig } from "../../core/server/etcd_server.js";
import { Snapshots } from "../../core/server/snapshots.js";
import { saveSnapshot } from "../../core/wal/snap.js";
import { Wal } from "../../core/wal/wal.js";
import { WalStorage } from "../../core/wal/wal_storage.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dirs: string[] = [];
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  disarmAllFailpoints();
  stopPowerLossModel();
  setBackendSyncObserver(undefined);
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "etcd-ts-durable-"));
  dirs.push(d);
  return d;
}

const entries = (lo: number, hi: number, term: number): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => ({
    index: lo + i,
    term,
    type: EntryType.Normal,
    data: new Uint8Array(0),
  }));

const cs = { voters: [1n], learners: [] };

describe("snapshot cut", () => {
  it("is cut at the consistent index, after the backend is fsynced", async () => {
    const root = tempDir();
    const memberDir = join(root, "member");
    mkdirSync(join(memberDir, "snap"), { recursive: true });
    const kv = KvStore.open(memberDir, { readWorkers: 0 });
    closers.push(() => kv.close());
    const storage = WalStorage.open(memberDir);
    closers.push(() => storage.close());
    storage.save({ entries: entries(1, 10, 2), hardState: { term: 2, vote: 1n, commit: 10 } }, true);
    // Entries 6..10 are empty (a new leader's no-op): applied, but no backend commit carries their index.
    await kv.write([{ put: { key: enc("k"), value: enc("v") } }], 5);
    const events: string[] = [];
    const snapFiles = (): string[] => readdirSync(join(memberDir, "snap")).filter((f) => f.endsWith(".snap"));
    setBackendSyncObserver({
      beforeSync: () => undefined,
      afterSync: () => events.push(`sync with ${snapFiles().length} snapshot files`),
    });
    const snaps = new Snapshots({
      config: { name: "n", dataDir: root, memberId: 1n, clusterId: 1n, snapshotCount: 1, snapshotCatchUpEntries: 0 },
      kv,
      storage,
      nextId: () => 1n,
    });
    snaps.maybeCut(10, cs);
    expect(storage.snapshot().metadata.index).toBe(5);
    expect(snaps.index).toBe(5);
    expect(snapFiles()).toEqual(["0000000000000002-0000000000000005.snap"]);
    expect(events).toEqual(["sync with 0 snapshot files"]);
    // What a lagging follower would be sent claims the backend's index too, not the applied one.
    expect(snaps.raftStorage(() => cs).snapshot().metadata.index).toBe(5);
  });
});

describe("start-up from the WAL", () => {
  function walWithSnapshot(memberDir: string): void {
    const { wal } = Wal.open(join(memberDir, "wal"));
    wal.save({ term: 2, vote: 1n, commit: 8 }, entries(1, 10, 2), true);
    saveSnapshot(join(memberDir, "snap"), { metadata: { index: 8, term: 2, confState: cs }, data: new Uint8Array(0) });
    wal.saveSnapshotMark(8, 2);
    wal.close();
  }

  it("loads the snapshot the WAL records, not a newer file it never recorded", () => {
    const memberDir = join(tempDir(), "member");
    walWithSnapshot(memberDir);
    // A crash after the snapshot file was written and before its WAL record.
    saveSnapshot(join(memberDir, "snap"), { metadata: { index: 10, term: 2, confState: cs }, data: new Uint8Array(0) });
    const storage = WalStorage.open(memberDir);
    closers.push(() => storage.close());
    expect(storage.snapshot().metadata.index).toBe(8);
    expect(storage.lastIndex()).toBe(10);
  });

  it("refuses to start when the snapshot the WAL records is missing", () => {
    const memberDir = join(tempDir(), "member");
    walWithSnapshot(memberDir);
    rmSync(join(memberDir, "snap", "0000000000000002-0000000000000008.snap"));
    expect(() => WalStorage.open(memberDir)).toThrow(/records a snapshot at index 8 .* missing/);
  });

  it("starts with a hard state covering a received snapshot whose WAL write was cut after its mark", () => {
    const memberDir = join(tempDir(), "member");
    const { wal } = Wal.open(join(memberDir, "wal"));
    wal.save({ term: 2, vote: 1n, commit: 3 }, entries(1, 3, 2), true);
    saveSnapshot(join(memberDir, "snap"), { metadata: { index: 40, term: 5, confState: cs }, data: new Uint8Array(0) });
    wal.saveSnapshotMark(40, 5); // the rest of that write (the hard state committing 40 in term 5) was lost
    wal.close();
    const storage = WalStorage.open(memberDir);
    closers.push(() => storage.close());
    const hs = storage.initialState().hardState;
    expect(hs.commit).toBe(40);
    expect(hs.term).toBe(5);
    expect(hs.vote).toBe(0n);
  });
});

describe("a snapshot received from the leader", () => {
  it("is fsynced with its hard state even when Raft asks for no sync (no entries, same term and vote)", async () => {
    const root = tempDir();
    const dataDir = join(root, "data");
    const memberDir = join(dataDir, "member");
    mkdirSync(memberDir, { recursive: true });
    startPowerLossModel(dataDir, join(root, "shadow"));
    const storage = WalStorage.open(memberDir);
    await storage.saveAsync({ entries: entries(1, 3, 2), hardState: { term: 2, vote: 1n, commit: 3 } }, true);
    const snapshot = { metadata: { index: 40, term: 2, confState: cs }, data: new Uint8Array(0) };
    await storage.saveAsync({ snapshot, hardState: { term: 2, vote: 1n, commit: 40 }, entries: [] }, false);
    storage.abandon(); // as a power cut: no closing fsync
    stopPowerLossModel();
    // What the disk holds after a power cut now (only what was fsynced).
    const durable = WalStorage.open(join(root, "shadow", "image", "member"));
    closers.push(() => durable.close());
    expect(durable.snapshot().metadata.index).toBe(40);
    expect(durable.initialState().hardState.commit).toBe(40);
  });
});

describe("backend fsync and defrag failures", () => {
  it("reports a failed background fsync and refuses every later sync and commit", async () => {
    const dir = tempDir();
    const errors: Error[] = [];
    const b = Backend.open(dir, {
      buckets: ["data"],
      readWorkers: 0,
      syncIntervalMs: 5,
      onSyncError: (e) => errors.push(e),
    });
    closers.push(() => b.abandon());
    setBackendSyncObserver({
      beforeSync: () => {
        throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      },
      afterSync: () => undefined,
    });
    await b.batch(1, (tx) => tx.put("data", enc("k"), enc("v")));
    for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StorageError);
    setBackendSyncObserver(undefined);
    // Never retried: the failure sticks even though the disk would now answer.
    expect(() => b.syncNow()).toThrow(/fsync failed/);
    await expect(b.batch(2, (tx) => tx.put("data", enc("k2"), enc("v")))).rejects.toThrow(/fsync failed/);
  });

  it("reports a failed commit as a StorageError, and an error of the batch itself as it is", async () => {
    const b = Backend.open(tempDir(), { buckets: ["data"], readWorkers: 0, syncIntervalMs: 0 });
    closers.push(() => b.abandon());
    await expect(
      b.batch(1, () => {
        throw new RangeError("the request's own error");
      }),
    ).rejects.toThrow(RangeError);
    armFailpoints("backend-after-commit=error");
    const err = await b.batch(2, (tx) => tx.put("data", enc("k"), enc("v"))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/commit failed: EIO/);
  });

  it("keeps serving on the old file when a defrag fails before its rename", async () => {
    const dir = tempDir();
    const kv = KvStore.open(dir, { readWorkers: 0 });
    closers.push(() => kv.close());
    await kv.write([{ put: { key: enc("a"), value: enc("1") } }], 1);
    armFailpoints("defrag-before-rename=enospc");
    await expect(kv.defragment()).rejects.toThrow(/ENOSPC/);
    disarmAllFailpoints();
    expect(existsSync(join(dir, "kv.mdb.defrag"))).toBe(false);
    expect((await kv.range({ key: enc("a") })).count).toBe(1);
    await kv.write([{ put: { key: enc("b"), value: enc("2") } }], 2);
    expect((await kv.range({ key: enc("a"), rangeEnd: enc("c") })).count).toBe(2);
  });
});

describe("fail-stop", () => {
  function config(dataDir: string, onFatal: (err: unknown) => void, log: string[]): ServerConfig {
    return {
      name: "n1",
      dataDir,
      memberId: 0x3f87d1e9930d82d9n,
      clusterId: 0xc053a5fbc1c5ad1en,
      heartbeatIntervalMs: 10,
      electionTimeoutMs: 100,
      onFatal,
      log: (level, pkg, msg) => log.push(`${level} ${pkg}: ${msg}`),
    };
  }

  it("stops when the background fsync of the backend fails", async () => {
    const dir = tempDir();
    const fatal: unknown[] = [];
    const log: string[] = [];
    const s = await EtcdServer.start(config(dir, (e) => fatal.push(e), log));
    closers.push(() => s.stop());
    await s.whenPublished();
    setBackendSyncObserver({
      beforeSync: () => {
        throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
      },
      afterSync: () => undefined,
    });
    await s.put({ key: enc("k"), value: enc("v") });
    for (let i = 0; i < 100 && fatal.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(fatal).toHaveLength(1);
    expect(log.some((l) => /fatal: stopping the member: storage i\/o error \(backend .* fsync failed/.test(l))).toBe(
      true,
    );
    await expect(s.put({ key: enc("k2"), value: enc("v") })).rejects.toThrow();
  });

  for (const [point, action, line] of [
    ["wal-before-save", "error", /fatal: stopping the member: storage i\/o error \(EIO/],
    [
      "backend-before-commit",
      "enospc",
      /fatal: stopping the member: no space left on device .* free space in the data dir and restart/,
    ],
  ] as const) {
    it(`stops at an injected ${action} at ${point}, acknowledges nothing after it, and restarts with every acknowledged write`, async () => {
      const dir = tempDir();
      const fatal: unknown[] = [];
      const log: string[] = [];
      const s = await EtcdServer.start(config(dir, (e) => fatal.push(e), log));
      let stopped = false;
      closers.push(async () => {
        if (!stopped) await s.stop();
      });
      await s.whenPublished();
      for (let i = 0; i < 5; i++) await s.put({ key: enc(`k${i}`), value: enc(`v${i}`) });
      armFailpoints(`${point}=${action}`);
      // A put applied into the backend's write buffer is acknowledged before the buffer's commit fails (the WAL
      // holds it): it must then survive the restart. A WAL failure refuses it at once.
      const acked = await s.put({ key: enc("lost"), value: enc("x") }).then(
        () => true,
        () => false,
      );
      if (point === "wal-before-save") expect(acked).toBe(false);
      while (fatal.length === 0) await new Promise((r) => setTimeout(r, 10));
      expect(fatal).toHaveLength(1);
      expect(log.some((l) => line.test(l))).toBe(true);
      await expect(s.put({ key: enc("after"), value: enc("x") })).rejects.toThrow();
      disarmAllFailpoints();
      await s.stop();
      stopped = true;
      const again = await EtcdServer.start(config(dir, (e) => fatal.push(e), log));
      closers.push(() => again.stop());
      await again.whenPublished();
      const got = await again.range({ key: enc("k"), rangeEnd: enc("l") });
      expect(got.response.count).toBe(5);
      expect((await again.range({ key: enc("after") })).response.count).toBe(0);
      if (acked) expect((await again.range({ key: enc("lost") })).response.count).toBe(1);
      await again.put({ key: enc("k9"), value: enc("v") });
      expect(fatal).toHaveLength(1);
    });
  }
});

describe("restart after a power cut", () => {
  it("starts when the backend has applied past the commit index the WAL kept (a commit alone is not fsynced)", async () => {
    const dir = tempDir();
    const cfg: ServerConfig = {
      name: "n1",
      dataDir: dir,
      memberId: 0x3f87d1e9930d82d9n,
      clusterId: 0xc053a5fbc1c5ad1en,
      heartbeatIntervalMs: 10,
      electionTimeoutMs: 100,
    };
    const s = await EtcdServer.start(cfg);
    await s.whenPublished();
    for (let i = 0; i < 5; i++) await s.put({ key: enc(`k${i}`), value: enc("v") });
    const applied = s.kv.consistentIndex();
    await s.stop();
    // The last hard state records of the WAL were lost: the one left commits less than the backend applied.
    const { wal, state } = Wal.open(join(dir, "member", "wal"));
    const hs = state.hardState;
    if (hs === undefined) throw new Error("no hard state in the WAL");
    wal.save({ ...hs, commit: applied - 3 }, [], true);
    wal.close();
    const again = await EtcdServer.start(cfg);
    closers.push(() => again.stop());
    await again.whenPublished();
    expect((await again.range({ key: enc("k"), rangeEnd: enc("l") })).response.count).toBe(5);
    await again.put({ key: enc("k9"), value: enc("v") });
    expect(again.kv.consistentIndex()).toBeGreaterThan(applied);
  });
});

describe("restart after an interrupted snapshot install", () => {
  it("starts when the installed body is ahead of the log (the leader copied its backend after cutting the snapshot)", async () => {
    const dir = tempDir();
    const memberId = 0x3f87d1e9930d82d9n;
    const cfg: ServerConfig = {
      name: "n1",
      dataDir: dir,
      memberId,
      clusterId: 0xc053a5fbc1c5ad1en,
      heartbeatIntervalMs: 10,
      electionTimeoutMs: 100,
    };
    const s = await EtcdServer.start(cfg);
    await s.whenPublished();
    for (let i = 0; i < 5; i++) await s.put({ key: enc(`k${i}`), value: enc("v") });
    const ci = s.kv.consistentIndex();
    await s.stop();
    // The log as a follower has it after persisting a snapshot at ci - 3 whose body (the backend) is at ci.
    const memberDir = join(dir, "member");
    rmSync(join(memberDir, "wal"), { recursive: true });
    rmSync(join(memberDir, "snap"), { recursive: true });
    mkdirSync(join(memberDir, "snap"));
    const storage = WalStorage.open(memberDir);
    const snapshot = {
      metadata: { index: ci - 3, term: 2, confState: { voters: [memberId], learners: [] } },
      data: new Uint8Array(0),
    };
    storage.save({ snapshot, hardState: { term: 2, vote: memberId, commit: ci - 3 }, entries: [] }, true);
    storage.close();
    const again = await EtcdServer.start(cfg);
    closers.push(() => again.stop());
    expect(again.kv.consistentIndex()).toBe(ci);
    expect((await again.range({ key: enc("k"), rangeEnd: enc("l"), serializable: true })).response.count).toBe(5);
  });
});
