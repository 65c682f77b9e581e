// One write request (Put, DeleteRange, Txn) applied inside the backend's batch transaction. Every change of
// the request gets revision (beginRev + 1, sub), sub counting from 0; a request that changes nothing keeps the
// revision. Reads inside a Txn see the Txn's own earlier writes (etcd reads at beginRev + 1 once it changed).
import type { WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import { decodeKeyValue, encodeKeyValue, withoutValue, type KeyValue } from "./kv_codec.js";
import { KEY_BUCKET, MVCC_META_BUCKET, compareBytes, layoutKey, layoutSpan, type Revision } from "./layout.js";
import { rangeTask, type RangeTaskArgs, type RangeTaskResult } from "./range_task.js";
import {
  CompareResult,
  RANGE_FRAME_HEAD_BYTES,
  RANGE_FRAME_TAIL_BYTES,
  type FramedKvs,
  CompareTarget,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "./types.js";

export const META_COMPACT_KEY = new TextEncoder().encode("compact_rev");
export const META_CURRENT_KEY = new TextEncoder().encode("current_rev");
/** The stored value of a deletion (an empty value marks a tombstone in the layout); never written to. */
const TOMBSTONE = new Uint8Array(0);
/** Live keys a DeleteRange reads per step. */
const DELETE_CHUNK_KEYS = 10_000;

/** Builds the pure range task's arguments for a request read at `rev` (validated by the caller). */
export function rangeArgs(r: RangeRequest, rev: number): RangeTaskArgs {
  const span = layoutSpan(r.key, r.rangeEnd);
  return {
    bucket: KEY_BUCKET,
    metaBucket: MVCC_META_BUCKET,
    compactKey: META_COMPACT_KEY,
    start: span.start,
    end: span.end,
    ...(span.keyFrom === undefined ? {} : { keyFrom: span.keyFrom }),
    ...(span.keyTo === undefined ? {} : { keyTo: span.keyTo }),
    rev,
    limit: r.limit ?? 0,
    sortOrder: r.sortOrder ?? 0,
    sortTarget: r.sortTarget ?? 0,
    countOnly: r.countOnly ?? false,
    keysOnly: r.keysOnly ?? false,
    minModRevision: r.minModRevision ?? 0,
    maxModRevision: r.maxModRevision ?? 0,
    minCreateRevision: r.minCreateRevision ?? 0,
    maxCreateRevision: r.maxCreateRevision ?? 0,
    frameHeadBytes: RANGE_FRAME_HEAD_BYTES,
    frameTailBytes: RANGE_FRAME_TAIL_BYTES,
  };
}

/** Whether [key, rangeEnd) is empty because rangeEnd ≤ key (etcd answers such ranges with nothing). */
export function isEmptySpan(key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
  if (rangeEnd === undefined || rangeEnd.length === 0) return false;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return false;
  return compareBytes(rangeEnd, key) <= 0;
}

/** The revision a read asks for, checked against the current and compacted revisions. */
export function resolveRev(asked: number | undefined, current: number, compacted: number): number {
  const rev = asked === undefined || asked <= 0 ? current : asked;
  if (rev > current) throw new EtcdError("FUTURE_REV", `revision ${rev} > current ${current}`);
  if (rev < compacted) throw new EtcdError("COMPACTED", `revision ${rev} < compacted ${compacted}`);
  return rev;
}

/** The unpacked kvs of a range task result (subarrays of one buffer, no copy). */
export function unpack(res: RangeTaskResult): Uint8Array[] {
  return Array.from(res.ends, (end, i) => res.packed.subarray(res.starts[i] ?? end, end));
}

/** The already-framed kvs of a range task result, for the API to send without copying. */
export function framedKvs(res: RangeTaskResult): FramedKvs {
  return { buf: res.packed, start: res.framedStart, end: res.framedEnd };
}

/** Which branch each txn takes, decided on the state before the txn writes anything (as etcd). */
type TxnPath = { readonly succeeded: boolean; readonly children: TxnPath[] };

/** One change of a write, for watchers: kv is the new KeyValue bytes (a delete: key + mod_revision only). */
export interface Change {
  readonly type: 0 | 1; // etcd's mvccpb.Event.EventType: PUT 0, DELETE 1
  readonly kv: Uint8Array;
  readonly prevKv: Uint8Array | undefined;
  /**
   * Where the previous value is stored when prevKv was not read (no watcher wanted it when the request ran);
   * undefined when prevKv is given or the key was not live.
   */
  readonly prevRev: Revision | undefined;
  readonly rev: number;
}

/**
 * A live key's newest entry as etcd's key index knows it: its revision, and the create revision, version and
 * lease of its newest value, so a put or a compare on those targets needs no read of the stored value.
 */
export interface LiveEntry extends Revision {
  readonly create: number;
  readonly version: number;
  readonly lease: bigint;
}

/** The live entry of a stored KeyValue at `rev`. */
export function liveEntryOf(rev: Revision, kv: KeyValue): LiveEntry {
  return { main: rev.main, sub: rev.sub, create: kv.createRevision, version: kv.version, lease: kv.lease };
}

/**
 * The in-memory index of live keys: user key → its newest (live) entry. A put takes the create revision,
 * version and lease from it without reading the stored value; "the newest value of key" is one exact LMDB get
 * instead of a cursor seek. Deleted keys are absent. Compaction never changes it (it keeps each live key's
 * newest revision). Rebuilt from the layout on open.
 */
export interface LiveIndex {
  get(key: Uint8Array): LiveEntry | undefined;
  /** Undefined removes the key (it was deleted at main revision `at`). */
  set(key: Uint8Array, entry: LiveEntry | undefined, at: number): void;
}

/** Where a batch reports keys that became live (+1) or were deleted (−1), in revision order (key_count.ts). */
export interface MembershipLog {
  record(rev: number, id: string, delta: 1 | -1): void;
}

/** Node's native latin1 decoder, which also takes a plain Uint8Array (no Buffer view made per call). */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

export function keyId(key: Uint8Array): string {
  return latin1Slice.call(key, 0, key.length);
}

/**
 * A batch's view of the index. It writes through to the committed index at once (one map operation per change
 * instead of an overlay's lookups plus a second pass after the commit) and journals what each change replaced:
 * rollback() takes back the changes of the entry since mark(), abort() those of the whole batch (its commit
 * failed), so the committed index ends as if the batch or the entry had never run. The journal and the
 * membership log are parallel arrays (no object per change): one request may delete millions of keys. Nothing
 * else reads the index while a batch runs (the batch is one synchronous transaction).
 */
export class BatchIndex implements LiveIndex {
  /** Every change of the batch: its key id and what the committed index held before (undefined: absent). */
  private readonly journalIds: string[] = [];
  private readonly journalPrior: (LiveEntry | undefined)[] = [];
  /** The journal's length at mark(). */
  private journalMark = 0;
  /** Creations (+1) and deletions (−1) in the order they happened (a key may come and go inside one batch). */
  private readonly memberRevs: number[] = [];
  private readonly memberIds: string[] = [];
  private readonly memberDeltas: (1 | -1)[] = [];
  /** The membership arrays' length at mark(): a rollback drops what came after. */
  private membershipMark = 0;
  /** The last key looked up or set, its id and its entry now: a put's set after its get reuses them. */
  private lastKey: Uint8Array | undefined;
  private lastId = "";
  private lastEntry: LiveEntry | undefined;
  constructor(private readonly base: Map<string, LiveEntry>) {}
  get(key: Uint8Array): LiveEntry | undefined {
    if (key === this.lastKey) return this.lastEntry;
    const id = keyId(key);
    const entry = this.base.get(id);
    this.lastKey = key;
    this.lastId = id;
    this.lastEntry = entry;
    return entry;
  }
  set(key: Uint8Array, rev: LiveEntry | undefined, at: number): void {
    const known = key === this.lastKey;
    const id = known ? this.lastId : keyId(key);
    const prior = known ? this.lastEntry : this.base.get(id);
    this.lastKey = key;
    this.lastId = id;
    this.lastEntry = rev;
    if ((prior !== undefined) !== (rev !== undefined)) {
      this.memberRevs.push(at);
      this.memberIds.push(id);
      this.memberDeltas.push(prior !== undefined ? -1 : 1);
    }
    this.journalIds.push(id);
    this.journalPrior.push(prior);
    if (rev === undefined) this.base.delete(id);
    else this.base.set(id, rev);
  }
  /** Starts a new entry: what is set from now on can be taken back with rollback(). */
  mark(): void {
    this.journalMark = this.journalIds.length;
    this.membershipMark = this.memberIds.length;
  }
  /** Takes back every change since mark(). */
  rollback(): void {
    this.#undoTo(this.journalMark);
    this.memberRevs.length = this.memberIds.length = this.memberDeltas.length = this.membershipMark;
  }
  /** Takes back every change of the batch (its commit failed). */
  abort(): void {
    this.#undoTo(0);
    this.journalMark = this.membershipMark = 0;
    this.memberRevs.length = this.memberIds.length = this.memberDeltas.length = 0;
  }
  /** Reports the batch's creations and deletions (call after the backend commit succeeded). */
  apply(log?: MembershipLog): void {
    if (log === undefined) return;
    for (let i = 0; i < this.memberIds.length; i++)
      log.record(this.memberRevs[i] as number, this.memberIds[i] as string, this.memberDeltas[i] as 1 | -1);
  }
  #undoTo(length: number): void {
    this.lastKey = undefined;
    for (let i = this.journalIds.length - 1; i >= length; i--) {
      const id = this.journalIds[i] as string;
      const prior = this.journalPrior[i];
      if (prior === undefined) this.base.delete(id);
      else this.base.set(id, prior);
    }
    this.journalIds.length = this.journalPrior.length = length;
  }
}

/**
 * What the store asks of the lessor while it applies writes (as etcd hands its mvcc a lessor): whether a lease
 * exists, and which key now belongs to which lease. Called in apply order inside the batch, so a revoke later in
 * the same batch sees the keys attached before it. mvcc knows nothing else of leases.
 */
export interface LeaseAttacher {
  has(id: bigint): boolean;
  attach(id: bigint, key: Uint8Array): void;
  detach(key: Uint8Array): void;
}

/**
 * Holds one entry's attach/detach calls until the entry has applied whole (flush), so a failed entry leaves the
 * lessor as it found it. Nothing within an entry reads attachments back, so holding them changes no outcome.
 */
export class PendingAttachments implements LeaseAttacher {
  private readonly ops: ({ id: bigint; key: Uint8Array } | { key: Uint8Array })[] = [];
  constructor(private readonly target: LeaseAttacher) {}
  has(id: bigint): boolean {
    return this.target.has(id);
  }
  attach(id: bigint, key: Uint8Array): void {
    if (!this.target.has(id)) throw new EtcdError("LEASE_NOT_FOUND", `attach to ${id.toString(16)}`);
    this.ops.push({ id, key });
  }
  detach(key: Uint8Array): void {
    this.ops.push({ key });
  }
  flush(): void {
    for (const op of this.ops) {
      if ("id" in op) this.target.attach(op.id, op.key);
      else this.target.detach(op.key);
    }
    this.ops.length = 0;
  }
}

export class WriteTxn {
  private sub = 0;
  /** Changes in revision order, handed to the watchable store after the commit. */
  readonly changes: Change[] = [];
  /** Operations this request ran, as etcd's mvcc metrics count them (a compare's read is a range). */
  readonly ops = { ranges: 0, puts: 0, deletes: 0, putBytes: 0 };
  /** latest()'s last read: the index entry it looked up and the bytes stored under it. */
  private lastRead: { readonly rev: Revision; readonly value: Uint8Array } | undefined;

  constructor(
    private readonly tx: WriteView,
    private readonly index: LiveIndex,
    /** The store's revision before this request. */
    readonly beginRev: number,
    private readonly compactRev: number,
    private readonly leases?: LeaseAttacher,
    /** Whether a watcher wants prev_kv: each change then carries the previous value, read in this request. */
    private readonly prevKvWanted = true,
  ) {}

  /** The revision after this request: beginRev + 1 if it changed anything. */
  get rev(): number {
    return this.sub > 0 ? this.beginRev + 1 : this.beginRev;
  }

  put(r: PutRequest): PutResponse {
    this.ops.puts++;
    this.ops.putBytes += r.key.length + r.value.length;
    const entry = this.index.get(r.key);
    if ((r.ignoreValue === true || r.ignoreLease === true) && entry === undefined) {
      throw new EtcdError("KEY_NOT_FOUND", "put with ignore_value/ignore_lease");
    }
    // As etcd's put, the previous version's create revision, version and lease come from the index; its value
    // is read only when someone takes it (the response's prev_kv, ignore_value, a watcher's prev_kv).
    const prev =
      entry !== undefined && (this.prevKvWanted || r.prevKv === true || r.ignoreValue === true)
        ? this.latest(r.key)
        : undefined;
    const lease = r.ignoreLease === true && entry !== undefined ? entry.lease : (r.lease ?? 0n);
    this.checkLease(lease);
    const main = this.beginRev + 1;
    const kv: KeyValue = {
      key: r.key,
      createRevision: entry?.create ?? main,
      modRevision: main,
      version: (entry?.version ?? 0) + 1,
      value: r.ignoreValue === true && prev !== undefined ? decodeKeyValue(prev).value : r.value,
      lease,
    };
    if (lease !== 0n) this.leases?.attach(lease, r.key);
    else if (entry !== undefined && entry.lease !== 0n) this.leases?.detach(r.key);
    const bytes = encodeKeyValue(kv);
    const next = liveEntryOf({ main, sub: this.sub++ }, kv);
    this.tx.put(KEY_BUCKET, layoutKey(r.key, next), bytes);
    this.index.set(r.key, next, main);
    this.changes.push({ type: 0, kv: bytes, prevKv: prev, prevRev: prev === undefined ? entry : undefined, rev: main });
    return r.prevKv === true && prev !== undefined ? { revision: main, prevKv: prev } : { revision: main };
  }

  /**
   * Deletes the live keys of the span in chunks of DELETE_CHUNK_KEYS: each chunk is read from just past the
   * previous one's last key, so no single read result grows with the number of keys deleted. When neither the
   * request nor a watcher wants the deleted values, chunks are read keys-only and each change names where its
   * previous value is stored (as a put's does): a chunk's values are then not held until the watchers have run.
   */
  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse {
    this.ops.deletes++;
    const main = this.beginRev + 1;
    const prevKvs: Uint8Array[] = [];
    const valuesWanted = this.prevKvWanted || r.prevKv === true;
    let deleted = 0;
    let from = r.key;
    for (;;) {
      const chunk = this.page(from, r.rangeEnd, !valuesWanted);
      let lastKey: Uint8Array | undefined;
      for (const bytes of chunk.kvs) {
        const { key, lease } = decodeKeyValue(bytes);
        if (lease !== 0n) this.leases?.detach(key);
        const prevRev = valuesWanted ? undefined : this.index.get(key);
        this.tx.put(KEY_BUCKET, layoutKey(key, { main, sub: this.sub++ }), TOMBSTONE);
        this.index.set(key, undefined, main);
        const prevKv = valuesWanted ? bytes : undefined;
        this.changes.push({ type: 1, kv: tombstoneKv(key, main), prevKv, prevRev, rev: main });
        if (r.prevKv === true) prevKvs.push(bytes);
        deleted += 1;
        lastKey = key;
      }
      if (!chunk.more || lastKey === undefined) break;
      from = new Uint8Array(lastKey.length + 1); // the smallest key past lastKey
      from.set(lastKey);
    }
    return { revision: this.rev, deleted, prevKvs };
  }

  /**
   * Up to DELETE_CHUNK_KEYS live keys of [from, end) in key order (a single key when end is undefined), without
   * their values when `keysOnly` (a single key's may come with it).
   */
  private page(
    from: Uint8Array,
    end: Uint8Array | undefined,
    keysOnly: boolean,
  ): { kvs: readonly Uint8Array[]; more: boolean } {
    if (end === undefined || end.length === 0) {
      // One key (a lease revoke deletes its keys one by one): the live index finds it with one exact get.
      const live = this.latest(from);
      return { kvs: live === undefined ? [] : [live], more: false };
    }
    if (isEmptySpan(from, end)) return { kvs: [], more: false };
    const rev = resolveRev(undefined, this.rev, this.compactRev);
    const res = rangeTask(this.tx, {
      ...rangeArgs({ key: from, rangeEnd: end, limit: DELETE_CHUNK_KEYS, keysOnly }, rev),
      stopAtLimit: true,
    });
    if (res.compactedAt > 0) throw new EtcdError("COMPACTED", `revision ${rev} < compacted ${res.compactedAt}`);
    return { kvs: unpack(res), more: res.more };
  }

  range(r: RangeRequest): RangeResponse {
    this.ops.ranges++;
    const rev = resolveRev(r.revision, this.rev, this.compactRev);
    if (isEmptySpan(r.key, r.rangeEnd)) return { revision: this.rev, kvs: [], more: false, count: 0 };
    if (rev === this.rev && isSingleKey(r.rangeEnd)) return this.pointRange(r);
    const res = rangeTask(this.tx, rangeArgs(r, rev));
    if (res.compactedAt > 0) throw new EtcdError("COMPACTED", `revision ${rev} < compacted ${res.compactedAt}`);
    return { revision: this.rev, kvs: unpack(res), more: res.more, count: res.count };
  }

  /**
   * A single-key Range at the txn's own revision, answered as the range task would answer it, from the live index
   * and one exact get instead of a scan over the key's revisions. One key makes the limit and the sort moot; its
   * count is taken before the revision filters, as the range task counts.
   */
  private pointRange(r: RangeRequest): RangeResponse {
    const bytes = this.latest(r.key);
    if (bytes === undefined) return { revision: this.rev, kvs: [], more: false, count: 0 };
    if (r.countOnly === true || !passesFilters(r, bytes)) return { revision: this.rev, kvs: [], more: false, count: 1 };
    return { revision: this.rev, kvs: [r.keysOnly === true ? withoutValue(bytes) : bytes], more: false, count: 1 };
  }

  txn(r: TxnRequest): TxnResponse {
    const path = this.decide(r);
    this.checkPuts(r, path);
    return this.applyTxn(r, path);
  }

  private decide(r: TxnRequest): TxnPath {
    const succeeded = r.compare.every((c) => this.compare(c));
    const children: TxnPath[] = [];
    for (const op of succeeded ? r.success : r.failure) if ("txn" in op) children.push(this.decide(op.txn));
    return { succeeded, children };
  }

  /** ignore_value/ignore_lease puts on the taken path need an existing key; checked before any write. */
  private checkPuts(r: TxnRequest, path: TxnPath): void {
    let child = 0;
    for (const op of path.succeeded ? r.success : r.failure) {
      if (
        "put" in op &&
        (op.put.ignoreValue === true || op.put.ignoreLease === true) &&
        this.latest(op.put.key) === undefined
      ) {
        throw new EtcdError("KEY_NOT_FOUND", "txn put with ignore_value/ignore_lease");
      }
      if ("put" in op && op.put.ignoreLease !== true) this.checkLease(op.put.lease ?? 0n);
      if ("txn" in op) this.checkPuts(op.txn, path.children[child++] as TxnPath);
    }
  }

  private applyTxn(r: TxnRequest, path: TxnPath): TxnResponse {
    const responses: ResponseOp[] = [];
    let child = 0;
    for (const op of path.succeeded ? r.success : r.failure)
      responses.push(this.applyOp(op, () => path.children[child++] as TxnPath));
    return { revision: this.rev, succeeded: path.succeeded, responses };
  }

  private applyOp(op: RequestOp, nextPath: () => TxnPath): ResponseOp {
    if ("range" in op) return { range: this.range(op.range) };
    if ("put" in op) return { put: this.put(op.put) };
    if ("deleteRange" in op) return { deleteRange: this.deleteRange(op.deleteRange) };
    return { txn: this.applyTxn(op.txn, nextPath()) };
  }

  /**
   * etcd's compare: every key in the range must satisfy it; no key at all fails a VALUE compare and compares the
   * other targets against zeros. A single key is read through the live index (still counted as a range).
   */
  private compare(c: Compare): boolean {
    let kvs: readonly Uint8Array[];
    if (isSingleKey(c.rangeEnd)) {
      this.ops.ranges++;
      // Revisions, version and lease are in the index: no read of the value.
      if (c.target !== CompareTarget.VALUE) return compareKv(c, indexedKv(c.key, this.index.get(c.key)));
      const bytes = this.latest(c.key);
      kvs = bytes === undefined ? [] : [bytes];
    } else kvs = this.range({ key: c.key, ...(c.rangeEnd !== undefined ? { rangeEnd: c.rangeEnd } : {}) }).kvs;
    if (kvs.length === 0) {
      if (c.target === CompareTarget.VALUE) return false;
      return compareKv(c, indexedKv(c.key, undefined));
    }
    return kvs.every((bytes) => compareKv(c, decodeKeyValue(bytes)));
  }

  /** A put may only name a lease that exists (checked before anything of the request is written). */
  private checkLease(lease: bigint): void {
    if (lease !== 0n && this.leases !== undefined && !this.leases.has(lease)) {
      throw new EtcdError("LEASE_NOT_FOUND", `lease ${lease.toString(16)}`);
    }
  }

  /**
   * The newest live revision's KeyValue bytes of `key`, or undefined (never written, or deleted). The last answer
   * is kept by its index entry: a guarded update (compare a key, then put it) reads the key once. An entry object
   * stands for one stored revision of one key, whose bytes never change while this request runs.
   */
  private latest(key: Uint8Array): Uint8Array | undefined {
    const rev = this.index.get(key);
    if (rev === undefined) return undefined;
    if (rev === this.lastRead?.rev) return this.lastRead.value;
    const value = this.tx.get(KEY_BUCKET, layoutKey(key, rev));
    if (value === undefined || value.length === 0) {
      throw new Error(
        `mvcc: live index says ${keyId(key)} is at ${rev.main}.${rev.sub}, the layout has ${value === undefined ? "nothing" : "a tombstone"}`,
      );
    }
    this.lastRead = { rev, value };
    return value;
  }
}

const EMPTY_VALUE = new Uint8Array(0);

/** What a compare on anything but the value sees of a key: its index entry, or zeros for no live key (as etcd). */
function indexedKv(key: Uint8Array, e: LiveEntry | undefined): KeyValue {
  return {
    key,
    createRevision: e?.create ?? 0,
    modRevision: e?.main ?? 0,
    version: e?.version ?? 0,
    value: EMPTY_VALUE,
    lease: e?.lease ?? 0n,
  };
}

/** The kv of a delete event, as etcd sends it: the key and the deletion's revision as mod_revision. */
export function tombstoneKv(key: Uint8Array, rev: number): Uint8Array {
  return encodeKeyValue({ key, createRevision: 0, modRevision: rev, version: 0, value: new Uint8Array(0), lease: 0n });
}

/** Whether a range end names a single key (absent or empty). */
function isSingleKey(rangeEnd: Uint8Array | undefined): boolean {
  return rangeEnd === undefined || rangeEnd.length === 0;
}

/** Whether a KeyValue passes a Range's min/max mod and create revision filters (0: no bound). */
function passesFilters(r: RangeRequest, bytes: Uint8Array): boolean {
  const [minMod, maxMod] = [r.minModRevision ?? 0, r.maxModRevision ?? 0];
  const [minCreate, maxCreate] = [r.minCreateRevision ?? 0, r.maxCreateRevision ?? 0];
  if (minMod <= 0 && maxMod <= 0 && minCreate <= 0 && maxCreate <= 0) return true;
  const kv = decodeKeyValue(bytes);
  if (minMod > 0 && kv.modRevision < minMod) return false;
  if (maxMod > 0 && kv.modRevision > maxMod) return false;
  if (minCreate > 0 && kv.createRevision < minCreate) return false;
  return maxCreate <= 0 || kv.createRevision <= maxCreate;
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let d: number;
  switch (c.target) {
    case CompareTarget.VALUE:
      d = compareBytes(kv.value, c.value ?? new Uint8Array(0));
      break;
    case CompareTarget.VERSION:
      d = kv.version - (c.version ?? 0);
      break;
    case CompareTarget.CREATE:
      d = kv.createRevision - (c.createRevision ?? 0);
      break;
    case CompareTarget.MOD:
      d = kv.modRevision - (c.modRevision ?? 0);
      break;
    case CompareTarget.LEASE: {
      const l = c.lease ?? 0n;
      d = kv.lease === l ? 0 : kv.lease > l ? 1 : -1;
      break;
    }
  }
  switch (c.result) {
    case CompareResult.EQUAL:
      return d === 0;
    case CompareResult.GREATER:
      return d > 0;
    case CompareResult.LESS:
      return d < 0;
    case CompareResult.NOT_EQUAL:
      return d !== 0;
  }
}

export { MVCC_META_BUCKET };
