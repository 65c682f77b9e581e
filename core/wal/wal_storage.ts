// The raft Storage of a member: the WAL and snapshot files are the durable copy, a MemoryStorage the
// in-memory view raft reads. save() persists a Ready (snapshot, entries, hard state; one fdatasync when it
// must sync) before the in-memory view changes, so raft never reads what a crash could lose.
import { join } from "node:path";

import { MemoryStorage } from "../raft/memory_storage.js";
import type { ConfState, Entry, HardState, Snapshot, Storage } from "../raft/types.js";
import { failpoint } from "../failpoints.js";
import { loadSnapshotAt, purgeSnapshots, saveSnapshot } from "./snap.js";
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

  /**
   * Opens <dataDir>/wal and <dataDir>/snap, replaying them into the in-memory view. The snapshot loaded is the one
   * the WAL's last snapshot mark names: a snapshot file the WAL never recorded (a crash between the two writes)
   * is ignored, and a recorded one that is missing is an error.
   */
  static open(dataDir: string, opts: WalOptions = {}): WalStorage {
    const snapDir = join(dataDir, "snap");
    const { wal, state } = Wal.open(join(dataDir, "wal"), opts);
    const mark = state.snapshot;
    const snap = mark !== undefined && mark.index > 0 ? loadSnapshotAt(snapDir, mark.index, mark.term) : undefined;
    const mem = new MemoryStorage();
    if (snap !== undefined) mem.applySnapshot(snap);
    const base = mem.lastIndex();
    const entries = state.entries.filter((e) => e.index > base);
    const first = entries[0];
    if (first !== undefined && first.index > base + 1) {
      throw new Error(`wal ${join(dataDir, "wal")}: entries start at ${first.index}, snapshot ends at ${base}`);
    }
    mem.append(entries);
    const hs = state.hardState;
    if (hs !== undefined)
      mem.setHardState(snap === undefined ? hs : hardStateCovering(hs, snap.metadata.index, snap.metadata.term));
    return new WalStorage(wal, snapDir, mem, state.repaired);
  }

  /** Persists a Ready's snapshot, entries and hard state (fdatasync once when mustSync), then updates memory. */
  save(rd: PersistBatch, mustSync: boolean): void {
    this.#write(rd, mustSync || hasSnapshot(rd));
    this.#show(rd);
  }

  /**
   * As save(): entries and hard state are written, synced, and only then shown to raft's in-memory view. The
   * fdatasync runs on libuv's thread pool while the event loop goes on (awaited), or with `inlineSync` on the
   * calling thread (blocking it for the sync).
   */
  async saveAsync(rd: PersistBatch, mustSync: boolean, inlineSync = false): Promise<void> {
    this.#write(rd, false);
    // Raft asks for no sync when a snapshot comes with no entries and no new term or vote, but the snapshot must
    // be durable before its body replaces the backend and is deleted.
    if (mustSync || hasSnapshot(rd)) {
      if (inlineSync) this.wal.syncNow();
      else await this.wal.sync();
    }
    if (hasWrites(rd)) failpoint("wal-after-save");
    this.#show(rd);
  }

  /**
   * One WAL write for the whole Ready. A snapshot from the leader has its metadata file written (and synced)
   * first, then its mark goes into the same WAL write as the entries and the hard state that commits it.
   */
  #write(rd: PersistBatch, sync: boolean): void {
    if (!hasWrites(rd)) return;
    failpoint("wal-before-save");
    const snap = hasSnapshot(rd) ? rd.snapshot : undefined;
    if (snap !== undefined) {
      failpoint("snap-before-save");
      saveSnapshot(this.snapDir, snap);
      failpoint("snap-after-save");
    }
    const mark = snap === undefined ? undefined : { index: snap.metadata.index, term: snap.metadata.term };
    this.wal.save(rd.hardState, rd.entries, sync, mark);
  }

  #show(rd: PersistBatch): void {
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) this.mem.applySnapshot(rd.snapshot);
    this.mem.append(rd.entries);
    if (rd.hardState !== undefined) this.mem.setHardState(rd.hardState);
  }

  /**
   * Records a snapshot of the applied state at `index` and compacts the log, keeping `catchUpEntries` entries
   * before it for slow followers; WAL segments wholly below the kept log are released.
   */
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array, catchUpEntries: number): Snapshot {
    const snap = this.mem.createSnapshot(index, cs, data);
    failpoint("snap-before-save");
    saveSnapshot(this.snapDir, snap);
    this.wal.saveSnapshotMark(snap.metadata.index, snap.metadata.term);
    failpoint("snap-after-save");
    purgeSnapshots(this.snapDir, SNAPSHOTS_KEPT);
    const compactTo = index - catchUpEntries;
    // The in-memory log may already start past compactTo (trimLog); the WAL segments go by the snapshot alone.
    if (compactTo > this.mem.firstIndex()) this.mem.compact(compactTo);
    if (compactTo > 0 && this.wal.releaseTo(compactTo) > 0) failpoint("wal-after-release");
    return snap;
  }

  /**
   * Drops the in-memory entries up to `index` (which becomes the in-memory log's dummy) without a snapshot: the
   * WAL keeps them until one is cut, so only Raft's reads change — an index at or below it is COMPACTED, and a
   * member that needs it is sent a snapshot. The caller guarantees every member has them and they are applied.
   */
  trimLog(index: number): void {
    if (index > this.mem.firstIndex() && index <= this.mem.lastIndex()) this.mem.compact(index);
  }

  close(): void {
    this.wal.close();
  }

  /** Closes the WAL without a final fsync (after a failed write or fsync, which is never retried). */
  abandon(): void {
    this.wal.abandon();
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

function hasSnapshot(rd: PersistBatch): rd is PersistBatch & { readonly snapshot: Snapshot } {
  return rd.snapshot !== undefined && rd.snapshot.metadata.index > 0;
}

function hasWrites(rd: PersistBatch): boolean {
  return rd.entries.length > 0 || rd.hardState !== undefined || hasSnapshot(rd);
}

/**
 * The hard state to start from when the WAL's last write was cut after a received snapshot's mark: the snapshot
 * is committed by definition, so the commit index is at least its index and the term at least its term (a term
 * raised here carries no vote: nothing was promised from the lost record, messages go out after the sync).
 */
function hardStateCovering(hs: HardState, index: number, term: number): HardState {
  const commit = Math.max(hs.commit, index);
  return hs.term >= term ? { ...hs, commit } : { term, vote: 0n, commit };
}
