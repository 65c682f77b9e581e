// An in-memory Storage (etcd raft's MemoryStorage): the log after the last snapshot, the hard state and the
// snapshot. Used by tests, the simulator and the benchmark; the WAL-backed store implements the same interface.

import { RaftError, RaftErrorCode, assert } from "./errors.js";
import type { ConfState, Entry, HardState, Snapshot, Storage } from "./types.js";
import { EntryType, NONE } from "./types.js";
import { entrySizeBytes, limitSize } from "./util.js";

const EMPTY_DATA = new Uint8Array(0);

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = {
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    data: EMPTY_DATA,
  };
  /**
   * ents[0] is a dummy entry at the last compaction's index and term (the snapshot's, or past it when the log was
   * compacted without a snapshot); ents[i].index === ents[0].index + i.
   */
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_DATA }];

  /** A brand-new member's storage: empty log, snapshot at index 0 term 0 whose confState is `cs`. */
  static fromConfState(cs: ConfState): MemoryStorage {
    const s = new MemoryStorage();
    s.snap = { metadata: { index: 0, term: 0, confState: copyConfState(cs) }, data: EMPTY_DATA };
    return s;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new RaftError(RaftErrorCode.Compacted, `lo(${lo}) <= offset(${offset})`);
    const last = this.lastIndex();
    if (hi > last + 1) throw new RaftError(RaftErrorCode.Unavailable, `hi(${hi}) > lastIndex+1(${last + 1})`);
    assert(lo <= hi, `entries: lo(${lo}) > hi(${hi})`);
    if (lo === hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSizeBytes);
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new RaftError(RaftErrorCode.Compacted, `index(${i}) < offset(${offset})`);
    const e = this.ents[i - offset];
    if (e === undefined) throw new RaftError(RaftErrorCode.Unavailable, `index(${i}) > lastIndex(${this.lastIndex()})`);
    return e.term;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the storage's contents with `snap`; throws SNAP_OUT_OF_DATE if it is older than the current one. */
  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (snap.metadata.index < cur || (snap.metadata.index === cur && cur !== 0)) {
      throw new RaftError(RaftErrorCode.SnapOutOfDate, `snapshot index(${snap.metadata.index}) <= current(${cur})`);
    }
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY_DATA }];
  }

  /** Records a snapshot of the state machine at `index` (≤ lastIndex); the log is not compacted by this. */
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    const offset = this.offset();
    if (index <= this.snap.metadata.index) {
      throw new RaftError(RaftErrorCode.SnapOutOfDate, `index(${index}) <= snapshot(${this.snap.metadata.index})`);
    }
    assert(index <= this.lastIndex(), `createSnapshot: index(${index}) > lastIndex(${this.lastIndex()})`);
    const e = this.ents[index - offset];
    assert(e !== undefined, `createSnapshot: index(${index}) below offset(${offset})`);
    const confState = cs === undefined ? this.snap.metadata.confState : copyConfState(cs);
    this.snap = { metadata: { index, term: e.term, confState }, data };
    return this.snap;
  }

  /** Discards entries before `compactIndex`; the entry at compactIndex becomes the dummy. */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset)
      throw new RaftError(RaftErrorCode.Compacted, `compact(${compactIndex}) <= offset(${offset})`);
    const last = this.lastIndex();
    assert(compactIndex <= last, `compact(${compactIndex}) > lastIndex(${last})`);
    const i = compactIndex - offset;
    const head = this.ents[i];
    assert(head !== undefined, `compact: missing entry ${compactIndex}`);
    const rest = this.ents.slice(i + 1);
    this.ents = [{ term: head.term, index: head.index, type: EntryType.Normal, data: EMPTY_DATA }, ...rest];
  }

  /** Appends `entries`, first truncating any existing suffix they overwrite; entries already compacted are skipped. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const firstNew = entries[0]!.index;
    const lastNew = firstNew + entries.length - 1;
    if (lastNew < first) return;
    const skip = first > firstNew ? first - firstNew : 0;
    const start = firstNew + skip;
    const offset = this.offset();
    const at = start - offset;
    assert(at <= this.ents.length, `append: gap, first new index(${start}) > lastIndex+1(${this.lastIndex() + 1})`);
    if (at < this.ents.length) this.ents.length = at;
    for (let k = skip; k < entries.length; k++) this.ents.push(entries[k]!);
  }

  /** Total bytes of entries held (a rough measure for tests). */
  sizeBytes(): number {
    let n = 0;
    for (const e of this.ents) n += entrySizeBytes(e);
    return n;
  }

  private offset(): number {
    return this.ents[0]!.index;
  }
}

function copyConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
