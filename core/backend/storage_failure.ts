// The one deliberate stop on the apply path. Anything a request makes the apply path throw becomes that request's
// error; a failure of the storage itself (the disk refused a write, the map is full, LMDB reports damage) is not
// the request's doing, so it must stop the member instead of being answered and forgotten. This predicate is the
// hook that draws the line; fail-stop handling of such errors lives with the storage layers.

/** errno codes of a disk that refuses writes. */
const IO_CODES = new Set(["EIO", "ENOSPC", "EROFS", "EDQUOT", "EFBIG", "ENXIO"]);
/** LMDB's own failures (mdb_strerror names), none of which a client's request can cause. */
const LMDB_FAILURES =
  /MDB_(PANIC|MAP_FULL|CORRUPTED|PAGE_NOTFOUND|VERSION_MISMATCH|INVALID|TXN_FULL|BAD_TXN|MAP_RESIZED|PROBLEM)/;

/** Whether `err` is a storage failure (stop the member) rather than a request's failure (answer it). */
export function isStorageFailure(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  if ((err as { name?: unknown }).name === "StorageError") return true; // backend.ts's failed commit or fsync
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && IO_CODES.has(code)) return true;
  const message = (err as { message?: unknown }).message;
  return typeof message === "string" && LMDB_FAILURES.test(message);
}
