// A member's ids kept in its data dir (member/identity.json; etcd keeps them in its WAL's metadata): written
// when a member first starts, or by `snapshot restore` for the new cluster it makes, and read on every start.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { dirSynced, fileSynced } from "../failpoints.js";
import { idToHex } from "../membership/ids.js";

export interface SavedIdentity {
  readonly memberId: bigint;
  readonly clusterId: bigint;
}

function identityFile(dataDir: string): string {
  return join(dataDir, "member", "identity.json");
}

export function readIdentity(dataDir: string): SavedIdentity | undefined {
  const file = identityFile(dataDir);
  if (!existsSync(file)) return undefined;
  const saved = JSON.parse(readFileSync(file, "utf8")) as { memberId: string; clusterId: string };
  return { memberId: BigInt(`0x${saved.memberId}`), clusterId: BigInt(`0x${saved.clusterId}`) };
}

export function writeIdentity(dataDir: string, id: SavedIdentity): void {
  mkdirSync(join(dataDir, "member"), { recursive: true });
  writeDurably(
    identityFile(dataDir),
    JSON.stringify({ memberId: idToHex(id.memberId), clusterId: idToHex(id.clusterId) }) + "\n",
  );
}

/** Writes a file whole or not at all, and durably: temp file, fsync, rename, fsync of the directory. */
function writeDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
    fileSynced(tmp);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dfd = openSync(dirname(file), "r");
  try {
    fsyncSync(dfd);
    dirSynced(dirname(file));
  } finally {
    closeSync(dfd);
  }
}
