// The raft Storage of a member: the WAL and snapshot files are the durable copy, a MemoryStorage the
// in-memory view raft reads. save() persists a Ready (snapshot, entries, hard state; one fdatasync when it
// must sync) before the in-memory view changes, so raft never reads what a crash could lose.
import { join } from "node:path";

import { MemoryStorage } from "../raft/memory_storage.js";
import type { ConfState, Entry, HardState, Snapshot, Storage } from "../raft/types.js";
import { loadNewestSnapshot, purgeSnapshots, saveSnapshot } from "./snap.js";
import { Wal, type WalOptions, type WalRepair } from "./wal.js";

/** Snapshot files kept besides the newest (etcd keeps 5 by default). */
const SNAPSHOTS_KEPT = 5;

export interface PersistBatch {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
}

export class WalStorage implements Storage {
  /** What open() cut off a torn WAL tail, if anything (to be logged). */
  readonly repaired: WalRepair | undefined;
  private readonly mem: MemoryStorage;

  private constructor(
    private readonly wal: Wal,
    private readonly snapDir: string,
    mem: MemoryStorage,
    repaired: WalRepair | undefined,
  ) {
    this.mem = mem;
    this.repaired = repaired;
  }

  /** Opens <dataDir>/wal and <dataDir>/snap, replaying them into the in-memory view. */
  static open(dataDir: string, opts: WalOptions = {}): WalStorage {
    const snapDir = join(dataDir, "snap");
    const snap = loadNewestSnapshot(snapDir);
    const { wal, state } = Wal.open(join(dataDir, "wal"), opts);
    const mem = new MemoryStorage();
    if (snap !== undefined && snap.metadata.index > 0) mem.applySnapshot(snap);
    const base = mem.lastIndex();
    const entries = state.entries.filter((e) => e.index > base);
    const first = entries[0];
    if (first !== undefined && first.index > base + 1) {
      throw new Error(`wal ${join(dataDir, "wal")}: entries start at ${first.index}, snapshot ends at ${base}`);
    }
    mem.append(entries);
    if (state.hardState !== undefined) mem.setHardState(state.hardState);
    return new WalStorage(wal, snapDir, mem, state.repaired);
  }

  /** Persists a Ready's snapshot, entries and hard state (fdatasync once when mustSync), then updates memory. */
  save(rd: PersistBatch, mustSync: boolean): void {
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) {
      saveSnapshot(this.snapDir, rd.snapshot);
      this.wal.saveSnapshotMark(rd.snapshot.metadata.index, rd.snapshot.metadata.term);
      this.mem.applySnapshot(rd.snapshot);
    }
    this.wal.save(rd.hardState, rd.entries, mustSync);
    this.mem.append(rd.entries);
    if (rd.hardState !== undefined) this.mem.setHardState(rd.hardState);
  }

  /**
   * As save(): entries and hard state are written, synced, and only then shown to raft's in-memory view. The
   * fdatasync runs on libuv's thread pool while the event loop goes on (awaited), or with `inlineSync` on the
   * calling thread (blocking it for the sync).
   */
  async saveAsync(rd: PersistBatch, mustSync: boolean, inlineSync = false): Promise<void> {
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) {
      saveSnapshot(this.snapDir, rd.snapshot);
      this.wal.saveSnapshotMark(rd.snapshot.metadata.index, rd.snapshot.metadata.term);
      this.mem.applySnapshot(rd.snapshot);
    }
    this.wal.save(rd.hardState, rd.entries, false);
    if (mustSync) {
      if (inlineSync) this.wal.syncNow();
      else await this.wal.sync();
    }
    this.mem.append(rd.entries);
    if (rd.hardState !== undefined) this.mem.setHardState(rd.hardState);
  }

  /**
   * Records a snapshot of the applied state at `index` and compacts the log, keeping `catchUpEntries` entries
   * before it for slow followers; WAL segments wholly below the kept log are released.
   */
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array, catchUpEntries: number): Snapshot {
    const snap = this.mem.createSnapshot(index, cs, data);
    saveSnapshot(this.snapDir, snap);
    this.wal.saveSnapshotMark(snap.metadata.index, snap.metadata.term);
    purgeSnapshots(this.snapDir, SNAPSHOTS_KEPT);
    const compactTo = index - catchUpEntries;
    if (compactTo > this.mem.firstIndex()) {
      this.mem.compact(compactTo);
      this.wal.releaseTo(compactTo);
    }
    return snap;
  }

  close(): void {
    this.wal.close();
  }

  get walSegments(): readonly string[] {
    return this.wal.segmentFiles;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxSizeBytes);
  }
  term(i: number): number {
    return this.mem.term(i);
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  snapshot(): Snapshot {
    return this.mem.snapshot();
  }
}
