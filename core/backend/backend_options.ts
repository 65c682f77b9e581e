// The backend's options, read modes, defaults and the shapes its methods return (backend.ts re-exports them).
import type { ReadTask } from "./read_view.js";

export const ReadMode = { Concurrent: "concurrent", Blocking: "blocking" } as const;
export type ReadMode = (typeof ReadMode)[keyof typeof ReadMode];

export interface BackendOptions {
  readonly readMode?: ReadMode;
  /** Buckets the caller uses besides "meta"; created on first open. */
  readonly buckets: readonly string[];
  /** Pure read tasks that may run in worker threads (see read_view.ts). */
  readonly workerTasks?: Readonly<Record<string, ReadTask<never, unknown>>>;
  /** Worker threads for long reads; 0 runs every read on the main thread. Default 2. */
  readonly readWorkers?: number;
  /** How often committed batches are fsynced in the background (0 = never; close() always syncs). */
  readonly syncIntervalMs?: number;
  /**
   * A background fsync or a commit of buffered writes failed: the backend must not be used further (the default
   * throws it out of the timer, so an unhandled error ends the process rather than being dropped).
   */
  readonly onSyncError?: (err: Error) => void;
  /** Longest a deferrable batch stays buffered before it is committed (0 = commit every batch at once). */
  readonly batchIntervalMs?: number;
  /** Buffered writes, or bytes of their keys and values, that make the backend commit at once. */
  readonly batchLimit?: number;
  readonly batchBytes?: number;
  /** The duration of every LMDB commit of applied data (etcd_disk_backend_commit_duration_seconds). */
  readonly onCommit?: (seconds: number) => void;
}

/** etcd's backend batch interval and limit; the byte cap bounds the memory a burst of large values holds. */
export const BACKEND_BATCH_INTERVAL_MS = 100;
export const BACKEND_BATCH_LIMIT = 10_000;
export const BACKEND_BATCH_BYTES = 16 * 1024 * 1024;

export interface BatchOptions {
  /**
   * The batch's writes may stay buffered (committed later, see the file comment). Only for batches whose reads
   * are point gets: ranges over the buffer are correct but merge it with LMDB's entries, which costs.
   */
  readonly deferrable?: boolean;
}

/** Background fsync period: commits skip fsync (the WAL is the durability point), this bounds OS-crash loss. */
export const BACKEND_SYNC_INTERVAL_MS = 1000;

export interface BackendSize {
  /** Bytes of the data file on disk (etcd's db size). */
  readonly dbSizeBytes: number;
  /** Bytes of pages holding live data (etcd's db size in use); the rest is free pages. */
  readonly dbSizeInUseBytes: number;
}
