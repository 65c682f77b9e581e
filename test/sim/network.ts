// A virtual network between simulated members: every message is scheduled for delivery at a virtual time and
// may be dropped, delayed, duplicated (and, through random delays, reordered); partitions cut links in one or
// both directions. Time is in abstract units (the cluster uses several units per tick). Deterministic: all
// randomness comes from the SeededRng passed in, ties are broken by send order.
import type { Message, NodeId } from "../../core/raft/types.js";
import type { SeededRng } from "./rng.js";

export interface NetworkFaults {
  /** Probability a message is lost. */
  readonly dropRate: number;
  /** Probability a message is delivered twice (the copy with its own delay). */
  readonly dupRate: number;
  /** Delivery delay in time units, uniform in [minDelayUnits, maxDelayUnits]. */
  readonly minDelayUnits: number;
  readonly maxDelayUnits: number;
}

export const RELIABLE: NetworkFaults = { dropRate: 0, dupRate: 0, minDelayUnits: 1, maxDelayUnits: 1 };

/** What an interceptor may do to one message: drop it, or deliver it after `delayUnits` instead. */
export type Verdict = { readonly drop: true } | { readonly delayUnits: number } | undefined;
export type Interceptor = (msg: Message, nowUnits: number) => Verdict;

export interface Envelope {
  readonly msg: Message;
  readonly deliverAt: number;
  readonly seq: number;
}

export interface NetworkStats {
  sent: number;
  dropped: number;
  duplicated: number;
  delivered: number;
  cut: number;
}

export class VirtualNetwork {
  faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, dropped: 0, duplicated: 0, delivered: 0, cut: 0 };
  private readonly heap: Envelope[] = [];
  private seq = 0;
  /** Directed links that are cut, as "from>to". */
  private readonly blocked = new Set<string>();
  private interceptors: Interceptor[] = [];
  /** Called for every message that is lost (`cut` when a partition cut it): the cluster uses it to report
   *  unreachable peers and failed snapshots to the sender, as etcd's transport does. */
  onLost: ((msg: Message, cut: boolean) => void) | undefined;

  constructor(
    private readonly rng: SeededRng,
    faults: NetworkFaults = RELIABLE,
  ) {
    this.faults = faults;
  }

  send(msg: Message, nowUnits: number): void {
    this.stats.sent++;
    for (const hook of this.interceptors) {
      const v = hook(msg, nowUnits);
      if (v === undefined) continue;
      if ("drop" in v) {
        this.stats.dropped++;
        this.onLost?.(msg, false);
        return;
      }
      this.push(msg, nowUnits + Math.max(0, v.delayUnits));
      return;
    }
    const f = this.faults;
    if (this.rng.chance(f.dropRate)) {
      this.stats.dropped++;
      this.onLost?.(msg, false);
      return;
    }
    this.push(msg, nowUnits + this.rng.between(f.minDelayUnits, f.maxDelayUnits));
    if (this.rng.chance(f.dupRate)) {
      this.stats.duplicated++;
      this.push(msg, nowUnits + this.rng.between(f.minDelayUnits, f.maxDelayUnits));
    }
  }

  /** Removes and returns the next envelope due at or before `nowUnits`, or undefined. Cut links drop it. */
  takeDue(nowUnits: number): Envelope | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.deliverAt > nowUnits) return undefined;
      this.pop();
      if (!this.canReach(top.msg.from, top.msg.to)) {
        this.stats.cut++;
        this.onLost?.(top.msg, true);
        continue;
      }
      this.stats.delivered++;
      return top;
    }
  }

  nextDueUnits(): number | undefined {
    return this.heap[0]?.deliverAt;
  }

  inFlight(): number {
    return this.heap.length;
  }

  /** Installs a hook that sees every sent message first; returns a function that removes it. */
  intercept(hook: Interceptor): () => void {
    this.interceptors.push(hook);
    return () => {
      this.interceptors = this.interceptors.filter((h) => h !== hook);
    };
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.blocked.has(`${from}>${to}`);
  }

  /** Cuts every link between the two groups, both directions. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutOneWay(x, y);
        this.cutOneWay(y, x);
      }
    }
  }

  /** Cuts `id` off from every listed peer, both directions. */
  isolate(id: NodeId, peers: readonly NodeId[]): void {
    this.partition(
      [id],
      peers.filter((p) => p !== id),
    );
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    if (from !== to) this.blocked.add(`${from}>${to}`);
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Drops every message in flight (e.g. for a clean liveness phase). */
  clearInFlight(): void {
    this.heap.length = 0;
  }

  private push(msg: Message, deliverAt: number): void {
    const env: Envelope = { msg, deliverAt, seq: this.seq++ };
    const h = this.heap;
    h.push(env);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(env, h[parent] as Envelope)) break;
      h[i] = h[parent] as Envelope;
      i = parent;
    }
    h[i] = env;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let best = last;
      if (l < h.length && before(h[l] as Envelope, best)) {
        m = l;
        best = h[l] as Envelope;
      }
      if (r < h.length && before(h[r] as Envelope, best)) m = r;
      if (m === i) break;
      h[i] = h[m] as Envelope;
      i = m;
    }
    h[i] = last;
  }
}

function before(a: Envelope, b: Envelope): boolean {
  return a.deliverAt < b.deliverAt || (a.deliverAt === b.deliverAt && a.seq < b.seq);
}
