// The LMDB backend: one environment file per data dir, named buckets (LMDB sub-databases) with binary keys
// and values, the consistent (applied raft) index stored in the same transaction as the data it describes, reads
// over snapshots, long reads in worker threads, size reporting.
//
// Batched commits (etcd's batch interval): a batch of point writes (the caller's `deferrable` hint) goes to a
// write buffer (write_buffer.ts) with its consistent index, and one LMDB transaction commits the buffer at most
// batchIntervalMs later, or at once past batchLimit writes or batchBytes. Reads on the main thread (read,
// readNow) see the buffer over LMDB's committed state, as etcd reads its uncommitted batch, so a read never costs
// a commit; whatever reads the file directly (worker reads, hash, size, backup, sync) commits the buffer first.
// A batch without the hint commits the buffer in its own transaction. A failed commit of the buffer is a
// StorageError, also reported to onSyncError (the member stops), wherever the commit ran from.
//
// Read modes (--backend-read-mode):
// - concurrent (default, etcd 3.4): no lock. A commit runs at once; readers use their own LMDB snapshots
//   (MVCC readers never block LMDB's single writer), and long reads run in workers, so neither waits.
// - blocking (an honest model of etcd 3.3): every read holds a shared read lock for its whole duration, and a
//   batch and a commit take that lock exclusively (etcd 3.3's readTx.mu, a sync.RWMutex, taken by the batch
//   commit to reset the shared read transaction). A long Range therefore delays them, and reads that arrive
//   after a queued writer wait behind it. Nothing sleeps: the delay is only the lock structure.
//
// Durability: commits skip fsync (noSync); the WAL is the durability point and replay after a crash is
// idempotent because the consistent index commits atomically with the data it describes (writes still buffered
// at a crash are applied again from the WAL). syncNow() commits the buffer and makes every commit durable; the
// server calls it before a snapshot lets WAL entries go. A failed fsync is never retried: the page cache may
// have dropped the dirty pages, so a later "successful" sync proves nothing. The file below the environment
// (format checks, fsyncs, offline defragmentation) is backend_file.ts.
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";

import { failpoint } from "../failpoints.js";

import {
  BACKEND_FILE,
  BackendFormatError,
  MAP_SIZE_BYTES,
  MAX_DBS,
  StorageError,
  checkLmdbHeader,
  defragmentFile,
  fsyncFile,
  fsyncFileNow,
  syncDir,
} from "./backend_file.js";
import type { ReadTask, ReadView, WriteView } from "./read_view.js";
import { lmdbReadView, lmdbWriteView, openScanHandle } from "./lmdb_views.js";
import { RwLock } from "./rw_lock.js";
import { decodeU64, encodeU64 } from "./u64.js";
import { WorkerPool } from "./worker_pool.js";
import { WriteBuffer, bufferedView } from "./write_buffer.js";
import { bytesInUse, copyBucketsFrom, hashBuckets } from "./env_contents.js";
import {
  BACKEND_BATCH_BYTES,
  BACKEND_BATCH_INTERVAL_MS,
  BACKEND_BATCH_LIMIT,
  BACKEND_SYNC_INTERVAL_MS,
  ReadMode,
  type BackendOptions,
  type BackendSize,
  type BatchOptions,
} from "./backend_options.js";

// Re-exported so the rest of the tree reaches the backend through one module.
export { BACKEND_FILE, BackendFormatError, StorageError, setBackendSyncObserver } from "./backend_file.js";
export type { SyncObserver } from "./backend_file.js";
export { decodeU64, encodeU64 } from "./u64.js";

export * from "./backend_options.js";

/** Written into the meta bucket at creation; an unknown value refuses to open (never a silent reset). */
export const BACKEND_FORMAT = "etcd-ts/backend/v1";
export const META_BUCKET = "meta";
const META_FORMAT = new TextEncoder().encode("format");
const META_CONSISTENT_INDEX = new TextEncoder().encode("consistent_index");

export class Backend {
  readonly readMode: ReadMode;
  readonly file: string;
  private readonly env: RootDatabase;
  private readonly dbs = new Map<string, Database<Uint8Array, Uint8Array>>();
  /** The same buckets through zero-copy handles, for scans that take views (read_view.ts RangeSpan.views). */
  private readonly scanDbs = new Map<string, Database<Uint8Array, Uint8Array>>();
  private readonly lock = new RwLock();
  private readonly pool: WorkerPool | undefined;
  /** Last consistent index applied to the backend, committed or buffered; only grows. */
  private ci: number;
  private readonly buffer = new WriteBuffer();
  private readonly bufferView: WriteView;
  /** Inside a batch's fn: over an LMDB transaction ("txn") or over the write buffer ("buffer"). */
  private running: "txn" | "buffer" | undefined;
  private readonly opts: BackendOptions;
  private closed = false;
  /** Commits since the last background sync began. */
  private unsynced = 0;
  private readonly syncTimer: NodeJS.Timeout | undefined;
  /** An fsync or a buffer commit of this file failed: every later sync and commit refuses (never retried). */
  private syncFailure: Error | undefined;

  private constructor(file: string, env: RootDatabase, opts: BackendOptions) {
    this.file = file;
    this.env = env;
    this.readMode = opts.readMode ?? ReadMode.Concurrent;
    for (const name of [META_BUCKET, ...opts.buckets]) {
      this.dbs.set(name, env.openDB<Uint8Array, Uint8Array>(name, { keyEncoding: "binary", encoding: "binary" }));
      this.scanDbs.set(name, openScanHandle(env, name));
    }
    this.ci = 0;
    this.bufferView = bufferedView(this.buffer, (b, views) => this.bucket(b, views));
    this.opts = opts;
    const workers = opts.readWorkers ?? 2;
    const tasks = opts.workerTasks ?? {};
    this.pool =
      workers > 0 && Object.keys(tasks).length > 0
        ? new WorkerPool({ path: file, maxDbs: MAX_DBS, size: workers, tasks })
        : undefined;
    const every = opts.syncIntervalMs ?? BACKEND_SYNC_INTERVAL_MS;
    const onSyncError =
      opts.onSyncError ??
      ((err: Error) => {
        throw err;
      });
    this.syncTimer =
      every > 0
        ? setInterval(() => {
            // Only what is committed: the buffer keeps its own schedule (etcd's commit is also its fsync).
            if (this.unsynced > 0 && !this.closed && this.syncFailure === undefined)
              void this.fsyncCommitted().catch(onSyncError);
          }, every).unref()
        : undefined;
  }

  /**
   * Flushes every committed batch to disk: an fsync of the data file on libuv's pool. LMDB writes its pages and
   * meta pages to this one file, so an fsync of any descriptor of it covers every commit made before the call.
   */
  sync(): Promise<void> {
    try {
      this.assertOpen();
      this.flushNow();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.fsyncCommitted();
  }

  private fsyncCommitted(): Promise<void> {
    try {
      this.assertSyncable();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.unsynced = 0;
    return fsyncFile(this.file, (err) => this.failSync(err));
  }

  /** As sync(), on the calling thread: for callers that must not yield (a snapshot cut inside apply). */
  syncNow(): void {
    this.assertOpen();
    this.flushNow();
    this.assertSyncable();
    this.unsynced = 0;
    fsyncFileNow(this.file, (err) => this.failSync(err));
  }

  private failSync(err: Error): Error {
    const wrapped = new StorageError(`backend ${this.file}: fsync failed: ${err.message}`, err);
    this.syncFailure = wrapped;
    return wrapped;
  }

  private assertSyncable(): void {
    if (this.syncFailure !== undefined) throw this.syncFailure;
  }

  /** Opens (or creates) the backend of a data dir; refuses foreign, newer or corrupt files by name. */
  static open(dataDir: string, opts: BackendOptions): Backend {
    const file = join(dataDir, BACKEND_FILE);
    const existed = existsSync(file) && statSync(file).size > 0;
    if (existed) checkLmdbHeader(file);
    let env: RootDatabase;
    try {
      env = open({ path: file, maxDbs: MAX_DBS, noSync: true, mapSize: MAP_SIZE_BYTES, noSubdir: true });
    } catch (err) {
      throw new BackendFormatError(file, `not a readable LMDB file (${(err as Error).message})`);
    }
    const backend = new Backend(file, env, opts);
    try {
      backend.checkFormat(existed);
      // A new file and its name are made durable at once: a WAL that outlives a power cut must find the backend
      // it was written against, not an empty directory entry.
      if (!existed) {
        backend.syncNow();
        syncDir(dataDir);
      }
    } catch (err) {
      env.close();
      throw err;
    }
    return backend;
  }

  /**
   * Defragments a closed backend (backend_file.ts); the caller stops using the backend meanwhile, as etcd
   * blocks all traffic during defrag. Returns the file sizes before and after.
   */
  static defragment(dataDir: string): Promise<{ beforeBytes: number; afterBytes: number }> {
    return defragmentFile(dataDir);
  }

  /**
   * Replaces every bucket's contents with those of a received backend file (a Raft snapshot body), in one write
   * transaction of this open environment: atomic (a crash leaves the old contents or the new), and the file this
   * environment maps is never swapped underneath it. (Renaming the received file over the open path and
   * reopening it corrupted commits: LMDB-js shares environments by path between threads.) The source must be an
   * etcd-ts backend; its consistent index becomes this one's.
   */
  replaceContentsFrom(received: string): void {
    this.assertOpen();
    this.flushNow();
    copyBucketsFrom(this.env, this.dbs, received, META_BUCKET, (meta) => {
      const format = meta.get(META_FORMAT);
      return format !== undefined && new TextDecoder().decode(format) === BACKEND_FORMAT;
    });
    const ci = this.bucket(META_BUCKET).get(META_CONSISTENT_INDEX);
    this.ci = ci === undefined ? 0 : decodeU64(ci);
    this.unsynced += 1;
  }

  /**
   * The applied raft index of the data the backend holds (0 for a new backend), committed or still buffered: a
   * buffered one is committed before anything reads LMDB or syncs it.
   */
  consistentIndex(): number {
    return this.ci;
  }

  /**
   * Runs `fn` in one write transaction and commits it, storing `consistentIndex` (when given) in the same
   * transaction. Batches run one at a time in call order. In blocking mode the commit waits for readers.
   * `aborted` runs, before the next batch can start, when the batch fails (`fn` threw, or the commit did): state the
   * caller changed beside the transaction is taken back there, as the transaction's writes are.
   */
  batch<T>(
    consistentIndex: number | undefined,
    fn: (tx: WriteView) => T,
    aborted?: () => void,
    opts: BatchOptions = {},
  ): Promise<T> {
    this.assertOpen();
    const defer = opts.deferrable === true && (this.opts.batchIntervalMs ?? BACKEND_BATCH_INTERVAL_MS) > 0;
    const run = (): T => (defer ? this.defer(consistentIndex, fn, aborted) : this.commit(consistentIndex, fn, aborted));
    if (this.readMode === ReadMode.Concurrent) {
      try {
        return Promise.resolve(run());
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    // Blocking mode: a buffered batch takes the write lock as a commit does, so a reader holding the read lock
    // (after committing the buffer) reads exactly what was applied when it started.
    return this.lock.acquireWrite().then((release) => {
      try {
        return run();
      } finally {
        release();
      }
    });
  }

  /**
   * Commits every buffered write and its consistent index in one transaction (a no-op when nothing is buffered,
   * and inside a batch's fn). A failure is a StorageError, also reported to onSyncError: the member must stop.
   */
  flushNow(): void {
    if (this.buffer.empty || this.running !== undefined) return;
    this.assertSyncable();
    this.buffer.unschedule();
    const start = performance.now();
    try {
      failpoint("backend-before-commit");
      this.env.transactionSync(() => this.writeBuffered());
      failpoint("backend-after-commit");
    } catch (err) {
      const wrapped = new StorageError(`backend ${this.file}: commit failed: ${(err as Error).message}`, err as Error);
      this.syncFailure = wrapped;
      this.opts.onSyncError?.(wrapped);
      throw wrapped;
    }
    this.buffer.clear();
    this.unsynced += 1;
    this.opts.onCommit?.((performance.now() - start) / 1000);
  }

  /** Whether buffered writes wait for the flush timer (for tests and metrics). */
  get flushScheduled(): boolean {
    return this.buffer.scheduled;
  }

  /** Writes applied but not yet committed to LMDB. */
  get bufferedWrites(): number {
    return this.buffer.writes;
  }

  /**
   * A read on the main thread over every applied write (the write buffer over LMDB). The meta bucket's
   * consistent index is stored only when the buffer is committed: consistentIndex() is the applied one.
   */
  read<T>(fn: (view: ReadView) => T): Promise<T> {
    this.assertOpen();
    if (this.readMode === ReadMode.Concurrent) {
      try {
        this.assertSyncable(); // a member whose storage failed stops serving, reads included
        return Promise.resolve(fn(this.currentView()));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return this.readLocked().then((release) => {
      try {
        return fn(this.view());
      } finally {
        release();
      }
    });
  }

  /** Synchronous read for callers that must not yield (inside a batch use the write view instead). */
  readNow<T>(fn: (view: ReadView) => T): T {
    this.assertOpen();
    // Inside a batch committed at once, its own transaction holds the buffer's writes and the batch's.
    if (this.running === "txn") return fn(this.view());
    return fn(this.currentView());
  }

  /** Blocking mode: the read lock, over a backend with nothing buffered (committed under the write lock first). */
  private async readLocked(): Promise<() => void> {
    if (this.buffer.empty) {
      const release = await this.lock.acquireRead();
      if (this.buffer.empty) return release;
      release();
    }
    const release = await this.lock.acquireWrite();
    try {
      this.flushNow();
    } catch (err) {
      release();
      throw err;
    }
    return this.lock.downgrade();
  }

  /** Whether readInWorker has worker threads (otherwise it runs the task on the main thread). */
  get hasWorkers(): boolean {
    return this.pool !== undefined;
  }

  /**
   * Runs a registered pure task in a worker thread over its own fresh snapshot (long reads). `args` is
   * evaluated when the read starts (after the read lock in blocking mode), so it can name the revision to
   * read at. Without workers the task runs on the main thread.
   */
  readInWorker<A, R>(task: string, args: () => A, fallback: ReadTask<A, R>): Promise<R> {
    this.assertOpen();
    const pool = this.pool;
    if (pool === undefined) return this.read((view) => fallback(view, args()));
    if (this.readMode === ReadMode.Concurrent) {
      try {
        // The worker's snapshot is taken after this commit, so it holds every write applied so far.
        this.flushNow();
        return pool.run<A, R>(task, args());
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return this.readLocked().then(async (release) => {
      try {
        return await pool.run<A, R>(task, args());
      } finally {
        release();
      }
    });
  }

  /** The lock of blocking mode, exposed so tests can observe queueing (idle in concurrent mode). */
  get readLock(): RwLock {
    return this.lock;
  }

  size(): BackendSize {
    this.assertOpen();
    this.flushNow();
    const dbSizeBytes = statSync(this.file).size;
    return { dbSizeBytes, dbSizeInUseBytes: bytesInUse(this.env, this.dbs, dbSizeBytes) };
  }

  /**
   * Forgets the applied Raft index (a snapshot restore: the data starts a new cluster whose log begins afresh,
   * so no entry of the old log may count as applied).
   */
  resetConsistentIndex(): void {
    this.assertOpen();
    this.flushNow();
    this.env.transactionSync(() => this.bucket(META_BUCKET).remove(META_CONSISTENT_INDEX));
    this.ci = 0;
    this.unsynced += 1;
  }

  /**
   * What a backend quota is checked against: the bytes of the pages holding data (size().dbSizeInUseBytes). Not
   * the file's size: LMDB writes each commit to fresh pages and grows its file ahead of the data (an empty
   * database's file is twice its pages in use), where bbolt's file, etcd's measure, grows with the data.
   * Buffered writes count by their bytes without being committed: the quota is checked before every write.
   */
  quotaSize(): number {
    this.assertOpen();
    return bytesInUse(this.env, this.dbs, statSync(this.file).size) + this.buffer.bytes;
  }

  /**
   * One synchronous write transaction that leaves the consistent index alone: a rewrite of the stored format
   * on open (before any read or apply), which changes no applied state.
   */
  rewriteNow(fn: (tx: WriteView) => void): void {
    this.assertOpen();
    this.flushNow();
    this.env.transactionSync(() => fn(this.writeView()));
    this.unsynced += 1;
  }

  /** CRC32 over every bucket's keys and values in key order (etcd's Hash: the whole database). */
  hash(): number {
    this.assertOpen();
    this.flushNow();
    return hashBuckets(this.dbs);
  }

  /** A consistent copy of the open database (compacted: live pages only) written to `path`. */
  async backupTo(path: string): Promise<void> {
    this.assertOpen();
    this.flushNow();
    rmSync(path, { force: true });
    await this.env.backup(path, true);
  }

  /** Closes without committing the buffer or syncing (the member stopped on a storage failure). */
  async abandon(): Promise<void> {
    this.syncFailure ??= new StorageError(
      `backend ${this.file}: abandoned after a storage failure`,
      new Error("abandoned"),
    );
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.buffer.unschedule();
    if (this.syncFailure !== undefined) {
      this.closed = true;
      if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
      await this.pool?.close();
      await this.env.close();
      return;
    }
    this.flushNow();
    if (this.unsynced > 0) await this.sync();
    this.closed = true;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    await this.pool?.close();
    await this.env.close();
  }

  private checkNext(consistentIndex: number | undefined): void {
    if (consistentIndex !== undefined && !(consistentIndex > this.ci)) {
      throw new Error(`backend: consistent index ${consistentIndex} <= committed ${this.ci}`);
    }
    this.assertSyncable();
  }

  /** A deferrable batch: `fn` over the write buffer, committed by the timer or at once past a cap. */
  private defer<T>(consistentIndex: number | undefined, fn: (tx: WriteView) => T, aborted?: () => void): T {
    this.checkNext(consistentIndex);
    this.running = "buffer";
    let out: T;
    try {
      out = this.buffer.run(this.bufferView, fn, consistentIndex, aborted);
    } finally {
      this.running = undefined;
    }
    if (consistentIndex !== undefined) this.ci = consistentIndex;
    const full =
      this.buffer.writes >= (this.opts.batchLimit ?? BACKEND_BATCH_LIMIT) ||
      this.buffer.bytes >= (this.opts.batchBytes ?? BACKEND_BATCH_BYTES);
    if (full) this.flushNow();
    else this.buffer.schedule(this.opts.batchIntervalMs ?? BACKEND_BATCH_INTERVAL_MS, () => this.flushFromTimer());
    return out;
  }

  /** The timer's commit (under the write lock in blocking mode); a failure was reported to onSyncError. */
  private flushFromTimer(): void {
    const flush = (): void => {
      if (this.closed || this.syncFailure !== undefined) return;
      try {
        this.flushNow();
      } catch (err) {
        if (this.opts.onSyncError === undefined) throw err; // nobody to report to: end the process
      }
    };
    if (this.readMode === ReadMode.Concurrent) return flush();
    void this.lock.acquireWrite().then((release) => {
      try {
        flush();
      } finally {
        release();
      }
    });
  }

  /** Inside a write transaction: every buffered write and the consistent index they bring. */
  private writeBuffered(): void {
    this.buffer.writeTo((b) => this.bucket(b));
    const ci = this.buffer.consistentIndex;
    if (ci !== undefined) this.bucket(META_BUCKET).put(META_CONSISTENT_INDEX, encodeU64(ci));
  }

  /** A batch committed at once, in one transaction after the buffered writes. */
  private commit<T>(consistentIndex: number | undefined, fn: (tx: WriteView) => T, aborted?: () => void): T {
    this.checkNext(consistentIndex);
    let phase = "buffer" as "buffer" | "fn" | "built";
    let result: T;
    const start = performance.now();
    try {
      failpoint("backend-before-commit");
      result = this.env.transactionSync(() => {
        this.writeBuffered();
        phase = "fn";
        this.running = "txn";
        let out: T;
        try {
          out = fn(this.writeView());
        } finally {
          this.running = undefined;
        }
        if (consistentIndex !== undefined)
          this.bucket(META_BUCKET).put(META_CONSISTENT_INDEX, encodeU64(consistentIndex));
        phase = "built";
        return out;
      });
      failpoint("backend-after-commit");
    } catch (err) {
      aborted?.();
      // An error from `fn` is the caller's; one before it (the buffered writes) or after it (writing the pages
      // out, the commit) is the storage's, and the member must stop on it: a StorageError, which no apply path
      // may turn into a request's answer.
      if (phase === "fn" && !isInjected(err)) throw err;
      throw new StorageError(`backend ${this.file}: commit failed: ${(err as Error).message}`, err as Error);
    }
    this.buffer.clear();
    if (consistentIndex !== undefined) this.ci = consistentIndex;
    this.unsynced += 1;
    this.opts.onCommit?.((performance.now() - start) / 1000);
    return result;
  }

  private checkFormat(existed: boolean): void {
    const meta = this.bucket(META_BUCKET);
    const format = meta.get(META_FORMAT);
    if (format === undefined) {
      const anyData = [...this.dbs.values()].some((db) => db.getKeysCount({ limit: 1 }) > 0);
      if (existed && anyData) throw new BackendFormatError(this.file, "has data but no etcd-ts format marker");
      this.env.transactionSync(() => meta.put(META_FORMAT, new TextEncoder().encode(BACKEND_FORMAT)));
    } else if (new TextDecoder().decode(format) !== BACKEND_FORMAT) {
      throw new BackendFormatError(
        this.file,
        `format ${JSON.stringify(new TextDecoder().decode(format))}, this build reads ${JSON.stringify(BACKEND_FORMAT)}`,
      );
    }
    const ci = meta.get(META_CONSISTENT_INDEX);
    this.ci = ci === undefined ? 0 : decodeU64(ci);
  }

  /** A bucket's handle; with `views`, the zero-copy one (read_view.ts RangeSpan.views). */
  private bucket(name: string, views = false): Database<Uint8Array, Uint8Array> {
    const db = (views ? this.scanDbs : this.dbs).get(name);
    if (db === undefined) throw new Error(`backend: unknown bucket ${JSON.stringify(name)}`);
    return db;
  }

  /** Every applied write: LMDB's own view when nothing is buffered (no merge to pay), else the buffered view. */
  private currentView(): ReadView {
    return this.buffer.empty ? this.view() : this.bufferView;
  }

  private view(): ReadView {
    return lmdbReadView((b, views) => this.bucket(b, views));
  }

  private writeView(): WriteView {
    return lmdbWriteView(this.env, (b, views) => this.bucket(b, views));
  }

  /** Whether the backend still serves reads (false once closed). */
  get isOpen(): boolean {
    return !this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`backend ${this.file}: closed`);
  }
}

function isInjected(err: unknown): boolean {
  return err instanceof Error && /\(failpoint [a-z-]+\)$/.test(err.message);
}
