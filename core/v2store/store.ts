// The v2 key store: etcd 3.4's v2 semantics over the tree of node.ts. Every change bumps the store index by one and
// records an event (history and watchers in events.ts). Writes are deterministic given their arguments (expiry
// times come in the request, expiry runs at the time a SYNC request carries), so every member applying the same
// log holds the same tree. Paths a write touched are remembered until the owner persists them (takeDirty); between
// begin() and commit() a write's changes can be taken back whole (rollback), and watchers see its events only once
// it is kept.
import { EventHistory, eventIndex, WatcherHub, type V2Action, type V2Event, type V2Watcher } from "./events.js";
import { V2Code, V2Error } from "./errors.js";
import { getRepr, nameOf, newNode, repr, ttlOf, formatNs, type NodeJson, type V2Node } from "./node.js";
import { WriteUndo } from "./undo.js";

/** Expiry before 2000-01-01 means "permanent", as in etcd. */
const MIN_EXPIRE_NS = BigInt(Date.UTC(2000, 0, 1)) * 1_000_000n;

export interface TtlOptions {
  /** Absolute expiry in nanoseconds since the epoch; 0n: none. */
  readonly expireNs: bigint;
  readonly refresh?: boolean;
}

export const STAT_NAMES = [
  "getsSuccess",
  "getsFail",
  "setsSuccess",
  "setsFail",
  "deleteSuccess",
  "deleteFail",
  "updateSuccess",
  "updateFail",
  "createSuccess",
  "createFail",
  "compareAndSwapSuccess",
  "compareAndSwapFail",
  "compareAndDeleteSuccess",
  "compareAndDeleteFail",
  "expireCount",
] as const;
type StatName = (typeof STAT_NAMES)[number];

/** Node state as persisted: one record per path (the root is implicit). */
export interface NodeRecord {
  readonly dir: boolean;
  readonly value: string;
  readonly createdIndex: number;
  readonly modifiedIndex: number;
  readonly expireNs: bigint;
}

export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

export class V2Store {
  #root: V2Node = newNode("/", undefined, true, "", 0, 0n);
  #index = 0;
  readonly #ttl = new Set<V2Node>();
  readonly #history = new EventHistory();
  readonly #hub = new WatcherHub();
  readonly #dirty = new Set<string>();
  /** History changes since the last takeDirty: events recorded, and indexes of events that fell out. */
  #eventsAdded: V2Event[] = [];
  #eventsDropped: number[] = [];
  readonly stats: Record<StatName, number> = Object.fromEntries(STAT_NAMES.map((n) => [n, 0])) as Record<
    StatName,
    number
  >;
  /** Gets, failed or not, by kind (etcd_debugging_store_reads_total), and watch requests. */
  readonly reads = { get: 0, getRecursive: 0 };
  watchRequests = 0;
  readonly #now: () => bigint;
  /** The open write's undo record (between begin and commit or rollback). */
  #undo: WriteUndo | undefined;

  constructor(now: () => bigint = () => BigInt(Date.now()) * 1_000_000n) {
    this.#now = now;
  }

  get index(): number {
    return this.#index;
  }

  get hasTtlKeys(): boolean {
    return this.#ttl.size > 0;
  }

  get watcherCount(): number {
    return this.#hub.count;
  }

  // ---- reads ----

  get(path: string, recursive: boolean, sorted: boolean): V2Event {
    this.reads[recursive ? "getRecursive" : "get"]++;
    try {
      const n = this.#get(cleanPath(path));
      this.stats.getsSuccess++;
      return { action: "get", node: getRepr(n, recursive, sorted, this.#now()), etcdIndex: this.#index };
    } catch (err) {
      this.stats.getsFail++;
      throw err;
    }
  }

  /** An event at or after `sinceIndex` from history, or undefined after registering `w` (see events.ts). */
  watch(
    path: string,
    recursive: boolean,
    stream: boolean,
    sinceIndex: number,
    onEvent: (e: V2Event) => void,
  ): { event?: V2Event; startIndex: number; cancel: () => void } {
    this.watchRequests++;
    const key = cleanPath(path);
    const since = sinceIndex === 0 ? this.#index + 1 : sinceIndex;
    let found: V2Event | undefined;
    try {
      found = this.#history.scan(key, recursive, since);
    } catch (err) {
      if (err instanceof V2Error) throw new V2Error(err.errorCode, err.cause, this.#index);
      throw err;
    }
    if (found !== undefined)
      return { event: { ...found, etcdIndex: this.#index }, startIndex: this.#index, cancel: () => undefined };
    const w: V2Watcher = { key, recursive, stream, sinceIndex: since, startIndex: this.#index, onEvent };
    return { startIndex: this.#index, cancel: this.#hub.add(w) };
  }

  // ---- writes ----

  set(path: string, dir: boolean, value: string, ttl: TtlOptions): V2Event {
    return this.#counted("sets", () => {
      const p = cleanPath(path);
      let prev: V2Node | undefined;
      try {
        prev = this.#get(p);
      } catch (err) {
        if (!(err instanceof V2Error) || err.errorCode !== V2Code.KeyNotFound || ttl.refresh === true) throw err;
      }
      const e = this.#create(
        p,
        dir,
        ttl.refresh === true && prev !== undefined ? prev.value : value,
        true,
        ttl.expireNs,
        "set",
      );
      return this.#publish(e, ttl.refresh === true);
    });
  }

  create(path: string, dir: boolean, value: string, unique: boolean, ttl: TtlOptions): V2Event {
    return this.#counted("create", () => {
      const p = unique ? `${cleanPath(path)}/${String(this.#index + 1).padStart(20, "0")}` : cleanPath(path);
      return this.#publish(this.#create(p, dir, value, false, ttl.expireNs, "create"), false);
    });
  }

  update(path: string, value: string, ttl: TtlOptions): V2Event {
    return this.#counted("update", () => {
      const p = this.#writable(path);
      const n = this.#get(p);
      if (n.children !== undefined && value !== "") throw new V2Error(V2Code.NotFile, p, this.#index);
      const next = this.#index + 1;
      const prevNode = repr(n, false, false, this.#now());
      const v = ttl.refresh === true ? n.value : value;
      if (n.children === undefined) {
        this.#undo?.node(n);
        n.value = v;
        n.modifiedIndex = next;
      }
      this.#setTtl(n, ttl.expireNs);
      this.#index = next;
      this.#dirty.add(p);
      const node = this.#eventNode(n, next, n.children === undefined ? { value: v } : { dir: true });
      return this.#publish({ action: "update", node, prevNode, etcdIndex: next }, ttl.refresh === true);
    });
  }

  compareAndSwap(path: string, prevValue: string, prevIndex: number, value: string, ttl: TtlOptions): V2Event {
    return this.#counted("compareAndSwap", () => {
      const p = this.#writable(path);
      const n = this.#compared(p, prevValue, prevIndex);
      const next = this.#index + 1;
      const prevNode = repr(n, false, false, this.#now());
      const v = ttl.refresh === true ? n.value : value;
      this.#undo?.node(n);
      n.value = v;
      n.modifiedIndex = next;
      this.#setTtl(n, ttl.expireNs);
      this.#index = next;
      this.#dirty.add(p);
      const node = this.#eventNode(n, next, { value: v });
      return this.#publish({ action: "compareAndSwap", node, prevNode, etcdIndex: next }, ttl.refresh === true);
    });
  }

  delete(path: string, dir: boolean, recursive: boolean): V2Event {
    return this.#counted("delete", () => {
      const p = this.#writable(path);
      const n = this.#get(p);
      if (n.children !== undefined) {
        if (!dir && !recursive) throw new V2Error(V2Code.NotFile, p, this.#index);
        if (n.children.size > 0 && !recursive) throw new V2Error(V2Code.DirNotEmpty, p, this.#index);
      }
      return this.#removeWithEvent(n, "delete");
    });
  }

  compareAndDelete(path: string, prevValue: string, prevIndex: number): V2Event {
    return this.#counted("compareAndDelete", () => {
      const n = this.#compared(cleanPath(path), prevValue, prevIndex);
      return this.#removeWithEvent(n, "compareAndDelete");
    });
  }

  /**
   * Removes every key whose expiry is at or before `cutoffNs`, oldest first (equal expiries by path: the TTL set's
   * order depends on how the tree was built, by writes or by a load, and must not decide the events' order), one
   * "expire" event each.
   */
  deleteExpired(cutoffNs: bigint): V2Event[] {
    const due = [...this.#ttl]
      .filter((n) => n.expireNs <= cutoffNs)
      .sort((a, b) =>
        a.expireNs !== b.expireNs ? (a.expireNs < b.expireNs ? -1 : 1) : a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
      );
    const out: V2Event[] = [];
    for (const n of due) {
      if (!this.#ttl.has(n)) continue; // went with an expired directory above it
      out.push(this.#removeWithEvent(n, "expire"));
      this.stats.expireCount++;
    }
    return out;
  }

  // ---- keeping or taking back a write ----

  /**
   * Starts recording one write's changes. A write left open (begun, never committed: its request failed after the
   * store's part was done) is taken back first.
   */
  begin(): void {
    if (this.#undo !== undefined) this.rollback();
    this.#undo = new WriteUndo({
      index: this.#index,
      stats: { ...this.stats },
      dirty: [...this.#dirty],
      eventsAdded: [...this.#eventsAdded],
      eventsDropped: [...this.#eventsDropped],
    });
  }

  /** Keeps the open write: its held-back events reach the watchers. */
  commit(): void {
    const undo = this.#undo;
    this.#undo = undefined;
    for (const { event, removed } of undo?.notifications ?? []) this.#hub.notify(event, removed);
  }

  /** Takes the open write back: the tree, index, history, statistics and dirty paths are as before begin(). */
  rollback(): void {
    const undo = this.#undo;
    this.#undo = undefined;
    if (undo === undefined) return;
    undo.rollback(this.#ttl, this.#history);
    const f = undo.fields;
    this.#index = f.index;
    Object.assign(this.stats, f.stats);
    this.#dirty.clear();
    for (const p of f.dirty) this.#dirty.add(p);
    this.#eventsAdded = [...f.eventsAdded];
    this.#eventsDropped = [...f.eventsDropped];
  }

  // ---- persistence ----

  #record(e: V2Event): void {
    this.#eventsAdded.push(e);
    const dropped = this.#history.add(e);
    this.#undo?.historyAdded(dropped);
    if (dropped !== undefined) this.#eventsDropped.push(eventIndex(dropped));
  }

  #notify(event: V2Event, removed: readonly string[]): void {
    if (this.#undo !== undefined) this.#undo.notifications.push({ event, removed });
    else this.#hub.notify(event, removed);
  }

  /** History changes since the last call (the owner persists them beside the nodes, so waits survive a restart). */
  takeHistory(): { readonly added: readonly V2Event[]; readonly dropped: readonly number[] } {
    const out = { added: this.#eventsAdded, dropped: this.#eventsDropped };
    this.#eventsAdded = [];
    this.#eventsDropped = [];
    return out;
  }

  /** Paths changed since the last call: their current record, or undefined when removed. */
  takeDirty(): { readonly path: string; readonly record: NodeRecord | undefined }[] {
    const out = [...this.#dirty].map((path) => {
      const n = this.#find(path);
      return { path, record: n === undefined ? undefined : recordOf(n) };
    });
    this.#dirty.clear();
    return out;
  }

  /** Rebuilds the tree from persisted records (any order), the persisted index and history (oldest first). */
  load(
    index: number,
    records: Iterable<{ readonly path: string; readonly record: NodeRecord }>,
    history: Iterable<V2Event> = [],
  ): void {
    this.#root = newNode("/", undefined, true, "", 0, 0n);
    this.#undo = undefined;
    this.#ttl.clear();
    this.#dirty.clear();
    this.#history.clear();
    for (const e of history) this.#history.add(e);
    this.#eventsAdded = [];
    this.#eventsDropped = [];
    this.#index = index;
    const sorted = [...records].sort((a, b) => a.path.split("/").length - b.path.split("/").length);
    for (const { path, record: r } of sorted) {
      const parent = this.#find(parentOf(path));
      if (parent?.children === undefined) throw new Error(`v2 store: ${path} has no parent directory in the backend`);
      const n = newNode(path, parent, r.dir, r.value, r.createdIndex, r.expireNs);
      n.modifiedIndex = r.modifiedIndex;
      parent.children.set(nameOf(path), n);
      if (r.expireNs !== 0n) this.#ttl.add(n);
    }
  }

  // ---- internals ----

  #counted(
    op: "sets" | "create" | "update" | "delete" | "compareAndSwap" | "compareAndDelete",
    f: () => V2Event,
  ): V2Event {
    const ok = (op === "sets" ? "setsSuccess" : `${op}Success`) as StatName;
    const fail = (op === "sets" ? "setsFail" : `${op}Fail`) as StatName;
    try {
      const e = f();
      this.stats[ok]++;
      return e;
    } catch (err) {
      this.stats[fail]++;
      throw err;
    }
  }

  #publish(e: V2Event, refresh: boolean): V2Event {
    if (refresh) {
      const r = { ...e, refresh: true };
      this.#record(r);
      return r;
    }
    this.#record(e);
    this.#notify(e, []);
    return e;
  }

  #writable(path: string): string {
    const p = cleanPath(path);
    if (p === "/") throw new V2Error(V2Code.RootReadOnly, "/", this.#index);
    return p;
  }

  #find(p: string): V2Node | undefined {
    let n: V2Node | undefined = this.#root;
    for (const seg of p.split("/")) {
      if (seg === "") continue;
      n = n?.children?.get(seg);
    }
    return n;
  }

  #get(p: string): V2Node {
    let n = this.#root;
    for (const seg of p.split("/")) {
      if (seg === "") continue;
      if (n.children === undefined) throw new V2Error(V2Code.NotDir, n.path, this.#index);
      const c = n.children.get(seg);
      if (c === undefined)
        throw new V2Error(V2Code.KeyNotFound, n.path === "/" ? `/${seg}` : `${n.path}/${seg}`, this.#index);
      n = c;
    }
    return n;
  }

  #compared(p: string, prevValue: string, prevIndex: number): V2Node {
    const n = this.#get(p);
    if (n.children !== undefined) throw new V2Error(V2Code.NotFile, p, this.#index);
    const indexOk = prevIndex === 0 || n.modifiedIndex === prevIndex;
    const valueOk = prevValue === "" || n.value === prevValue;
    if (indexOk && valueOk) return n;
    const cause =
      !valueOk && indexOk
        ? `[${prevValue} != ${n.value}]`
        : valueOk
          ? `[${prevIndex} != ${n.modifiedIndex}]`
          : `[${prevValue} != ${n.value}] [${prevIndex} != ${n.modifiedIndex}]`;
    throw new V2Error(V2Code.TestFailed, cause, this.#index);
  }

  /** Create or replace a node at `p`: missing directories above it are created; only a file may be replaced. */
  #create(p: string, dir: boolean, value: string, replace: boolean, expireNs: bigint, action: V2Action): V2Event {
    if (p === "/") throw new V2Error(V2Code.RootReadOnly, "/", this.#index);
    const next = this.#index + 1;
    const parent = this.#ensureDir(parentOf(p), next);
    const name = nameOf(p);
    const old = parent.children?.get(name);
    let prevNode: NodeJson | undefined;
    if (old !== undefined) {
      if (!replace) throw new V2Error(V2Code.NodeExist, p, this.#index);
      if (old.children !== undefined) throw new V2Error(V2Code.NotFile, p, this.#index);
      prevNode = repr(old, false, false, this.#now());
      this.#ttlOut(old);
    }
    const n = newNode(p, parent, dir, dir ? "" : value, next, expireNs < MIN_EXPIRE_NS ? 0n : expireNs);
    this.#setChild(parent, name, n);
    if (n.expireNs !== 0n) this.#ttlIn(n);
    this.#dirty.add(p);
    this.#index = next;
    const node = this.#eventNode(n, next, dir ? { dir: true } : { value });
    return prevNode === undefined ? { action, node, etcdIndex: next } : { action, node, prevNode, etcdIndex: next };
  }

  /** The directory at `p`, creating missing ones (at index `next`); a file on the way is an error (nothing made). */
  #ensureDir(p: string, next: number): V2Node {
    let n = this.#root;
    const segs = p.split("/").filter((s) => s !== "");
    let at = 0;
    for (; at < segs.length; at++) {
      const c = n.children?.get(segs[at] ?? "");
      if (c === undefined) break;
      if (c.children === undefined) throw new V2Error(V2Code.NotDir, c.path, this.#index);
      n = c;
    }
    for (; at < segs.length; at++) {
      const path = n.path === "/" ? `/${segs[at]}` : `${n.path}/${segs[at]}`;
      const c = newNode(path, n, true, "", next, 0n);
      this.#setChild(n, segs[at] ?? "", c);
      this.#dirty.add(path);
      n = c;
    }
    return n;
  }

  #setTtl(n: V2Node, expireNs: bigint): void {
    this.#undo?.node(n);
    n.expireNs = expireNs;
    if (expireNs === 0n) this.#ttlOut(n);
    else this.#ttlIn(n);
  }

  #ttlIn(n: V2Node): void {
    this.#undo?.ttl(n, this.#ttl.has(n));
    this.#ttl.add(n);
  }

  #ttlOut(n: V2Node): void {
    this.#undo?.ttl(n, this.#ttl.has(n));
    this.#ttl.delete(n);
  }

  #setChild(parent: V2Node, name: string, n: V2Node): void {
    if (parent.children === undefined) return;
    this.#undo?.children(parent.children);
    parent.children.set(name, n);
  }

  /** A node as a write's event shows it: key, value or dir, expiry, indexes. */
  #eventNode(n: V2Node, modifiedIndex: number, body: { value: string } | { dir: true }): NodeJson {
    const j: NodeJson = { key: n.path, ...body };
    if (n.expireNs !== 0n) {
      j.expiration = formatNs(n.expireNs);
      const ttl = ttlOf(n.expireNs, this.#now());
      if (ttl !== 0) j.ttl = ttl;
    }
    j.modifiedIndex = modifiedIndex;
    j.createdIndex = n.createdIndex;
    return j;
  }

  #removeWithEvent(n: V2Node, action: "delete" | "compareAndDelete" | "expire"): V2Event {
    const next = this.#index + 1;
    const prevNode = repr(n, false, false, this.#now());
    const node: NodeJson = {
      key: n.path,
      ...(n.children !== undefined && action !== "compareAndDelete" ? { dir: true } : {}),
      modifiedIndex: next,
      createdIndex: n.createdIndex,
    };
    const removed: string[] = [];
    this.#detach(n, removed);
    this.#index = next;
    const e: V2Event = { action, node, prevNode, etcdIndex: next };
    this.#record(e);
    this.#notify(e, removed);
    return e;
  }

  #detach(n: V2Node, removed: string[]): void {
    for (const c of n.children?.values() ?? []) this.#detach(c, removed);
    const siblings = n.parent?.children;
    if (siblings !== undefined) {
      this.#undo?.children(siblings);
      siblings.delete(nameOf(n.path));
    }
    this.#ttlOut(n);
    this.#dirty.add(n.path);
    removed.push(n.path);
  }
}

function recordOf(n: V2Node): NodeRecord {
  return {
    dir: n.children !== undefined,
    value: n.value,
    createdIndex: n.createdIndex,
    modifiedIndex: n.modifiedIndex,
    expireNs: n.expireNs,
  };
}
