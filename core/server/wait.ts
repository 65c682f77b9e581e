// Request waits: a proposal registers its id and gets a promise; the apply loop triggers the id with the
// result once the entry is applied (or the server fails it: stopped, leader changed, timed out). Bounded, so a
// flood of proposals becomes a clear "too many requests" instead of unbounded memory. A deadline given at
// registration fails the id with etcd's request timeout; one timer serves every deadline (a timer and a
// promise per request were a large share of a put's garbage).
import { EtcdError } from "../errors.js";

interface Pending<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (err: Error) => void;
  /** performance.now() past which the id fails with TIMEOUT; Infinity: never. */
  readonly expires: number;
}

export class Wait<T> {
  readonly #pending = new Map<bigint, Pending<T>>();
  readonly #maxPending: number;
  /** The timer that sweeps expired ids, armed while an id with a deadline is pending. */
  #sweep: NodeJS.Timeout | undefined;

  constructor(opts: { maxPending: number }) {
    if (!Number.isInteger(opts.maxPending) || opts.maxPending < 1) {
      throw new RangeError(`Wait: maxPending must be a positive integer: got ${opts.maxPending}`);
    }
    this.#maxPending = opts.maxPending;
  }

  get size(): number {
    return this.#pending.size;
  }

  /**
   * Registers id; throws TOO_MANY_REQUESTS at the bound and on a duplicate id (an id generator bug). With
   * `timeoutMs`, the id fails with TIMEOUT once that long has passed. Deadlines are swept in registration order,
   * so callers use one timeout for all ids (a shorter one registered later waits for the earlier ones).
   */
  register(id: bigint, timeoutMs?: number): Promise<T> {
    if (this.#pending.has(id)) throw new Error(`Wait: duplicate request id ${id}`);
    if (this.#pending.size >= this.#maxPending)
      throw new EtcdError("TOO_MANY_REQUESTS", `pending=${this.#pending.size}`);
    const expires = timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs;
    if (timeoutMs !== undefined && this.#sweep === undefined) this.#arm(timeoutMs);
    return new Promise<T>((resolve, reject) => this.#pending.set(id, { resolve, reject, expires }));
  }

  #arm(ms: number): void {
    this.#sweep = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(ms)));
    this.#sweep.unref();
  }

  /** Fails every id past its deadline (oldest first) and re-arms for the next deadline. */
  #expire(): void {
    this.#sweep = undefined;
    const now = performance.now();
    for (const [id, p] of this.#pending) {
      if (p.expires === Number.POSITIVE_INFINITY) continue;
      if (p.expires > now) {
        this.#arm(p.expires - now);
        return;
      }
      this.#pending.delete(id);
      p.reject(new EtcdError("TIMEOUT", `proposal ${id}`));
    }
  }

  isRegistered(id: bigint): boolean {
    return this.#pending.has(id);
  }

  /** Resolves id's promise; returns false when nobody waits (e.g. an entry proposed by another member). */
  trigger(id: bigint, value: T): boolean {
    const p = this.#pending.get(id);
    if (p === undefined) return false;
    this.#pending.delete(id);
    p.resolve(value);
    return true;
  }

  fail(id: bigint, err: Error): boolean {
    const p = this.#pending.get(id);
    if (p === undefined) return false;
    this.#pending.delete(id);
    p.reject(err);
    return true;
  }

  failAll(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweep = undefined;
    for (const p of all) p.reject(err);
  }
}
