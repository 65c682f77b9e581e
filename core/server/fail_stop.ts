// Fail-stop: a write or fsync of the WAL or the backend that fails leaves this member's memory ahead of its disk,
// and after a failed fsync the kernel may already have dropped the dirty pages, so a retry that succeeds proves
// nothing. The member stops at once with one clear log line; a restart replays the WAL from what is on disk.
import type { ServerConfig } from "./server_config.js";

/** One line saying what failed, and what to do for the errors an operator can fix. */
export function describeStorageFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const msg = err instanceof Error ? err.message : String(err);
  if (e?.code === "ENOSPC" || /ENOSPC|no space left/i.test(msg)) {
    return `no space left on device (${msg}); free space in the data dir and restart the member: nothing acknowledged is lost`;
  }
  if (e?.code === "EIO" || /fsync|fdatasync|EIO/i.test(msg)) return `storage i/o error (${msg}); the member stops rather than retry`;
  return err instanceof Error ? err.stack ?? msg : msg;
}

/** Logs why the member stops and hands over to config.onFatal, or exits the process with status 1. */
export function failStop(config: ServerConfig, err: unknown): void {
  config.log?.("E", "etcdserver", `fatal: stopping the member: ${describeStorageFailure(err)}`);
  if (config.onFatal !== undefined) config.onFatal(err);
  else process.exit(1);
}
