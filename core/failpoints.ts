// Failpoints: named places in the storage path where a test makes the process die as under kill -9, or makes the
// I/O fail, to prove the on-disk state is crash-consistent and that an I/O error stops the member. Nothing is
// armed unless the ETCD_TS_FAILPOINTS environment variable or the --experimental-failpoints endpoint arms it;
// unarmed, a failpoint is one map-size check.
//
// Spec: "name=action[@n]" items separated by ";", e.g. "wal-before-save=kill@3;defrag-before-rename=error".
// Actions: kill (SIGKILL to this process), error (an EIO error thrown where the I/O would run), enospc (an
// ENOSPC error), off (disarm). "@n" fires at the n-th hit from arming (default the first) and at every hit after.
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";

export const FAILPOINTS = [
  "wal-before-save",
  "wal-after-save",
  "snap-before-save",
  "snap-after-save",
  "wal-after-release",
  "backend-before-commit",
  "backend-after-commit",
  "snap-install-mid",
  "defrag-before-rename",
] as const;
export type FailpointName = (typeof FAILPOINTS)[number];

export type FailAction = "kill" | "error" | "enospc";

interface Armed {
  readonly action: FailAction;
  readonly at: number;
  hits: number;
}

const armed = new Map<FailpointName, Armed>();

/** The environment variable read at start-up. */
export const FAILPOINTS_ENV = "ETCD_TS_FAILPOINTS";

export class FailpointSpecError extends Error {}

/** Arms (or with "off" disarms) every failpoint named in `spec`; throws on an unknown name or action. */
export function armFailpoints(spec: string): void {
  for (const item of spec
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const m = /^([a-z-]+)=(kill|error|enospc|off)(?:@(\d+))?$/.exec(item);
    if (m === null)
      throw new FailpointSpecError(`failpoint ${JSON.stringify(item)}: want name=kill|error|enospc|off[@n]`);
    const name = m[1] as FailpointName;
    if (!FAILPOINTS.includes(name))
      throw new FailpointSpecError(`unknown failpoint ${JSON.stringify(name)} (known: ${FAILPOINTS.join(", ")})`);
    if (m[2] === "off") armed.delete(name);
    else armed.set(name, { action: m[2] as FailAction, at: Math.max(1, Number(m[3] ?? 1)), hits: 0 });
  }
}

/** Arms what ETCD_TS_FAILPOINTS names (nothing when it is unset). */
export function armFailpointsFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  const spec = env[FAILPOINTS_ENV];
  if (spec !== undefined && spec !== "") armFailpoints(spec);
}

export function disarmAllFailpoints(): void {
  armed.clear();
}

/** The armed failpoints as a spec string (what GET /debug/failpoints answers). */
export function armedFailpoints(): string {
  return [...armed].map(([name, a]) => `${name}=${a.action}@${a.at}`).join(";");
}

/** Marks a failpoint: kills the process or throws when it is armed and its hit count has come. */
export function failpoint(name: FailpointName): void {
  if (armed.size === 0) return;
  const a = armed.get(name);
  if (a === undefined) return;
  a.hits += 1;
  if (a.hits < a.at) return;
  if (a.action === "kill") {
    // As kill -9: no exit handlers, no flush, whatever was not written stays unwritten.
    process.kill(process.pid, "SIGKILL");
  }
  const code = a.action === "enospc" ? "ENOSPC" : "EIO";
  const err = new Error(
    `${code}: ${a.action === "enospc" ? "no space left on device" : "i/o error"} (failpoint ${name})`,
  ) as NodeJS.ErrnoException;
  err.code = code;
  throw err;
}

// ---- The power-loss model (tests only) ----
//
// With ETCD_TS_POWERLOSS_SHADOW=<dir> the process keeps, under <dir>/image, the image its data dir would have
// after a power cut that drops everything not fsynced: a file's content as of its last completed fsync, and a
// directory's names as of its last fsync (a name added or removed since is not there; a new name whose file was
// never fsynced holds an empty file). Every fsync the storage code makes reports here. The model's limits: the
// real page cache may also have written back some unsynced pages (this model drops them all, the strictest
// case), and directories themselves are taken to exist once created.

interface PowerLossState {
  readonly dataDir: string;
  readonly image: string;
  readonly pending: string;
  /** Relative path in the image → the inode of the real file it mirrors. */
  readonly names: Map<string, number>;
}

let powerLoss: PowerLossState | undefined;

export const POWERLOSS_ENV = "ETCD_TS_POWERLOSS_SHADOW";

/**
 * Starts recording for `dataDir` into `shadow`. The image must equal the data dir at this point (the test copies
 * the image over the data dir before each restart), so the names are matched to the real files' inodes.
 */
export function startPowerLossModel(dataDir: string, shadow: string): void {
  const image = join(shadow, "image");
  const pending = join(shadow, "pending");
  rmSync(pending, { recursive: true, force: true });
  mkdirSync(pending, { recursive: true });
  mkdirSync(image, { recursive: true });
  const names = new Map<string, number>();
  for (const rel of listFiles(image, "")) {
    const real = join(dataDir, rel);
    if (existsSync(real)) names.set(rel, statSync(real).ino);
  }
  powerLoss = { dataDir: resolve(dataDir), image, pending, names };
}

/** Stops recording (tests that start the model in process). */
export function stopPowerLossModel(): void {
  powerLoss = undefined;
}

/** An fsync of `path` is about to start: what it will make durable is the content now. */
export function beforeFileSync(path: string): void {
  const pl = powerLoss;
  const rel = pl === undefined ? undefined : relOf(pl, path);
  if (pl === undefined || rel === undefined) return;
  copyFileSync(path, join(pl.pending, `sync-${statSync(path).ino}`));
}

/** The fsync of `path` that began with beforeFileSync completed. */
export function afterFileSync(path: string): void {
  const pl = powerLoss;
  const rel = pl === undefined ? undefined : relOf(pl, path);
  if (pl === undefined || rel === undefined) return;
  const ino = statSync(path).ino;
  const copy = join(pl.pending, `sync-${ino}`);
  if (!existsSync(copy)) return;
  if (pl.names.get(rel) === ino) renameSync(copy, join(pl.image, rel));
  else renameSync(copy, join(pl.pending, `ino-${ino}`)); // durable content, but its name is not durable yet
}

/** A synchronous fsync of `path` completed (its content now is durable). */
export function fileSynced(path: string): void {
  beforeFileSync(path);
  afterFileSync(path);
}

/** An fsync of directory `dir` completed: its names as they are now are durable. */
export function dirSynced(dir: string): void {
  const pl = powerLoss;
  const relDir = pl === undefined ? undefined : relOf(pl, dir);
  if (pl === undefined || relDir === undefined) return;
  const imageDir = join(pl.image, relDir);
  mkdirSync(imageDir, { recursive: true });
  const present = new Set<string>();
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (!ent.isFile()) continue;
    const rel = join(relDir, ent.name);
    present.add(ent.name);
    const ino = statSync(join(dir, ent.name)).ino;
    if (pl.names.get(rel) === ino) continue;
    const synced = join(pl.pending, `ino-${ino}`);
    if (existsSync(synced)) renameSync(synced, join(pl.image, rel));
    else writeFileSync(join(pl.image, rel), "");
    pl.names.set(rel, ino);
  }
  for (const ent of readdirSync(imageDir, { withFileTypes: true })) {
    if (ent.isFile() && !present.has(ent.name)) {
      rmSync(join(imageDir, ent.name));
      pl.names.delete(join(relDir, ent.name));
    }
  }
}

function relOf(pl: PowerLossState, path: string): string | undefined {
  const rel = relative(pl.dataDir, resolve(path));
  return rel.startsWith("..") || isAbsolute(rel) ? undefined : rel;
}

function listFiles(root: string, rel: string): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(join(root, rel), { withFileTypes: true })) {
    if (ent.isDirectory()) out.push(...listFiles(root, join(rel, ent.name)));
    else if (ent.isFile()) out.push(join(rel, ent.name));
  }
  return out;
}
