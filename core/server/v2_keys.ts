// The member's v2 store (--enable-v2): kept in memory, changed only by applied Raft entries, and persisted in the
// `v2store` bucket (nodes, the store index and the last 1,000 events, so waits with a waitIndex are answered after
// a restart too) in the same backend transaction as the entry's consistent index — crash-consistent, and carried
// to a lagging member inside a snapshot's backend copy. The leader expires TTL keys by proposing a SYNC request
// with its clock every half second while any exist, as etcd does, so every member expires them at the same point
// of the log. A path too long to be a backend key (LMDB's limit is 1,978 bytes; etcd's v2 keys have none) is stored
// under a hash of it, with the path itself in the record.
import { createHash } from "node:crypto";
import type { ReadView, WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import type { Effect, WriteResponse } from "../mvcc/types.js";
import {
  applyV2,
  V2Error,
  V2Store,
  type NodeRecord,
  type V2ErrorJson,
  type V2Event,
  type V2Request,
} from "../v2store/index.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

export const V2_BUCKET = "v2store";
/** The bucket key of the store index (node keys all start with "/"). */
const INDEX_KEY = enc.encode("index");
/** History events are kept under "h/" and their zero-padded index, so a key scan reads them oldest first. */
const HISTORY_PREFIX = "h/";
const HISTORY_END = enc.encode("h0");

function historyKey(index: number): Uint8Array {
  return enc.encode(`${HISTORY_PREFIX}${String(index).padStart(20, "0")}`);
}

/** Paths up to this many bytes are their own bucket key; longer ones go under LONG_PREFIX and their SHA-256. */
const PATH_KEY_MAX_BYTES = 1024;
const LONG_PREFIX = "l/";

function nodeKey(path: string): { key: Uint8Array; long: boolean } {
  const bytes = enc.encode(path);
  if (bytes.length <= PATH_KEY_MAX_BYTES) return { key: bytes, long: false };
  return { key: enc.encode(`${LONG_PREFIX}${createHash("sha256").update(bytes).digest("hex")}`), long: true };
}
/** etcd's SYNC interval. */
const SYNC_INTERVAL_MS = 500;

/** What a v2 write answers through the proposal wait: its event, or the store's refusal. */
export type V2Outcome = { readonly event: V2Event | undefined } | { readonly error: V2ErrorJson };

/** Proposes a v2 write and unwraps what its apply answered. */
export async function proposeV2(
  propose: (req: { readonly v2: V2Request }) => Promise<WriteResponse | EtcdError>,
  req: V2Request,
): Promise<V2Outcome> {
  const result = await propose({ v2: req });
  if (result instanceof EtcdError) throw result;
  if (!("effect" in result)) throw new Error(`apply answered ${Object.keys(result).join()} to a v2 request`);
  return result.effect.value as V2Outcome;
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export class V2Keys {
  readonly store = new V2Store(nowNs);
  #timer: NodeJS.Timeout | undefined;

  /** (Re)loads the tree from the backend: at start and after a snapshot replaced the backend. */
  load(view: ReadView): void {
    const raw = view.get(V2_BUCKET, INDEX_KEY);
    const index = raw === undefined ? 0 : Number(dec.decode(raw));
    const records: { path: string; record: NodeRecord }[] = [];
    for (const { key, value } of view.range(V2_BUCKET, {})) {
      const name = dec.decode(key);
      if (name.startsWith("/")) records.push({ path: name, record: decodeRecord(dec.decode(value)).record });
      else if (name.startsWith(LONG_PREFIX)) {
        const { path, record } = decodeRecord(dec.decode(value));
        if (path === undefined) throw new Error(`v2 store: record ${name} has no path`);
        records.push({ path, record });
      }
    }
    const history: V2Event[] = [];
    for (const { value } of view.range(V2_BUCKET, { start: enc.encode(HISTORY_PREFIX), end: HISTORY_END })) {
      history.push(JSON.parse(dec.decode(value)) as V2Event);
    }
    this.store.load(index, records, history);
  }

  /**
   * The apply-time effect of one v2 write: change the store, persist what changed; a refusal is an answer. Anything
   * else that fails takes the in-memory change back with the backend's, and the store keeps the write (and lets
   * watchers see it) only once the whole request applied.
   */
  effect(req: V2Request): Effect {
    return {
      run: (tx) => {
        const store = this.store;
        store.begin();
        try {
          const before = store.index;
          let outcome: V2Outcome;
          try {
            outcome = { event: applyV2(store, req) };
          } catch (err) {
            if (!(err instanceof V2Error)) throw err;
            outcome = { error: err.toJSON() };
          }
          this.#persist(tx, before);
          return { value: outcome, afterApply: () => store.commit() };
        } catch (err) {
          store.rollback();
          throw err;
        }
      },
    };
  }

  #persist(tx: WriteView, indexBefore: number): void {
    for (const { path, record } of this.store.takeDirty()) {
      const { key, long } = nodeKey(path);
      if (record === undefined) tx.del(V2_BUCKET, key);
      else tx.put(V2_BUCKET, key, enc.encode(encodeRecord(record, long ? path : undefined)));
    }
    const { added, dropped } = this.store.takeHistory();
    for (const i of dropped) tx.del(V2_BUCKET, historyKey(i));
    for (const e of added) tx.put(V2_BUCKET, historyKey(e.node.modifiedIndex ?? 0), enc.encode(JSON.stringify(e)));
    if (this.store.index !== indexBefore) tx.put(V2_BUCKET, INDEX_KEY, enc.encode(String(this.store.index)));
  }

  /** While this member leads and TTL keys exist, proposes a SYNC every half second. */
  startSync(isLeader: () => boolean, propose: (req: V2Request) => Promise<unknown>): void {
    this.#timer = setInterval(() => {
      if (!isLeader() || !this.store.hasTtlKeys) return;
      void propose({ method: "SYNC", path: "/", timeNs: nowNs() }).catch(() => undefined);
    }, SYNC_INTERVAL_MS);
    this.#timer.unref();
  }

  stopSync(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** A node's record; `path` only when the key does not hold it (a long path). */
function encodeRecord(r: NodeRecord, path: string | undefined): string {
  const j = { d: r.dir, v: r.value, c: r.createdIndex, m: r.modifiedIndex, e: r.expireNs.toString() };
  return JSON.stringify(path === undefined ? j : { ...j, p: path });
}

function decodeRecord(text: string): { path: string | undefined; record: NodeRecord } {
  const j = JSON.parse(text) as { d: boolean; v: string; c: number; m: number; e: string; p?: string };
  return {
    path: j.p,
    record: { dir: j.d, value: j.v, createdIndex: j.c, modifiedIndex: j.m, expireNs: BigInt(j.e) },
  };
}
