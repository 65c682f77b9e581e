// Request waits: a proposal registers its id and gets a promise; the apply loop triggers the id with the
// result once the entry is applied (or the server fails it: stopped, leader changed, timed out). Bounded, so a
// flood of proposals becomes a clear "too many requests" instead of unbounded memory.
import { EtcdError } from "../errors.js";

interface Pending<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (err: Error) => void;
}

export class Wait<T> {
  readonly #pending = new Map<bigint, Pending<T>>();
  readonly #maxPending: number;

  constructor(opts: { maxPending: number }) {
    if (!Number.isInteger(opts.maxPending) || opts.maxPending < 1) {
      throw new RangeError(`Wait: maxPending must be a positive integer: got ${opts.maxPending}`);
    }
    this.#maxPending = opts.maxPending;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Registers id; throws TOO_MANY_REQUESTS at the bound and on a duplicate id (an id generator bug). */
  register(id: bigint): Promise<T> {
    if (this.#pending.has(id)) throw new Error(`Wait: duplicate request id ${id}`);
    if (this.#pending.size >= this.#maxPending)
      throw new EtcdError("TOO_MANY_REQUESTS", `pending=${this.#pending.size}`);
    return new Promise<T>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
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
    for (const p of all) p.reject(err);
  }
}
