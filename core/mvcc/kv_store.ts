// The MVCC key-value store over the backend's key-ordered layout.
//
// Design: every revision lives in LMDB under (key, main, sub) (layout.ts), so a Range at revision R is one
// forward scan and — the point — a worker thread with its own LMDB snapshot answers it with no help from the
// main thread and no copy of an index. Reads use no in-memory index; the cost is that a Range scans every
// stored revision of the keys in its span, which compaction bounds. Writes use one small in-memory map of
// live keys → newest revision (LiveIndex in write_txn.ts), rebuilt by one scan on open, so a put finds its
// previous version with an exact get. The current and compacted revisions are in the meta bucket, written in
// the same transaction as the data.
//
// Writes: write() applies a batch of requests (entries applied from Raft) in one backend transaction with the
// consistent index; each request is validated first and refused whole (etcd's error) or applied whole.
import { availableParallelism } from "node:os";
import { crc32 } from "node:zlib";

import { Backend, ReadMode, decodeU64, encodeU64, type BackendSize } from "../backend/backend.js";
import type { ReadView, WriteView } from "../backend/read_view.js";
import { EtcdError, isEtcdError } from "../errors.js";
import { KEY_BUCKET, MVCC_META_BUCKET, layoutKey, revisionOf, userKeyOf, type Revision } from "./layout.js";
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
import { checkDelete, checkPut, checkRange, checkTxn } from "./validate.js";
import { decodeKeyValue } from "./kv_codec.js";
import { BatchIndex, META_COMPACT_KEY, META_CURRENT_KEY, WriteTxn, framedKvs, isEmptySpan, keyId, rangeArgs, resolveRev, unpack, type Change, type LeaseAttacher } from "./write_txn.js";

export type { Change, LeaseAttacher };
/** Called after each committed batch with its changes in revision order (the watchable store's feed). */
export type CommitListener = (changes: readonly Change[], revision: number, compactRevision: number) => void;

export { ReadMode };

/** A fresh etcd store is at revision 1; the first write gets revision 2. */
const INITIAL_REV = 1;
/** Ranges with a range end and no limit, or a limit above this, go to a worker thread when there are any. */
const WORKER_RANGE_MIN_LIMIT = 1000;
const RANGE_TASK = "range";
const DEFAULT_READ_WORKERS = Math.max(1, availableParallelism() - 1);

export interface KvStoreOptions {
  readonly readMode?: ReadMode;
  /**
   * Worker threads for long ranges (0 = all on the main thread). Default: one less than the cores (at least
   * one), so long Ranges queue among themselves rather than take the core the commits run on.
   */
  readonly readWorkers?: number;
  /** --max-txn-ops: operations per branch of a txn (etcd's default 128). */
  readonly maxTxnOps?: number;
  /** Buckets other modules keep in the same backend (and so in the same transactions): leases, auth. */
  readonly extraBuckets?: readonly string[];
  /** A background fsync of the backend failed (see BackendOptions.onSyncError). */
  readonly onSyncError?: (err: Error) => void;
}

export interface RangeOptions {
  /** Force (true) or forbid (false) the worker thread; default: long ranges go to a worker. */
  readonly worker?: boolean;
}

export class KvStore {
  #backend: Backend;
  readonly #dir: string;
  readonly #opts: KvStoreOptions;
  /** Set while a defragmentation has the backend closed: reads and writes wait on it. */
  #gate: Promise<void> | undefined;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #lastSize: BackendSize = { dbSizeBytes: 0, dbSizeInUseBytes: 0 };
  private currentRev: number;
  private compactRev: number;
  private listener: CommitListener | undefined;
  private leases: LeaseAttacher | undefined;
  /** Live keys → revision of their newest entry (see LiveIndex in write_txn.ts). */
  private readonly live = new Map<string, Revision>();

  private constructor(backend: Backend, dir: string, opts: KvStoreOptions) {
    this.#backend = backend;
    this.#dir = dir;
    this.#opts = opts;
    const meta = backend.readNow((v) => ({ cur: v.get(MVCC_META_BUCKET, META_CURRENT_KEY), cmp: v.get(MVCC_META_BUCKET, META_COMPACT_KEY) }));
    this.currentRev = meta.cur === undefined ? INITIAL_REV : decodeU64(meta.cur);
    this.compactRev = meta.cmp === undefined ? 0 : decodeU64(meta.cmp);
    this.#loadLive(backend);
  }

  #loadLive(backend: Backend): void {
    this.live.clear();
    backend.readNow((v) => {
      // Entries come in (key, revision) order: the last one of each key decides whether it is live.
      for (const { key, value } of v.range(KEY_BUCKET, {})) {
        const id = keyId(userKeyOf(key));
        if (value.length === 0) this.live.delete(id);
        else this.live.set(id, revisionOf(key));
      }
    });
  }

  /**
   * Replaces the whole store with a backend file received from the leader (a Raft snapshot's body; etcd swaps in
   * the db file a lagging member receives, etcd-ts copies its contents in one write transaction): reads and
   * writes in flight finish first, new ones wait, then revisions, compaction point and live keys are read again.
   */
  async replaceWith(file: string): Promise<void> {
    while (this.#gate !== undefined) await this.#gate;
    let open = (): void => undefined;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    try {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      this.#backend.replaceContentsFrom(file);
      await this.#backend.sync();
      const meta = this.#backend.readNow((v) => ({ cur: v.get(MVCC_META_BUCKET, META_CURRENT_KEY), cmp: v.get(MVCC_META_BUCKET, META_COMPACT_KEY) }));
      this.currentRev = meta.cur === undefined ? INITIAL_REV : decodeU64(meta.cur);
      this.compactRev = meta.cmp === undefined ? 0 : decodeU64(meta.cmp);
      this.#loadLive(this.#backend);
    } finally {
      this.#gate = undefined;
      open();
    }
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
    return this.#gate !== undefined;
  }

  /**
   * etcd's defrag: waits for reads and writes in flight, holds new ones, rewrites the backend file with only its
   * live pages, and reopens it. Like etcd's, it stops this member's traffic while it runs.
   */
  async defragment(): Promise<{ beforeBytes: number; afterBytes: number }> {
    while (this.#gate !== undefined) await this.#gate;
    let open = (): void => undefined;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    try {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      await this.#backend.close();
      try {
        return await Backend.defragment(this.#dir);
      } finally {
        // On failure the old file is untouched: serve on from it.
        this.#backend = openBackend(this.#dir, this.#opts);
      }
    } finally {
      this.#gate = undefined;
      open();
    }
  }

  /** Counts an operation in flight, first waiting out a defragmentation. */
  async #enter(): Promise<void> {
    while (this.#gate !== undefined) await this.#gate;
    this.#inFlight++;
  }

  #leave(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) this.#drained?.();
  }

  /** One listener (the watchable store) sees every committed change. */
  setCommitListener(listener: CommitListener | undefined): void {
    this.listener = listener;
  }

  /** The lessor that checks and tracks the leases of puts (without one, any lease id is taken as given). */
  setLeaseAttacher(leases: LeaseAttacher | undefined): void {
    this.leases = leases;
  }

  /** Every live key with a lease, as (lease, key): how a restarted lessor learns its attachments. */
  liveLeasedKeys(): { lease: bigint; key: Uint8Array }[] {
    return this.backend.readNow((v) => {
      const out: { lease: bigint; key: Uint8Array }[] = [];
      for (const [id, rev] of this.live) {
        const bytes = v.get(KEY_BUCKET, layoutKey(Buffer.from(id, "latin1"), rev));
        if (bytes === undefined || bytes.length === 0) continue;
        const kv = decodeKeyValue(bytes);
        if (kv.lease !== 0n) out.push({ lease: kv.lease, key: kv.key });
      }
      return out;
    });
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
    if (this.#gate === undefined) this.#lastSize = this.backend.size();
    return this.#lastSize;
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  async range(r: RangeRequest, opts: RangeOptions = {}): Promise<RangeResponse> {
    checkRange(r);
    if (this.#gate === undefined) this.#inFlight++;
    else await this.#enter();
    try {
      return await this.#range(r, opts);
    } finally {
      this.#leave();
    }
  }

  async #range(r: RangeRequest, opts: RangeOptions): Promise<RangeResponse> {
    const long = (r.rangeEnd?.length ?? 0) > 0 && ((r.limit ?? 0) <= 0 || (r.limit ?? 0) > WORKER_RANGE_MIN_LIMIT);
    const useWorker = (opts.worker ?? long) && this.backend.hasWorkers && !isEmptySpan(r.key, r.rangeEnd);
    // The revision is resolved when the read starts (in blocking mode, after the read lock).
    let header = 0;
    const args = (): RangeTaskArgs | undefined => {
      header = this.currentRev;
      const rev = resolveRev(r.revision, this.currentRev, this.compactRev);
      return isEmptySpan(r.key, r.rangeEnd) ? undefined : { ...rangeArgs(r, rev), lendOutput: useWorker };
    };
    const res = useWorker
      ? await this.backend.readInWorker<RangeTaskArgs | undefined, RangeTaskResult | undefined>(RANGE_TASK, args, runRange)
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
      count: res.count,
      ...(res.release === undefined ? {} : { release: res.release }),
    };
  }

  /**
   * Applies write requests in order in one backend transaction, storing `consistentIndex` with them.
   * Each slot of the result is the request's response or the EtcdError that refused it (nothing applied).
   */
  async write(reqs: readonly WriteRequest[], consistentIndex?: number): Promise<(WriteResponse | EtcdError)[]> {
    if (this.#gate === undefined) this.#inFlight++;
    else await this.#enter();
    try {
      return await this.#write(reqs, consistentIndex);
    } finally {
      this.#leave();
    }
  }

  async #write(reqs: readonly WriteRequest[], consistentIndex?: number): Promise<(WriteResponse | EtcdError)[]> {
    const out = await this.backend.batch(consistentIndex, (tx) => {
      let rev = this.currentRev;
      let compact = this.compactRev;
      const results: (WriteResponse | EtcdError)[] = [];
      const changes: Change[] = [];
      const index = new BatchIndex(this.live);
      for (const req of reqs) {
        try {
          if ("compact" in req) {
            compact = this.applyCompact(tx, req.compact.revision, rev, compact);
            results.push({ compact: { revision: rev } });
            continue;
          }
          const w = new WriteTxn(tx, index, rev, compact, this.leases);
          results.push("effect" in req ? applyEffect(w, tx, req.effect) : applyWrite(w, req, this.#opts.maxTxnOps));
          rev = w.rev;
          changes.push(...w.changes);
        } catch (err) {
          if (!isEtcdError(err)) throw err;
          results.push(err);
        }
      }
      if (rev !== this.currentRev) tx.put(MVCC_META_BUCKET, META_CURRENT_KEY, encodeU64(rev));
      return { results, rev, compact, changes, index };
    });
    out.index.apply();
    this.currentRev = out.rev;
    this.compactRev = out.compact;
    this.listener?.(out.changes, out.rev, out.compact);
    return out.results;
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
    await this.#enter();
    try {
      return await this.#hashKV(revision);
    } finally {
      this.#leave();
    }
  }

  async #hashKV(revision: number): Promise<HashKVResponse> {
    return this.backend.read((view) => {
      const rev = resolveRev(revision, this.currentRev, this.compactRev);
      let hash = 0;
      for (const { key, value } of view.range(KEY_BUCKET, {})) {
        if (revisionOf(key).main > rev) continue;
        hash = crc32(value, crc32(key, hash));
      }
      return { revision: this.currentRev, hash, compactRevision: this.compactRev };
    });
  }

  /**
   * Physical compaction: below `rev`, each key keeps only its newest revision ≤ rev, and not even that when it
   * is a tombstone. Returns the new compacted revision. Compaction makes no new revision (as etcd).
   */
  private applyCompact(tx: WriteView, rev: number, current: number, compacted: number): number {
    if (rev <= compacted) throw new EtcdError("COMPACTED", `compact ${rev} <= compacted ${compacted}`);
    if (rev > current) throw new EtcdError("FUTURE_REV", `compact ${rev} > current ${current}`);
    const doomed: Uint8Array[] = [];
    let group: { prefixLen: number; first: Uint8Array; keep: { key: Uint8Array; tomb: boolean } | undefined; below: Uint8Array[] } | undefined;
    const flush = (): void => {
      if (group === undefined) return;
      doomed.push(...group.below);
      if (group.keep?.tomb === true) doomed.push(group.keep.key);
    };
    for (const { key, value } of tx.range(KEY_BUCKET, {})) {
      const prefixLen = key.length - 16;
      if (group === undefined || group.prefixLen !== prefixLen || !samePrefix(group.first, key, prefixLen)) {
        flush();
        group = { prefixLen, first: key, keep: undefined, below: [] };
      }
      if (revisionOf(key).main > rev) continue;
      if (group.keep !== undefined) group.below.push(group.keep.key);
      group.keep = { key, tomb: value.length === 0 };
    }
    flush();
    for (const k of doomed) tx.del(KEY_BUCKET, k);
    tx.put(MVCC_META_BUCKET, META_COMPACT_KEY, encodeU64(rev));
    return rev;
  }
}

function openBackend(dataDir: string, opts: KvStoreOptions): Backend {
  return Backend.open(dataDir, {
    buckets: [KEY_BUCKET, MVCC_META_BUCKET, ...(opts.extraBuckets ?? [])],
    workerTasks: { [RANGE_TASK]: rangeTask as (v: ReadView, a: never) => unknown },
    readWorkers: opts.readWorkers ?? DEFAULT_READ_WORKERS,
    ...(opts.readMode !== undefined ? { readMode: opts.readMode } : {}),
    ...(opts.onSyncError !== undefined ? { onSyncError: opts.onSyncError } : {}),
  });
}

function runRange(view: ReadView, args: RangeTaskArgs | undefined): RangeTaskResult | undefined {
  return args === undefined ? undefined : rangeTask(view, args);
}

function samePrefix(a: Uint8Array, b: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return false;
  return true;
}

function applyEffect(w: WriteTxn, tx: WriteView, effect: Effect): WriteResponse {
  const out = effect.run(tx);
  let deleted = 0;
  for (const key of out.deleteKeys ?? []) deleted += w.deleteRange({ key }).deleted;
  return { effect: { revision: w.rev, deleted, value: out.value } };
}

function applyWrite(w: WriteTxn, req: Exclude<WriteRequest, { compact: unknown } | { effect: unknown }>, maxTxnOps?: number): WriteResponse {
  if ("put" in req) {
    checkPut(req.put);
    return { put: w.put(req.put) };
  }
  if ("deleteRange" in req) {
    checkDelete(req.deleteRange);
    return { deleteRange: w.deleteRange(req.deleteRange) };
  }
  checkTxn(req.txn, maxTxnOps);
  return { txn: w.txn(req.txn) };
}

type Unwrapped<K extends string> = Extract<WriteResponse, Record<K, unknown>> extends Record<K, infer V> ? V : never;

function pick<K extends "put" | "deleteRange" | "txn" | "compact" | "effect">(results: (WriteResponse | EtcdError)[], kind: K): Unwrapped<K> {
  const r = results[0];
  if (r === undefined) throw new Error(`KvStore: no result for ${kind}`);
  if (r instanceof EtcdError) throw r;
  return (r as Record<K, Unwrapped<K>>)[kind];
}
