// Raft snapshots of one member. The backend is the state machine's whole state, so a snapshot carries no data of
// its own in the WAL: cutting one records the backend's consistent index and the configuration there and lets
// older segments go; sending one streams a copy of the backend file; receiving one keeps the body under snap/
// until Raft hands the snapshot out, and installing it swaps the body in as the backend.
//
// A snapshot never claims an index the backend has not got on disk: it is cut at the consistent index (empty
// entries move the applied index without a backend commit), and only after the backend is fsynced, since the
// WAL entries it lets go are what would otherwise replay the unsynced commits after a power loss.
import { closeSync, createReadStream, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { dirSynced, failpoint, fileSynced } from "../failpoints.js";
import type { Member } from "../membership/cluster.js";
import type { KvStore } from "../mvcc/kv_store.js";
import type { ConfState, Message, Snapshot, Storage } from "../raft/index.js";
import type { WalStorage } from "../wal/wal_storage.js";
import { SNAPSHOT_CATCH_UP_ENTRIES, SNAPSHOT_COUNT } from "../limits.js";
import type { ServerConfig } from "./server_config.js";

/** Entries the in-memory log must have beyond its keep before trimLog drops them. */
const TRIM_STEP_ENTRIES = 1024;

/** The name under snap/ of the backend body of the snapshot at `index`. */
export function snapshotDbName(index: number): string {
  return `${index.toString(16).padStart(16, "0")}.snap.db`;
}

/**
 * A crash between persisting a received Raft snapshot and swapping in its backend leaves the backend behind the
 * WAL: the body kept under snap/ is swapped in at the next start. Older bodies are deleted.
 */
export async function finishSnapshotInstall(kv: KvStore, snapshotIndex: number, snapDir: string): Promise<void> {
  const pending = join(snapDir, snapshotDbName(snapshotIndex));
  if (kv.consistentIndex() < snapshotIndex && snapshotIndex > 1) {
    if (!existsSync(pending))
      throw new Error(
        `backend at index ${kv.consistentIndex()} is behind the raft snapshot at ${snapshotIndex} and ${pending} is missing`,
      );
    await kv.replaceWith(pending);
  }
  for (const f of readdirSync(snapDir))
    if (f.endsWith(".snap.db") || f.startsWith("outgoing-")) rmSync(join(snapDir, f), { force: true });
}

/**
 * A brand-new member starts as etcd's does after its bootstrap conf change (index 1, term 1): a durable
 * snapshot holding the initial configuration, so the first election is term 2 and the first entry index 2.
 */
export function saveBootstrapSnapshot(storage: WalStorage, config: ServerConfig, stored: readonly Member[]): void {
  // A data dir made by `snapshot restore` holds its new cluster's members and no log: they are the start.
  const given = config.initialMembers;
  const members: readonly Pick<Member, "id" | "isLearner">[] =
    given !== undefined && given.length > 0
      ? given
      : stored.length > 0
        ? stored
        : [{ id: config.memberId, isLearner: false }];
  const confState = {
    voters: members
      .filter((m) => !m.isLearner)
      .map((m) => m.id)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    learners: [],
  };
  storage.save(
    {
      snapshot: { metadata: { index: 1, term: 1, confState }, data: new Uint8Array(0) },
      hardState: { term: 1, vote: 0n, commit: 1 },
      entries: [],
    },
    true,
  );
}

/** What the snapshot side reads from its member. */
export interface SnapshotHost {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  readonly storage: WalStorage;
  /** A fresh unique id (names the temp file of an outgoing body). */
  nextId(): bigint;
}

/** Cuts, sends, receives and installs this member's snapshots; `index` is the last one in the WAL. */
export class Snapshots {
  readonly #host: SnapshotHost;
  /** The index of the last snapshot recorded in the WAL (cut here or installed from the leader). */
  index: number;
  /** A snapshot body received from the leader, waiting for Raft to hand out its snapshot. */
  #incoming: { index: number; path: string } | undefined;

  constructor(host: SnapshotHost) {
    this.#host = host;
    this.index = host.storage.snapshot().metadata.index;
  }

  get #snapDir(): string {
    return join(this.#host.config.dataDir, "member", "snap");
  }

  /**
   * The log as Raft reads it, except for the snapshot it sends a lagging member: a snapshot at this member's
   * consistent index (the body is a copy of the backend taken when it is sent, which is at least that far), not
   * the last one written to the WAL — otherwise every entry since that one (up to --snapshot-count of them) would
   * follow the backend file over the wire, only to be skipped by the receiver. The configuration is Raft's
   * current one: a conf change always commits to the backend, so none lies between the two indexes.
   */
  raftStorage(confState: () => ConfState): Storage {
    const wal = this.#host.storage;
    return {
      initialState: () => wal.initialState(),
      entries: (lo, hi, maxSizeBytes) => wal.entries(lo, hi, maxSizeBytes),
      term: (i) => wal.term(i),
      lastIndex: () => wal.lastIndex(),
      firstIndex: () => wal.firstIndex(),
      snapshot: () => {
        const stored = wal.snapshot();
        const index = this.#host.kv.consistentIndex();
        if (index <= stored.metadata.index) return stored;
        return { metadata: { index, term: wal.term(index), confState: confState() }, data: new Uint8Array(0) };
      },
    };
  }

  /**
   * Every --snapshot-count applied entries: fsync the backend, then record a snapshot at its consistent index (the
   * backend is the state) and let old WAL segments go.
   */
  maybeCut(applied: number, confState: ConfState): void {
    const config = this.#host.config;
    if (applied - this.index < (config.snapshotCount ?? SNAPSHOT_COUNT)) return;
    const kv = this.#host.kv;
    const index = kv.consistentIndex();
    if (index <= this.index) return;
    kv.backend.syncNow();
    this.#host.storage.createSnapshot(
      index,
      confState,
      new Uint8Array(0),
      config.snapshotCatchUpEntries ?? SNAPSHOT_CATCH_UP_ENTRIES,
    );
    this.index = index;
  }

  /**
   * Keeps Raft's in-memory log short between snapshots: entries applied, in the backend and in every member's log
   * are dropped from memory (the WAL keeps them until the next snapshot), all but the catch-up entries behind
   * them. `othersHave` is how far every other member's log is known to reach (undefined: not known, keep all).
   */
  trimLog(applied: number, othersHave: number | undefined): void {
    if (othersHave === undefined) return;
    const config = this.#host.config;
    const keep = config.snapshotCatchUpEntries ?? SNAPSHOT_CATCH_UP_ENTRIES;
    // Never past the consistent index: the snapshot Raft sends instead of the dropped entries is cut there.
    const upTo = Math.min(applied, this.#host.kv.consistentIndex(), othersHave) - keep;
    const storage = this.#host.storage;
    // In steps, so the log is not copied on every apply.
    if (upTo - storage.firstIndex() >= TRIM_STEP_ENTRIES) storage.trimLog(upTo);
  }

  /** A snapshot body arrived whole: keep it under its index until Raft hands out the snapshot (the caller steps it). */
  receive(m: Message, bodyPath: string): void {
    const snap = m.snapshot;
    if (snap === undefined) return;
    const path = join(this.#snapDir, snapshotDbName(snap.metadata.index));
    // Durable before Raft may record the snapshot in the WAL: a restart finishes the install from this file.
    fsyncPath(bodyPath);
    fileSynced(bodyPath);
    renameSync(bodyPath, path);
    fsyncPath(this.#snapDir);
    dirSynced(this.#snapDir);
    this.#incoming = { index: snap.metadata.index, path };
  }

  /** A copy of this member's backend, streamed as a snapshot body (written to a temp file, then read back). */
  async *body(): AsyncIterable<Uint8Array> {
    const tmp = join(this.#snapDir, `outgoing-${process.pid}-${this.#host.nextId().toString(16)}.db`);
    try {
      await this.#host.kv.backend.backupTo(tmp);
      for await (const chunk of createReadStream(tmp, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Raft accepted a snapshot from the leader (already persisted in the WAL): its body replaces the backend. The
   * caller reloads everything it loaded from the backend.
   */
  async install(snap: Snapshot): Promise<void> {
    const kv = this.#host.kv;
    const index = snap.metadata.index;
    const incoming = this.#incoming;
    const path =
      incoming !== undefined && incoming.index === index ? incoming.path : join(this.#snapDir, snapshotDbName(index));
    if (!existsSync(path)) throw new Error(`snapshot at index ${index} has no backend file at ${path}`);
    this.#incoming = undefined;
    failpoint("snap-install-mid");
    // replaceWith fsyncs the backend before the body may go.
    await kv.replaceWith(path);
    rmSync(path, { force: true });
    if (kv.consistentIndex() < index)
      throw new Error(`snapshot backend is at index ${kv.consistentIndex()}, behind its raft snapshot ${index}`);
    this.index = index;
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
