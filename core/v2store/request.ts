// A v2 write as it travels through Raft, and how it maps onto the store (etcd's v2 applier): PUT with prevExist
// is create or update, with prevValue/prevIndex compare-and-swap, else set; POST creates an in-order key; DELETE
// with prevValue/prevIndex is compare-and-delete; SYNC expires keys at the time the leader put in the request.
import type { V2Event } from "./events.js";
import type { V2Store } from "./store.js";

export interface V2Request {
  readonly method: "PUT" | "POST" | "DELETE" | "SYNC";
  readonly path: string;
  readonly value?: string;
  readonly dir?: boolean;
  readonly prevValue?: string;
  readonly prevIndex?: number;
  readonly prevExist?: boolean;
  readonly recursive?: boolean;
  /** Absolute expiry in nanoseconds since the epoch (from the TTL, on the proposer's clock); 0n or absent: none. */
  readonly expireNs?: bigint;
  readonly refresh?: boolean;
  /** SYNC: the leader's clock in nanoseconds since the epoch. */
  readonly timeNs?: bigint;
}

/** Applies one v2 write; throws a V2Error when the store refuses it (nothing changed then). */
export function applyV2(store: V2Store, r: V2Request): V2Event | undefined {
  const ttl = { expireNs: r.expireNs ?? 0n, refresh: r.refresh === true };
  const value = r.value ?? "";
  const prevValue = r.prevValue ?? "";
  const prevIndex = r.prevIndex ?? 0;
  const compares = prevIndex > 0 || prevValue !== "";
  switch (r.method) {
    case "SYNC":
      store.deleteExpired(r.timeNs ?? 0n);
      return undefined;
    case "POST":
      return store.create(r.path, r.dir === true, value, true, ttl);
    case "DELETE":
      return compares
        ? store.compareAndDelete(r.path, prevValue, prevIndex)
        : store.delete(r.path, r.dir === true, r.recursive === true);
    case "PUT":
      if (r.prevExist === true)
        return compares
          ? store.compareAndSwap(r.path, prevValue, prevIndex, value, ttl)
          : store.update(r.path, value, ttl);
      if (r.prevExist === false) return store.create(r.path, r.dir === true, value, false, ttl);
      return compares
        ? store.compareAndSwap(r.path, prevValue, prevIndex, value, ttl)
        : store.set(r.path, r.dir === true, value, ttl);
  }
}
