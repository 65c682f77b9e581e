// The backend's file on disk, below the LMDB environment: its name, refusing a file that is not ours before
// lmdb-js maps it, making it and its directory durable (the fsync that fails is never retried), and the offline
// defragmentation that rewrites it with only its live pages.
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { open } from "lmdb";

import { afterFileSync, beforeFileSync, dirSynced, failpoint, fileSynced } from "../failpoints.js";

/** The data file inside the data dir (plus LMDB's `kv.mdb-lock`). */
export const BACKEND_FILE = "kv.mdb";
export const MAX_DBS = 16;
/** 64 GiB of address space; LMDB grows the file as needed, the map is only a reservation. */
export const MAP_SIZE_BYTES = 64 * 1024 * 1024 * 1024;

/** A data dir that is not ours (foreign or newer format, or a corrupt file): names the file. */
export class BackendFormatError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`backend ${file}: ${reason}`);
    this.name = "BackendFormatError";
  }
}

/** An fsync or write of the backend failed: the member must stop (fail-stop), never retry. */
export class StorageError extends Error {
  constructor(
    message: string,
    readonly reason: Error,
  ) {
    super(message);
    this.name = "StorageError";
  }
}

/** Test-only observer of backend fsyncs (the power-loss model copies what each sync made durable). */
export interface SyncObserver {
  beforeSync(file: string): void;
  afterSync(file: string): void;
}
let syncObserver: SyncObserver | undefined;
export function setBackendSyncObserver(o: SyncObserver | undefined): void {
  syncObserver = o;
}

/**
 * An fsync of `file` on libuv's pool. LMDB writes its pages and meta pages to this one file, so an fsync of any
 * descriptor of it covers every commit made before the call. A failure is rejected as `fail(err)`.
 */
export function fsyncFile(file: string, fail: (err: Error) => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let fd: number;
    try {
      fd = openSync(file, "r");
      syncObserver?.beforeSync(file);
      beforeFileSync(file);
    } catch (err) {
      throw fail(err as Error);
    }
    fsync(fd, (err) => {
      closeSync(fd);
      if (err !== null) return reject(fail(err));
      syncObserver?.afterSync(file);
      afterFileSync(file);
      resolve();
    });
  });
}

/** As fsyncFile(), on the calling thread; a failure of the fsync itself is thrown as `fail(err)`. */
export function fsyncFileNow(file: string, fail: (err: Error) => Error): void {
  const fd = openSync(file, "r");
  try {
    syncObserver?.beforeSync(file);
    beforeFileSync(file);
    fsyncSync(fd);
    syncObserver?.afterSync(file);
    afterFileSync(file);
  } catch (err) {
    throw fail(err as Error);
  } finally {
    closeSync(fd);
  }
}

/** An fsync of a directory: the names in it (a new or renamed file) survive a power cut. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
    dirSynced(dir);
  } finally {
    closeSync(fd);
  }
}

/**
 * Defragments the closed backend of a data dir: copies the live pages into a compact new file and swaps it in
 * (etcd's defrag). Returns the file sizes before and after; on failure the old file is untouched.
 */
export async function defragmentFile(dataDir: string): Promise<{ beforeBytes: number; afterBytes: number }> {
  const file = join(dataDir, BACKEND_FILE);
  if (!existsSync(file)) throw new BackendFormatError(file, "no backend to defragment");
  checkLmdbHeader(file);
  const tmp = `${file}.defrag`;
  rmSync(tmp, { force: true });
  const beforeBytes = statSync(file).size;
  const env = open({ path: file, maxDbs: MAX_DBS, noSync: true, mapSize: MAP_SIZE_BYTES, noSubdir: true });
  try {
    try {
      await env.backup(tmp, true);
    } finally {
      await env.close();
    }
    const fd = openSync(tmp, "r+");
    try {
      fdatasyncSync(fd);
      fileSynced(tmp);
    } finally {
      closeSync(fd);
    }
    failpoint("defrag-before-rename");
  } catch (err) {
    // The old file is untouched: the caller reopens it and serves on.
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-lock`, { force: true });
    throw err;
  }
  renameSync(tmp, file);
  rmSync(`${tmp}-lock`, { force: true });
  syncDir(dirname(file));
  return { beforeBytes, afterBytes: statSync(file).size };
}

/** LMDB's meta page magic and the data version lmdb-js 3 writes (page 0: 16-byte page header, then meta). */
const LMDB_MAGIC = 0xbeefc0de;
const LMDB_DATA_VERSION = 2;

/**
 * Checks the first meta page before handing the file to lmdb-js, which crashes the process (SIGSEGV) on a
 * file that is not LMDB instead of returning an error.
 */
export function checkLmdbHeader(file: string): void {
  const head = Buffer.alloc(32);
  const fd = openSync(file, "r");
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n < head.length)
    throw new BackendFormatError(file, `not a readable LMDB file (${n} bytes, shorter than a meta page)`);
  const magic = head.readUInt32LE(24);
  const version = head.readUInt32LE(28);
  if (magic !== LMDB_MAGIC) {
    throw new BackendFormatError(
      file,
      `not a readable LMDB file (magic 0x${magic.toString(16)}, want 0x${LMDB_MAGIC.toString(16)})`,
    );
  }
  if (version !== LMDB_DATA_VERSION) {
    throw new BackendFormatError(file, `LMDB data version ${version}, this build reads ${LMDB_DATA_VERSION}`);
  }
}
