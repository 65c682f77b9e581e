// Fail-stop: a write or fsync of the WAL or the backend that fails leaves this member's memory ahead of its disk,
// and after a failed fsync the kernel may already have dropped the dirty pages, so a retry that succeeds proves
// nothing. The member stops at once with one clear log line; a restart replays the WAL from what is on disk.
import { statfsSync } from "node:fs";
import type { ServerConfig } from "./server_config.js";

/** Free bytes below which a storage error is taken to be the file system filling up. */
const FULL_BELOW_BYTES = 4 * 1024 * 1024;

/**
 * One line saying what failed, and what to do for the errors an operator can fix. LMDB reports a full disk as
 * a plain I/O error, so the free space of the data dir's file system is checked too.
 */
export function describeStorageFailure(err: unknown, dataDir?: string): string {
  const e = err as NodeJS.ErrnoException;
  const msg = err instanceof Error ? err.message : String(err);
  const free = dataDir === undefined ? undefined : freeBytes(dataDir);
  if (e?.code === "ENOSPC" || /ENOSPC|no space left/i.test(msg) || (free !== undefined && free < FULL_BELOW_BYTES)) {
    const why =
      free !== undefined && free < FULL_BELOW_BYTES ? `${free} bytes free in ${dataDir}; the error was: ${msg}` : msg;
    return `no space left on device (${why}); free space in the data dir and restart the member: nothing acknowledged is lost`;
  }
  if (e?.code === "EIO" || /fsync|fdatasync|EIO|Input\/output error/i.test(msg))
    return `storage i/o error (${msg}); the member stops rather than retry`;
  return err instanceof Error ? (err.stack ?? msg) : msg;
}

function freeBytes(dir: string): number | undefined {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
}

/** Logs why the member stops and hands over to config.onFatal, or exits the process with status 1. */
export function failStop(config: ServerConfig, err: unknown): void {
  config.log?.("E", "etcdserver", `fatal: stopping the member: ${describeStorageFailure(err, config.dataDir)}`);
  if (config.onFatal !== undefined) config.onFatal(err);
  else process.exit(1);
}
