// The store's history rebuilt from a linearization: every key's changes in revision order, so the state at any
// revision can be read back (serializable reads, watch prev_kv, the final state).
import type { Kv } from "./history.js";
import type { KvEvent } from "./kv_model.js";

export class Timeline {
  private readonly byKey = new Map<string, KvEvent[]>();
  private readonly byRev = new Map<number, KvEvent[]>();
  readonly lastRev: number;

  constructor(events: readonly KvEvent[]) {
    let last = 1;
    for (const e of events) {
      push(this.byKey, e.key, e);
      push(this.byRev, e.rev, e);
      last = Math.max(last, e.rev);
    }
    this.lastRev = last;
  }

  /** lastEvent: key's last change at or before rev (binary search: the list is in revision order). */
  private lastEvent(key: string, rev: number): KvEvent | undefined {
    const list = this.byKey.get(key) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.rev <= rev) lo = mid + 1;
      else hi = mid;
    }
    return list[lo - 1];
  }

  /** kvAt is key's value at revision rev (undefined: absent). */
  kvAt(key: string, rev: number): Kv | undefined {
    const found = this.lastEvent(key, rev);
    return found?.type === "PUT" ? found.kv : undefined;
  }

  /** lastChange: the revision of key's last change at or before rev (0: none). */
  lastChange(key: string, rev: number): number {
    return this.lastEvent(key, rev)?.rev ?? 0;
  }

  /** rangeAt: every live key starting with prefix at revision rev, in key order. */
  rangeAt(prefix: string, rev: number): Kv[] {
    const out: Kv[] = [];
    for (const key of [...this.byKey.keys()].filter((k) => k.startsWith(prefix)).sort()) {
      const kv = this.kvAt(key, rev);
      if (kv !== undefined) out.push(kv);
    }
    return out;
  }

  /** eventsAt: the changes revision rev made. */
  eventsAt(rev: number): readonly KvEvent[] {
    return this.byRev.get(rev) ?? [];
  }

  /** eventsIn: the changes of revisions from..to (inclusive) to keys under prefix, in revision order. */
  eventsIn(prefix: string, from: number, to: number): KvEvent[] {
    const out: KvEvent[] = [];
    for (let r = Math.max(from, 2); r <= to; r++)
      for (const e of this.eventsAt(r)) if (e.key.startsWith(prefix)) out.push(e);
    return out;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}
