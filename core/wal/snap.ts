// Snapshot files: <dir>/<term>-<index>.snap (16 hex digits each) holding raft snapshot metadata and the
// application's data. Written to a temp file, fsynced, renamed, directory fsynced: a crash leaves the old
// snapshot or the new one, never half of one. Layout: magic, u32 version, u32 crc32 of the body, u32 body
// length, body = u64 index, u64 term, u32 conf-state JSON length, JSON, data. A bad file is a SnapError naming it.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";

import { dirSynced, fileSynced } from "../failpoints.js";
import type { ConfState, Snapshot } from "../raft/types.js";
import { readU64, writeU64 } from "./record.js";

const MAGIC = Buffer.from("etcd-ts-snap\n");
const VERSION = 1;
const SNAP_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const hex16 = (n: number): string => n.toString(16).padStart(16, "0");

export class SnapError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`snapshot ${file}: ${reason}`);
    this.name = "SnapError";
  }
}

export function saveSnapshot(dir: string, snap: Snapshot): string {
  mkdirSync(dir, { recursive: true });
  const cs = Buffer.from(
    JSON.stringify({
      voters: snap.metadata.confState.voters.map(String),
      learners: snap.metadata.confState.learners.map(String),
    }),
  );
  const body = Buffer.alloc(20 + cs.length + snap.data.length);
  writeU64(body, 0, snap.metadata.index);
  writeU64(body, 8, snap.metadata.term);
  body.writeUInt32LE(cs.length, 16);
  cs.copy(body, 20);
  body.set(snap.data, 20 + cs.length);
  const head = Buffer.alloc(MAGIC.length + 12);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(VERSION, MAGIC.length);
  head.writeUInt32LE(crc32(body), MAGIC.length + 4);
  head.writeUInt32LE(body.length, MAGIC.length + 8);
  const file = join(dir, `${hex16(snap.metadata.term)}-${hex16(snap.metadata.index)}.snap`);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    const buf = Buffer.concat([head, body]);
    writeSync(fd, buf, 0, buf.length, 0);
    fsyncSync(fd);
    fileSynced(tmp);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dfd = openSync(dir, "r");
  fsyncSync(dfd);
  closeSync(dfd);
  dirSynced(dir);
  return file;
}

export function readSnapshot(file: string): Snapshot {
  const buf = readFileSync(file);
  if (buf.length < MAGIC.length + 12 || !buf.subarray(0, MAGIC.length).equals(MAGIC))
    throw new SnapError(file, "not an etcd-ts snapshot (bad magic)");
  const version = buf.readUInt32LE(MAGIC.length);
  if (version !== VERSION) throw new SnapError(file, `format version ${version}, this build reads ${VERSION}`);
  const crc = buf.readUInt32LE(MAGIC.length + 4);
  const len = buf.readUInt32LE(MAGIC.length + 8);
  const body = buf.subarray(MAGIC.length + 12);
  if (body.length !== len) throw new SnapError(file, `body is ${body.length} bytes, header says ${len}`);
  if (crc32(body) !== crc) throw new SnapError(file, "crc mismatch");
  const csLen = body.readUInt32LE(16);
  const cs = JSON.parse(body.subarray(20, 20 + csLen).toString()) as { voters: string[]; learners: string[] };
  const confState: ConfState = { voters: cs.voters.map(BigInt), learners: cs.learners.map(BigInt) };
  return {
    metadata: { index: readU64(body, 0), term: readU64(body, 8), confState },
    data: new Uint8Array(body.subarray(20 + csLen)),
  };
}

/** The snapshot file of (index, term) in `dir`, which the WAL recorded: missing or corrupt is an error. */
export function loadSnapshotAt(dir: string, index: number, term: number): Snapshot {
  const file = join(dir, `${hex16(term)}-${hex16(index)}.snap`);
  if (!existsSync(file))
    throw new SnapError(file, `the WAL records a snapshot at index ${index} (term ${term}) and its file is missing`);
  return readSnapshot(file);
}

/** The newest snapshot in `dir` (by index), or undefined. A corrupt newest file is an error, not skipped. */
export function loadNewestSnapshot(dir: string): Snapshot | undefined {
  const files = snapFiles(dir);
  const newest = files[files.length - 1];
  return newest === undefined ? undefined : readSnapshot(newest.file);
}

/** Deletes all but the `keep` newest snapshot files (and stale temp files). */
export function purgeSnapshots(dir: string, keep: number): void {
  const files = snapFiles(dir);
  for (const f of files.slice(0, Math.max(0, files.length - keep))) unlinkSync(f.file);
  for (const name of readdirSync(dir)) if (name.endsWith(".snap.tmp")) unlinkSync(join(dir, name));
}

function snapFiles(dir: string): { index: number; file: string }[] {
  mkdirSync(dir, { recursive: true });
  const out: { index: number; file: string }[] = [];
  for (const name of readdirSync(dir)) {
    const m = SNAP_RE.exec(name);
    if (m !== null) out.push({ index: parseInt(m[2] as string, 16), file: join(dir, name) });
  }
  return out.sort((a, b) => a.index - b.index);
}
