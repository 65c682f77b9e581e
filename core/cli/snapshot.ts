// `etcd-ts snapshot restore FILE --data-dir DIR [--skip-hash-check]` (core/server/snapshot_restore.ts does the
// work). etcd's own bolt snapshots are not readable here.
import { restoreSnapshot } from "../server/snapshot_restore.js";

/** The `snapshot` subcommand; returns the exit code. */
export async function snapshotCommand(args: readonly string[], out: (line: string) => void): Promise<number> {
  const [verb, file, ...rest] = args;
  if (verb !== "restore" || file === undefined) {
    out("usage: etcd-ts snapshot restore FILE --data-dir DIR [--skip-hash-check]");
    return 2;
  }
  let dataDir = "default.etcd";
  let skipHashCheck = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] ?? "";
    if (a === "--skip-hash-check") skipHashCheck = true;
    else if (a === "--data-dir") dataDir = rest[++i] ?? dataDir;
    else if (a.startsWith("--data-dir=")) dataDir = a.slice("--data-dir=".length);
    else {
      out(`unknown flag ${a}`);
      return 2;
    }
  }
  try {
    const bytes = await restoreSnapshot({ file, dataDir, skipHashCheck });
    out(`restored snapshot ${file} (${bytes} bytes) into ${dataDir}`);
    return 0;
  } catch (err) {
    out(`Error: ${(err as Error).message}`);
    return 1;
  }
}
