// One process per data dir. Two members writing the same WAL and backend would corrupt both, so a member holds a
// lock for as long as it runs: a Linux abstract unix socket named after the data dir's real path. The kernel
// frees it when the process dies — kill -9 included — so there is no stale lock file to clean up, and a second
// process finds the name taken and stops with a clear error.
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { createServer, type Server } from "node:net";

export class DataDirLockedError extends Error {
  constructor(readonly dataDir: string) {
    super(`cannot access data directory ${dataDir}: it is in use by another etcd-ts process`);
    this.name = "DataDirLockedError";
  }
}

export interface DirLock {
  release(): Promise<void>;
}

/** Takes the lock of `dataDir` (which must exist), or rejects with DataDirLockedError. */
export async function lockDataDir(dataDir: string): Promise<DirLock> {
  const name = "\0etcd-ts-data-dir-" + createHash("sha256").update(realpathSync(dataDir)).digest("hex").slice(0, 40);
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new DataDirLockedError(dataDir) : err),
    );
    server.listen({ path: name }, () => resolve());
  });
  server.unref();
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
