// The MVCC key-value store over the backend's key-ordered layout.
//
// Design: every revision lives in LMDB under (key, main, sub) (layout.ts), so a Range at revision R is one
// forward scan and — the point — a worker thread with its own LMDB snapshot answers it with no help from the
// main thread and no copy of an index. Reads use no in-memory index; the cost is that a Range scans every
// stored revision of the keys in its span, which compaction bounds. Writes use one small in-memory map of
// live keys → newest revision, create revision, version and lease (LiveIndex in write_txn.ts), rebuilt by one
// scan on open, so a put needs no read unless the value it replaces is asked for (then one exact get). A paged
// Range (a range end and a limit, or count only) takes its `count` from the key count kept beside that map
// (key_count.ts) and stops scanning once its page is full, so a LIST paged at one revision does not read every
// remaining key on every page. The current and compacted revisions are in the meta bucket, written in the same
// transaction as the data.
//
// Writes: write() applies a batch of requests (entries applied from Raft) in one backend batch with the
// consistent index (a batch of point writes may wait in the backend's write buffer, which every read sees);
// each request is validated first and refused whole (etcd's error) or applied whole.
// Beside it: one write request's changes (write_txn.ts), physical compaction (compaction.ts), HashKV's chunked
// scan (hash_kv.ts) and the gate that holds traffic while the backend is swapped (traffic_gate.ts).
import { availableParallelism } from "node:os";

import { Backend, ReadMode, decodeU64, encodeU64, type BackendSize } from "../backend/backend.js";
import type { Entry, ReadView, WriteView } from "../backend/read_view.js";
import { isStorageFailure } from "../backend/storage_failure.js";
import { UndoLog } from "../backend/undo_log.js";
import { EtcdError, isEtcdError } from "../errors.js";
import { applyCompact, sameKeyPart } from "./compaction.js";
import { FIRST_HASH_CHUNK, hashChunk, type HashChunk } from "./hash_kv.js";
import {
  KEY_BUCKET,
  MVCC_META_BUCKET,
  REV_BYTES,
  SHORT_KEY_MAX_BYTES,
  isLongKey,
  isLongLayout,
  layoutKey,
  mainRevisionOf,
  revisionOf,
  userKeyOf,
} from "./layout.js";
import { KeyCount } from "./key_count.js";
import { rangeTask, type RangeTaskArgs, type RangeTaskResult } from "./range_task.js";
import type {
  CompactResponse,
  DeleteRangeRequest,
  Effect,
  DeleteRangeResponse,
  HashKVResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
  WriteRequest,
  WriteResponse,
} from "./types.js";
import { TrafficGate } from "./traffic_gate.js";
import { checkDelete, checkPut, checkRange, checkTxn, type RequestLimits } from "./validate.js";
import { decodeKeyValue } from "./kv_codec.js";
import {
  BatchIndex,
  META_COMPACT_KEY,
  META_CURRENT_KEY,
  PendingAttachments,
  liveEntryOf,
  WriteTxn,
  framedKvs,
  isEmptySpan,
  keyId,
  rangeArgs,
  resolveRev,
  unpack,
  type Change,
  type LeaseAttacher,
  type LiveEntry,
} from "./write_txn.js";

export type { Change, LeaseAttacher };
/** Called after each committed batch with its changes in revision order (the watchable store's feed). */
export type CommitListener = (changes: readonly Change[], revision: number, compactRevision: number) => void;

export { ReadMode };

/** A fresh etcd store is at revision 1; the first write gets revision 2. */
const INITIAL_REV = 1;
/**
 * Ranges with a range end and no limit, or a limit above this, go to a worker thread when there are any. A page
 * of a paginated LIST (kube-apiserver asks for 500) read on the main thread copied every value into a fresh
 * buffer and left it to the main thread's GC; a worker reads zero-copy views into a reused output slab.
 */
const WORKER_RANGE_MIN_LIMIT = 100;
const RANGE_TASK = "range";
const DEFAULT_READ_WORKERS = Math.max(1, availableParallelism() - 1);

export interface KvStoreOptions {
  readonly readMode?: ReadMode;
  /**
   * Worker threads for long ranges (0 = all on the main thread). Default: one less than the cores (at least
   * one), so long Ranges queue among themselves rather than take the core the commits run on.
   */
  readonly readWorkers?: number;
  /**
   * Bounds a write is checked against as it applies (etcd's defaults when absent). A member passes UNLIMITED:
   * its proposer checks the configured bounds, and apply must not depend on a member's flags.
   */
  readonly limits?: RequestLimits;
  /** Buckets other modules keep in the same backend (and so in the same transactions): leases, auth. */
  readonly extraBuckets?: readonly string[];
  /** A background fsync or buffered commit of the backend failed (see BackendOptions.onSyncError). */
  readonly onSyncError?: (err: Error) => void;
  /** Each backend commit's duration (see BackendOptions.onCommit). */
  readonly onCommit?: (seconds: number) => void;
  /** The backend's batch interval and limit (BackendOptions.batchIntervalMs, batchLimit). */
  readonly batchIntervalMs?: number;
  readonly batchLimit?: number;
}

export interface RangeOptions {
  /** Force (true) or forbid (false) the worker thread; default: long ranges go to a worker. */
  readonly worker?: boolean;
}

export class KvStore {
  #backend: Backend;
  readonly #dir: string;
  readonly #opts: KvStoreOptions;
  /** Held while the backend is swapped (defragmentation, a snapshot's backend): reads and writes wait. */
  readonly #traffic = new TrafficGate();
  #lastSize: BackendSize = { dbSizeBytes: 0, dbSizeInUseBytes: 0 };
  private currentRev: number;
  private compactRev: number;
  private listener: CommitListener | undefined;
  private leases: LeaseAttacher | undefined;
  /** Live keys → their newest entry (see LiveIndex in write_txn.ts). */
  private readonly live = new Map<string, LiveEntry>();
  /** Whether some watcher wants prev_kv (the watchable store says): puts then read the value they replace. */
  #prevKvWanted: () => boolean = () => true;
  /** Range counts from memory (key_count.ts), kept beside `live`. */
  readonly #keyCount = new KeyCount();
  /**
   * What the store ran since it opened, as etcd's mvcc counters count it (etcd_mvcc_{range,put,delete,txn}_total,
   * etcd_debugging_mvcc_total_put_size_in_bytes): a request of more than one operation is also a txn.
   */
  readonly counts = { ranges: 0, puts: 0, deletes: 0, txns: 0, putBytes: 0 };

  private constructor(backend: Backend, dir: string, opts: KvStoreOptions) {
    this.#backend = backend;
    this.#dir = dir;
    this.#opts = opts;
    this.currentRev = INITIAL_REV;
    this.compactRev = 0;
    this.#loadRevisions(backend);
    this.#loadLive(backend);
  }

  /** The current and compacted revisions as the meta bucket holds them. */
  #loadRevisions(backend: Backend): void {
    const meta = backend.readNow((v) => ({
      cur: v.get(MVCC_META_BUCKET, META_CURRENT_KEY),
      cmp: v.get(MVCC_META_BUCKET, META_COMPACT_KEY),
    }));
    this.currentRev = meta.cur === undefined ? INITIAL_REV : decodeU64(meta.cur);
    this.compactRev = meta.cmp === undefined ? 0 : decodeU64(meta.cmp);
  }

  #loadLive(backend: Backend): void {
    this.live.clear();
    this.#keyCount.reset(this.currentRev);
    const misfiled: Entry[] = [];
    backend.readNow((v) => {
      // Entries come in (key, revision) order: the last one of each key decides whether it is live. A long
      // key's layout holds only its hash; its user key is read from the value, which a live entry has.
      let last: Entry | undefined;
      const settle = (): void => {
        if (last === undefined || last.value.length === 0) return;
        const kv = decodeKeyValue(last.value);
        const user = isLongLayout(last.key) ? kv.key : userKeyOf(last.key);
        this.live.set(keyId(user), liveEntryOf(revisionOf(last.key), kv));
      };
      for (const entry of v.range(KEY_BUCKET, {})) {
        if (last !== undefined && !sameKeyPart(last.key, entry.key)) settle();
        last = entry;
        if (
          !isLongLayout(entry.key) &&
          entry.key.length - REV_BYTES - 2 > SHORT_KEY_MAX_BYTES &&
          isLongKey(userKeyOf(entry.key))
        ) {
          misfiled.push({ key: new Uint8Array(entry.key), value: new Uint8Array(entry.value) });
        }
      }
      settle();
    });
    if (misfiled.length > 0) {
      // Keys of SHORT_KEY_MAX_BYTES + 1 to ~1,960 bytes that an older build stored in the short layout: moved
      // to the long layout (same revisions and values) once, so lookups, which compute the long layout, find them.
      backend.rewriteNow((tx) => {
        for (const { key, value } of misfiled) {
          tx.del(KEY_BUCKET, key);
          tx.put(KEY_BUCKET, layoutKey(userKeyOf(key), revisionOf(key)), value);
        }
      });
      this.#loadLive(backend);
    }
  }

  /**
   * Replaces the whole store with a backend file received from the leader (a Raft snapshot's body; etcd swaps in
   * the db file a lagging member receives, etcd-ts copies its contents in one write transaction): reads and
   * writes in flight finish first, new ones wait, then revisions, compaction point and live keys are read again.
   */
  async replaceWith(file: string): Promise<void> {
    await this.#traffic.exclusive(async () => {
      this.#backend.replaceContentsFrom(file);
      await this.#backend.sync();
      this.#loadRevisions(this.#backend);
      this.#loadLive(this.#backend);
    });
  }

  static open(dataDir: string, opts: KvStoreOptions = {}): KvStore {
    return new KvStore(openBackend(dataDir, opts), dataDir, opts);
  }

  /** The backend (a new object after each defragmentation). */
  get backend(): Backend {
    return this.#backend;
  }

  /** Whether a defragmentation has the backend closed right now. */
  get defragmenting(): boolean {
    return this.#traffic.held;
  }

  /**
   * etcd's defrag: waits for reads and writes in flight, holds new ones, rewrites the backend file with only its
   * live pages, and reopens it. Like etcd's, it stops this member's traffic while it runs.
   */
  async defragment(): Promise<{ beforeBytes: number; afterBytes: number }> {
    return await this.#traffic.exclusive(async () => {
      await this.#backend.close();
      try {
        return await Backend.defragment(this.#dir);
      } finally {
        // On failure the old file is untouched: serve on from it.
        this.#backend = openBackend(this.#dir, this.#opts);
      }
    });
  }

  /**
   * One listener (the watchable store) sees every committed change. `prevKvWanted` says whether its changes
   * must carry the values they replace (without it they always do); a change without one names where it is.
   */
  setCommitListener(listener: CommitListener | undefined, prevKvWanted?: () => boolean): void {
    this.listener = listener;
    this.#prevKvWanted = prevKvWanted ?? (() => true);
  }

  /** The lessor that checks and tracks the leases of puts (without one, any lease id is taken as given). */
  setLeaseAttacher(leases: LeaseAttacher | undefined): void {
    this.leases = leases;
  }

  /** Every live key with a lease, as (lease, key): how a restarted lessor learns its attachments. */
  liveLeasedKeys(): { lease: bigint; key: Uint8Array }[] {
    const out: { lease: bigint; key: Uint8Array }[] = [];
    for (const [id, e] of this.live) if (e.lease !== 0n) out.push({ lease: e.lease, key: Buffer.from(id, "latin1") });
    return out;
  }

  /** Live keys (etcd_debugging_mvcc_keys_total). */
  get keyCount(): number {
    return this.live.size;
  }

  get revision(): number {
    return this.currentRev;
  }

  get compactRevision(): number {
    return this.compactRev;
  }

  consistentIndex(): number {
    return this.backend.consistentIndex();
  }

  size(): BackendSize {
    if (!this.#traffic.held) this.#lastSize = this.backend.size();
    return this.#lastSize;
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  async range(r: RangeRequest, opts: RangeOptions = {}): Promise<RangeResponse> {
    checkRange(r);
    this.counts.ranges++;
    if (!this.#traffic.tryEnter()) await this.#traffic.enter();
    try {
      return await this.#range(r, opts);
    } finally {
      this.#traffic.leave();
    }
  }

  async #range(r: RangeRequest, opts: RangeOptions): Promise<RangeResponse> {
    const long = (r.rangeEnd?.length ?? 0) > 0 && ((r.limit ?? 0) <= 0 || (r.limit ?? 0) > WORKER_RANGE_MIN_LIMIT);
    const useWorker = (opts.worker ?? long) && this.backend.hasWorkers && !isEmptySpan(r.key, r.rangeEnd);
    // The revision is resolved when the read starts (in blocking mode, after the read lock).
    let header = 0;
    let known: number | undefined;
    const args = (): RangeTaskArgs | undefined => {
      header = this.currentRev;
      const rev = resolveRev(r.revision, this.currentRev, this.compactRev);
      if (isEmptySpan(r.key, r.rangeEnd)) return undefined;
      const a = { ...rangeArgs(r, rev), lendOutput: useWorker };
      known = this.#countFromMemory(a, r, rev);
      // The count is known: the scan stops once it has limit + 1 keys (for `more`) instead of reading the rest.
      return known === undefined ? a : { ...a, stopAtLimit: true };
    };
    const res = useWorker
      ? await this.backend.readInWorker<RangeTaskArgs | undefined, RangeTaskResult | undefined>(
          RANGE_TASK,
          args,
          runRange,
        )
      : await this.backend.read((view) => runRange(view, args()));
    if (res === undefined) return { revision: header, kvs: [], more: false, count: 0 };
    if (res.compactedAt > 0) throw new EtcdError("COMPACTED", `revision < compacted ${res.compactedAt}`);
    // kvs is built on first use: the API sends `framed` as it is, and 50,000 subarrays per LIST made on the main
    // thread are young-generation garbage that lengthens the scavenges commits wait behind.
    let kvs: readonly Uint8Array[] | undefined;
    return {
      revision: header,
      get kvs() {
        return (kvs ??= unpack(res));
      },
      framed: framedKvs(res),
      more: res.more,
      count: known ?? res.count,
      ...(res.release === undefined ? {} : { release: res.release }),
    };
  }

  /**
   * The count of a paged Range (a range end and a limit, or count only; no sort, no filter) from the in-memory
   * key count, or undefined when the scan must count (a revision older than the count's log, or another form).
   */
  #countFromMemory(a: RangeTaskArgs, r: RangeRequest, rev: number): number | undefined {
    const end = r.rangeEnd;
    if (end === undefined || end.length === 0) return undefined;
    if (a.limit <= 0 && !a.countOnly) return undefined;
    if (a.sortOrder !== 0 || a.sortTarget !== 0) return undefined;
    if (a.minModRevision > 0 || a.maxModRevision > 0 || a.minCreateRevision > 0 || a.maxCreateRevision > 0)
      return undefined;
    const to = end.length === 1 && end[0] === 0 ? undefined : keyId(end);
    return this.#keyCount.count(this.live, this.currentRev, rev, keyId(r.key), to);
  }

  /**
   * Applies write requests in order in one backend transaction, storing `consistentIndex` with them.
   * Each slot of the result is the request's response or the EtcdError that refused it (nothing applied).
   * `guard(slot)` runs just before each request, in order, and refuses it by throwing an EtcdError (apply-time
   * checks that must see the effects of the requests before it in the same batch).
   */
  async write(
    reqs: readonly WriteRequest[],
    consistentIndex?: number,
    guard?: (slot: number) => void,
  ): Promise<(WriteResponse | EtcdError)[]> {
    if (!this.#traffic.tryEnter()) await this.#traffic.enter();
    try {
      return await this.#write(reqs, consistentIndex, guard);
    } finally {
      this.#traffic.leave();
    }
  }

  /**
   * Every request is atomic inside the batch: one that throws half-way (an EtcdError, or anything else, which
   * becomes APPLY_FAILED) has its writes, live-index changes and lease attachments taken back, so its outcome and
   * the backend after it do not depend on which requests shared its batch. Only a storage failure ends the batch.
   */
  async #write(
    reqs: readonly WriteRequest[],
    consistentIndex?: number,
    guard?: (slot: number) => void,
  ): Promise<(WriteResponse | EtcdError)[]> {
    const index = new BatchIndex(this.live);
    const run = (tx: WriteView) => {
      const state = { rev: this.currentRev, compact: this.compactRev };
      const results: (WriteResponse | EtcdError)[] = [];
      const changes: Change[] = [];
      // Every change of a request is stored under the request's new revision, which nothing held before it.
      const undo = new UndoLog(tx, (bucket, key) => bucket === KEY_BUCKET && mainRevisionOf(key) > state.rev);
      for (let slot = 0; slot < reqs.length; slot++) {
        results.push(this.#writeOne(tx, undo, reqs[slot] as WriteRequest, state, index, changes, guard, slot));
      }
      if (state.rev !== this.currentRev) tx.put(MVCC_META_BUCKET, META_CURRENT_KEY, encodeU64(state.rev));
      return { results, rev: state.rev, compact: state.compact, changes };
    };
    // Nothing of a batch that failed was committed: neither are its live-index changes. A batch of point writes
    // may stay in the backend's write buffer for a while (its reads are exact gets, not ranges over the buffer).
    const out = await this.backend.batch(consistentIndex, run, () => index.abort(), {
      deferrable: reqs.every(isPointWrite),
    });
    index.apply(this.#keyCount);
    this.currentRev = out.rev;
    this.compactRev = out.compact;
    this.listener?.(out.changes, out.rev, out.compact);
    return out.results;
  }

  #count(ops: WriteTxn["ops"]): void {
    const c = this.counts;
    c.ranges += ops.ranges;
    c.puts += ops.puts;
    c.deletes += ops.deletes;
    c.putBytes += ops.putBytes;
    if (ops.ranges + ops.puts + ops.deletes > 1) c.txns++;
  }

  #writeOne(
    tx: WriteView,
    undo: UndoLog,
    req: WriteRequest,
    state: { rev: number; compact: number },
    index: BatchIndex,
    changes: Change[],
    guard: ((slot: number) => void) | undefined,
    slot: number,
  ): WriteResponse | EtcdError {
    undo.reset();
    index.mark();
    try {
      guard?.(slot);
      if ("compact" in req) {
        // Compaction replaces many stored values: a child transaction rolls it back without holding them.
        const compactIn = (t: WriteView): number => applyCompact(t, req.compact.revision, state.rev, state.compact);
        state.compact = tx.atomic !== undefined ? tx.atomic(compactIn) : compactIn(undo);
        return { compact: { revision: state.rev } };
      }
      const leases = this.leases === undefined ? undefined : new PendingAttachments(this.leases);
      const w = new WriteTxn(undo, index, state.rev, state.compact, leases, this.#prevKvWanted());
      const { response, afterApply } =
        "effect" in req
          ? applyEffect(w, undo, req.effect)
          : { response: applyWrite(w, req, this.#opts.limits), afterApply: undefined };
      leases?.flush();
      afterApply?.();
      this.#count(w.ops);
      state.rev = w.rev;
      for (const c of w.changes) changes.push(c); // no spread: a delete may change millions of keys
      return response;
    } catch (err) {
      if (isStorageFailure(err)) throw err;
      undo.rollback();
      index.rollback();
      const refusal = isEtcdError(err)
        ? err
        : new EtcdError("APPLY_FAILED", err instanceof Error ? (err.stack ?? err.message) : String(err));
      if (!("effect" in req) || req.effect.refused === undefined) return refusal;
      const instead = req.effect.refused(tx, refusal);
      return { effect: { revision: state.rev, deleted: 0, value: instead.value } };
    }
  }

  async put(r: PutRequest, consistentIndex?: number): Promise<PutResponse> {
    return pick(await this.write([{ put: r }], consistentIndex), "put");
  }

  async deleteRange(r: DeleteRangeRequest, consistentIndex?: number): Promise<DeleteRangeResponse> {
    return pick(await this.write([{ deleteRange: r }], consistentIndex), "deleteRange");
  }

  async txn(r: TxnRequest, consistentIndex?: number): Promise<TxnResponse> {
    return pick(await this.write([{ txn: r }], consistentIndex), "txn");
  }

  async compact(revision: number, consistentIndex?: number): Promise<CompactResponse> {
    return pick(await this.write([{ compact: { revision } }], consistentIndex), "compact");
  }

  /** CRC32 of every stored (layout key, value) with main revision ≤ rev (etcd's HashKV, for corruption checks). */
  async hashKV(revision = 0): Promise<HashKVResponse> {
    await this.#traffic.enter();
    try {
      return await this.#hashKV(revision);
    } finally {
      this.#traffic.leave();
    }
  }

  /**
   * Hashes in chunks with the event loop free between them: the corruption checks hash every member's whole
   * history, which must not stall Raft's heartbeats. Entries at or below the hashed revision change only by
   * compaction (new writes have newer revisions and are skipped), so a pass during which the compacted revision
   * stayed put is the same as one taken in a single read; a pass a compaction ran through is started again.
   */
  async #hashKV(revision: number): Promise<HashKVResponse> {
    for (;;) {
      const compacted = this.compactRev;
      const header = this.currentRev;
      const rev = resolveRev(revision, this.currentRev, this.compactRev);
      let chunk: HashChunk = FIRST_HASH_CHUNK;
      while (!chunk.done) {
        const from = chunk;
        chunk = await this.backend.read((view) => hashChunk(view, rev, from));
        if (!chunk.done) await new Promise((resolve) => setImmediate(resolve));
      }
      if (this.compactRev === compacted) return { revision: header, hash: chunk.hash, compactRevision: compacted };
    }
  }
}

function openBackend(dataDir: string, opts: KvStoreOptions): Backend {
  return Backend.open(dataDir, {
    buckets: [KEY_BUCKET, MVCC_META_BUCKET, ...(opts.extraBuckets ?? [])],
    workerTasks: { [RANGE_TASK]: rangeTask as (v: ReadView, a: never) => unknown },
    readWorkers: opts.readWorkers ?? DEFAULT_READ_WORKERS,
    ...(opts.readMode !== undefined ? { readMode: opts.readMode } : {}),
    ...(opts.onSyncError !== undefined ? { onSyncError: opts.onSyncError } : {}),
    ...(opts.onCommit !== undefined ? { onCommit: opts.onCommit } : {}),
    ...(opts.batchIntervalMs !== undefined ? { batchIntervalMs: opts.batchIntervalMs } : {}),
    ...(opts.batchLimit !== undefined ? { batchLimit: opts.batchLimit } : {}),
  });
}

/** Puts, and txns whose compares and ops each name one key and delete nothing: what a buffered batch may hold. */
function isPointWrite(req: WriteRequest): boolean {
  return "put" in req || ("txn" in req && isPointTxn(req.txn));
}

function isPointTxn(t: TxnRequest): boolean {
  const oneKey = (end: Uint8Array | undefined): boolean => end === undefined || end.length === 0;
  const pointOp = (op: TxnRequest["success"][number]): boolean =>
    "put" in op || ("range" in op && oneKey(op.range.rangeEnd)) || ("txn" in op && isPointTxn(op.txn));
  return t.compare.every((c) => oneKey(c.rangeEnd)) && t.success.every(pointOp) && t.failure.every(pointOp);
}

function runRange(view: ReadView, args: RangeTaskArgs | undefined): RangeTaskResult | undefined {
  return args === undefined ? undefined : rangeTask(view, args);
}

function applyEffect(
  w: WriteTxn,
  tx: WriteView,
  effect: Effect,
): { response: WriteResponse; afterApply: (() => void) | undefined } {
  const out = effect.run(tx);
  let deleted = 0;
  for (const key of out.deleteKeys ?? []) deleted += w.deleteRange({ key }).deleted;
  return { response: { effect: { revision: w.rev, deleted, value: out.value } }, afterApply: out.afterApply };
}

function applyWrite(
  w: WriteTxn,
  req: Exclude<WriteRequest, { compact: unknown } | { effect: unknown }>,
  limits?: RequestLimits,
): WriteResponse {
  if ("put" in req) {
    checkPut(req.put, limits);
    return { put: w.put(req.put) };
  }
  if ("deleteRange" in req) {
    checkDelete(req.deleteRange);
    return { deleteRange: w.deleteRange(req.deleteRange) };
  }
  checkTxn(req.txn, limits);
  return { txn: w.txn(req.txn) };
}

type Unwrapped<K extends string> = Extract<WriteResponse, Record<K, unknown>> extends Record<K, infer V> ? V : never;

function pick<K extends "put" | "deleteRange" | "txn" | "compact" | "effect">(
  results: (WriteResponse | EtcdError)[],
  kind: K,
): Unwrapped<K> {
  const r = results[0];
  if (r === undefined) throw new Error(`KvStore: no result for ${kind}`);
  if (r instanceof EtcdError) throw r;
  return (r as Record<K, Unwrapped<K>>)[kind];
}
