// What one v2 write changed in the store's memory, kept until the write is known to be persisted. The owner persists
// a write in the same backend transaction as its Raft entry; when that fails (anything but the store's own refusal)
// the backend takes its part back, and this takes the tree back too, so memory never holds what the backend does
// not. Each map, node and TTL membership is saved the first time the write touches it and restored as it was
// (children in their original order); history additions are undone newest first.
import type { EventHistory, V2Event } from "./events.js";
import type { V2Node } from "./node.js";

interface NodeFields {
  readonly value: string;
  readonly modifiedIndex: number;
  readonly expireNs: bigint;
}

/** The store's plain fields as they were when the write began. */
export interface StoreFields {
  readonly index: number;
  readonly stats: Readonly<Record<string, number>>;
  readonly dirty: readonly string[];
  readonly eventsAdded: readonly V2Event[];
  readonly eventsDropped: readonly number[];
}

export class WriteUndo {
  readonly fields: StoreFields;
  readonly #children = new Map<Map<string, V2Node>, [string, V2Node][]>();
  readonly #nodes = new Map<V2Node, NodeFields>();
  readonly #ttl = new Map<V2Node, boolean>();
  /** One slot per history addition: the event it pushed out of the history, if any. */
  readonly #historyAdds: (V2Event | undefined)[] = [];
  /** Watcher notifications held back until the write is kept. */
  readonly notifications: { readonly event: V2Event; readonly removed: readonly string[] }[] = [];

  constructor(fields: StoreFields) {
    this.fields = fields;
  }

  /** Before a directory's children change. */
  children(m: Map<string, V2Node>): void {
    if (!this.#children.has(m)) this.#children.set(m, [...m]);
  }

  /** Before a node's value, modified index or expiry changes. */
  node(n: V2Node): void {
    if (!this.#nodes.has(n))
      this.#nodes.set(n, { value: n.value, modifiedIndex: n.modifiedIndex, expireNs: n.expireNs });
  }

  /** Before a node enters or leaves the TTL set (`member`: whether it is in it now). */
  ttl(n: V2Node, member: boolean): void {
    if (!this.#ttl.has(n)) this.#ttl.set(n, member);
  }

  /** After an event was added to the history (and `dropped` fell out of it). */
  historyAdded(dropped: V2Event | undefined): void {
    this.#historyAdds.push(dropped);
  }

  /** Restores the tree, the TTL set and the history; the caller restores `fields`. */
  rollback(ttlSet: Set<V2Node>, history: EventHistory): void {
    for (const [m, entries] of this.#children) {
      m.clear();
      for (const [name, child] of entries) m.set(name, child);
    }
    for (const [n, f] of this.#nodes) {
      n.value = f.value;
      n.modifiedIndex = f.modifiedIndex;
      n.expireNs = f.expireNs;
    }
    for (const [n, member] of this.#ttl) {
      if (member) ttlSet.add(n);
      else ttlSet.delete(n);
    }
    for (let i = this.#historyAdds.length - 1; i >= 0; i--) history.undoAdd(this.#historyAdds[i]);
  }
}
