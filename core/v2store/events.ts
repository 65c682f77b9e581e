// v2 events, the history of the last 1,000 of them (a watch with a waitIndex is answered from it), and the
// watchers waiting for the next matching event. Matching follows etcd: a watcher sees events on its key, under it
// when recursive, and the deletion or expiry of a directory that holds its key; hidden keys ("_" names) below a
// watched directory are not reported.
import { V2Code, V2Error } from "./errors.js";
import type { NodeJson } from "./node.js";

export type V2Action =
  | "get"
  | "create"
  | "set"
  | "update"
  | "delete"
  | "compareAndSwap"
  | "compareAndDelete"
  | "expire";

export interface V2Event {
  readonly action: V2Action;
  readonly node: NodeJson;
  readonly prevNode?: NodeJson;
  /** A TTL refresh: recorded in history, never reported to watchers. */
  readonly refresh?: boolean;
  /** The store index after the event (X-Etcd-Index); not part of the JSON. */
  etcdIndex: number;
}

export function eventIndex(e: V2Event): number {
  return e.node.modifiedIndex ?? 0;
}

/** Created (HTTP 201): a create, or a set of a key that did not exist. */
export function isCreated(e: V2Event): boolean {
  return e.action === "create" || (e.action === "set" && e.prevNode === undefined);
}

/** The event as etcd writes it: action, node, prevNode (etcd's copy for the answer drops the refresh mark). */
export function eventJson(e: V2Event): Record<string, unknown> {
  return { action: e.action, node: e.node, ...(e.prevNode !== undefined ? { prevNode: e.prevNode } : {}) };
}

export const HISTORY_CAPACITY = 1000;

export class EventHistory {
  readonly #events: V2Event[] = [];
  readonly #capacity: number;

  constructor(capacity = HISTORY_CAPACITY) {
    this.#capacity = capacity;
  }

  /** Records `e`; returns the event that fell out of the history, if any. */
  add(e: V2Event): V2Event | undefined {
    this.#events.push(e);
    return this.#events.length > this.#capacity ? this.#events.shift() : undefined;
  }

  /** Takes back the newest add, which pushed `dropped` (if anything) out of the history. */
  undoAdd(dropped: V2Event | undefined): void {
    this.#events.pop();
    if (dropped !== undefined) this.#events.unshift(dropped);
  }

  clear(): void {
    this.#events.length = 0;
  }

  get startIndex(): number {
    return this.#events[0] === undefined ? 0 : eventIndex(this.#events[0]);
  }

  /** The first event at or after `index` that concerns `key`; a 401 error when `index` left the history. */
  scan(key: string, recursive: boolean, index: number): V2Event | undefined {
    const start = this.startIndex;
    if (index < start)
      throw new V2Error(V2Code.EventIndexCleared, `the requested history has been cleared [${start}/${index}]`, 0);
    for (const e of this.#events) {
      if (eventIndex(e) < index || e.refresh === true) continue;
      if (historyMatches(e, key, recursive)) return e;
    }
    return undefined;
  }
}

function historyMatches(e: V2Event, key: string, recursive: boolean): boolean {
  const k = e.node.key ?? "/";
  if (k === key) return true;
  if (recursive && k.startsWith(key.endsWith("/") ? key : `${key}/`)) return true;
  const prev = e.prevNode;
  return (e.action === "delete" || e.action === "expire") && prev?.dir === true && key.startsWith(prev.key ?? "/");
}

export interface V2Watcher {
  readonly key: string;
  readonly recursive: boolean;
  readonly stream: boolean;
  readonly sinceIndex: number;
  /** The store index when the watch began (X-Etcd-Index of its response). */
  readonly startIndex: number;
  /** Called for each matching event; a one-shot watcher is removed after the first. */
  readonly onEvent: (e: V2Event) => void;
}

/** Keyed by watched path, as etcd's hub is. */
export class WatcherHub {
  readonly #byPath = new Map<string, Set<V2Watcher>>();
  count = 0;

  add(w: V2Watcher): () => void {
    let set = this.#byPath.get(w.key);
    if (set === undefined) this.#byPath.set(w.key, (set = new Set()));
    set.add(w);
    this.count++;
    return () => this.#remove(w);
  }

  #remove(w: V2Watcher): void {
    const set = this.#byPath.get(w.key);
    if (set === undefined || !set.delete(w)) return;
    this.count--;
    if (set.size === 0) this.#byPath.delete(w.key);
  }

  /** An event at its key: watchers of that key and of every directory above it; `removed` paths were deleted. */
  notify(e: V2Event, removed: readonly string[]): void {
    for (const p of removed) this.#notifyAt(e, p, true);
    const key = e.node.key ?? "/";
    let at = "/";
    this.#notifyAt(e, at, false);
    for (const seg of key.split("/")) {
      if (seg === "") continue;
      at = at === "/" ? `/${seg}` : `${at}/${seg}`;
      this.#notifyAt(e, at, false);
    }
  }

  #notifyAt(e: V2Event, path: string, deleted: boolean): void {
    const set = this.#byPath.get(path);
    if (set === undefined) return;
    const key = e.node.key ?? "/";
    const original = key === path;
    if (!original && hiddenBelow(path, key)) return;
    for (const w of [...set]) {
      if (!(w.recursive || original || deleted) || eventIndex(e) < w.sinceIndex) continue;
      if (!w.stream) this.#remove(w);
      try {
        w.onEvent(e);
      } catch {
        // A watcher's consumer failing (its connection gone) must not fail the write being applied.
        this.#remove(w);
      }
    }
  }
}

/** Whether `key` is hidden as seen from the watched `path`: a "_" name below it. */
function hiddenBelow(path: string, key: string): boolean {
  if (path.length > key.length) return false;
  return `/${key.slice(path.length)}`.split("/").some((seg) => seg.startsWith("_"));
}
