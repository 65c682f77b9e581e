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

  /** kvAt is key's value at revision rev (undefined: absent). */
  kvAt(key: string, rev: number): Kv | undefined {
    const list = this.byKey.get(key) ?? [];
    let found: KvEvent | undefined;
    for (const e of list) {
      if (e.rev > rev) break;
      found = e;
    }
    return found?.type === "PUT" ? found.kv : undefined;
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
    for (let r = Math.max(from, 2); r <= to; r++) for (const e of this.eventsAt(r)) if (e.key.startsWith(prefix)) out.push(e);
    return out;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}
