// The sequential model of etcd's key-value store the linearizability search steps through: a revision, the
// live keys and the leases with their attached keys. Steps mutate the state in place and hand back an undo,
// and a 64-bit Zobrist fingerprint of the state is kept up to date so the search can memoise cheaply.
import type { Kv, OpInput, OpOutput } from "./history.js";

export interface KvState {
  rev: number;
  readonly kvs: Map<string, Kv>;
  /** Lease id → attached keys. */
  readonly leases: Map<string, Set<string>>;
  fpA: number;
  fpB: number;
}

/** One change at one revision, as a watch reports it. */
export interface KvEvent {
  readonly rev: number;
  readonly type: "PUT" | "DELETE";
  readonly key: string;
  /** The new key-value (PUT) or the deleted key with mod = rev (DELETE, value ""). */
  readonly kv: Kv;
  readonly prev: Kv | undefined;
}

export type Undo = () => void;

export function initialState(): KvState {
  return { rev: 1, kvs: new Map(), leases: new Map(), fpA: 0, fpB: 0 };
}

/** fnv1a over a string with a seed: one half of the Zobrist fingerprint. */
export function fnv(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function toggle(st: KvState, token: string): void {
  st.fpA = (st.fpA ^ fnv(token, 0x1234567)) >>> 0;
  st.fpB = (st.fpB ^ fnv(token, 0x7654321)) >>> 0;
}

const kvToken = (kv: Kv): string =>
  `k${kv.key}\u0000${kv.value}\u0000${kv.mod}\u0000${kv.create}\u0000${kv.ver}\u0000${kv.lease}`;

function setKv(st: KvState, key: string, kv: Kv | undefined): void {
  const old = st.kvs.get(key);
  if (old !== undefined) {
    toggle(st, kvToken(old));
    st.leases.get(old.lease)?.delete(key);
    st.kvs.delete(key);
  }
  if (kv !== undefined) {
    toggle(st, kvToken(kv));
    st.kvs.set(key, kv);
    st.leases.get(kv.lease)?.add(key);
  }
}

export function sameKv(a: Kv | undefined, b: Kv | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.key === b.key &&
    a.value === b.value &&
    a.mod === b.mod &&
    a.create === b.create &&
    a.ver === b.ver &&
    a.lease === b.lease
  );
}

function sameKvs(a: readonly Kv[] | undefined, b: readonly Kv[]): boolean {
  return a !== undefined && a.length === b.length && a.every((kv, i) => sameKv(kv, b[i]));
}

/** A step's result: the undo, and the events it produced (for the reconstruction); undefined = inconsistent. */
export interface StepResult {
  readonly undo: Undo;
  readonly events: readonly KvEvent[];
  /** Whether the state changed (an operation of unknown outcome that changes nothing is never placed). */
  readonly changed: boolean;
}

const NOTHING: StepResult = { undo: () => undefined, events: [], changed: false };

/**
 * step applies `input` to the state and says whether `output` (undefined: unknown outcome, any answer goes) is
 * what etcd would answer there.
 */
export function step(st: KvState, input: OpInput, output: OpOutput | undefined): StepResult | undefined {
  switch (input.kind) {
    case "put":
      return putStep(st, input.key, input.value, input.lease ?? "0", output);
    case "get": {
      if (output === undefined) return NOTHING;
      const kv = st.kvs.get(input.key);
      return output.rev === st.rev && sameKvs(output.kvs, kv === undefined ? [] : [kv]) ? NOTHING : undefined;
    }
    case "range":
      return output === undefined || rangeMatches(st, input.prefix, input.limit, output) ? NOTHING : undefined;
    case "delete":
      return deleteStep(st, [input.key], output, (o) => o.deleted === (st.kvs.has(input.key) ? 1 : 0));
    case "cas": {
      const cur = st.kvs.get(input.key);
      if ((cur?.mod ?? 0) === input.expectMod) {
        if (output !== undefined && output.succeeded !== true) return undefined;
        return putStep(st, input.key, input.value, "0", output);
      }
      if (output === undefined) return NOTHING;
      return output.succeeded === false && output.rev === st.rev && sameKvs(output.kvs, cur === undefined ? [] : [cur])
        ? NOTHING
        : undefined;
    }
    case "grant":
      return grantStep(st, output);
    case "revoke": {
      const keys = st.leases.get(input.lease);
      if (keys === undefined) return output === undefined ? NOTHING : undefined;
      const del = deleteStep(st, [...keys].sort(), output, () => true);
      if (del === undefined) return undefined;
      const attached = keys;
      st.leases.delete(input.lease);
      return {
        ...del,
        changed: true,
        undo: () => {
          st.leases.set(input.lease, attached);
          del.undo();
        },
      };
    }
    case "compact":
      return output === undefined || (output.rev === st.rev && input.rev <= st.rev) ? NOTHING : undefined;
  }
}

function putStep(
  st: KvState,
  key: string,
  value: string,
  lease: string,
  output: OpOutput | undefined,
): StepResult | undefined {
  // A put naming a lease that does not exist fails in apply: no revision, no change.
  if (lease !== "0" && !st.leases.has(lease)) return output === undefined ? NOTHING : undefined;
  const rev = st.rev + 1;
  if (output !== undefined && output.rev !== rev) return undefined;
  const prev = st.kvs.get(key);
  const kv: Kv = { key, value, mod: rev, create: prev?.create ?? rev, ver: (prev?.ver ?? 0) + 1, lease };
  setKv(st, key, kv);
  st.rev = rev;
  return {
    changed: true,
    events: [{ rev, type: "PUT", key, kv, prev }],
    undo: () => {
      setKv(st, key, prev);
      st.rev = rev - 1;
    },
  };
}

function deleteStep(
  st: KvState,
  keys: readonly string[],
  output: OpOutput | undefined,
  outputOk: (o: OpOutput) => boolean,
): StepResult | undefined {
  const present = keys.filter((k) => st.kvs.has(k));
  const rev = present.length > 0 ? st.rev + 1 : st.rev;
  if (output !== undefined && (output.rev !== rev || !outputOk(output))) return undefined;
  if (present.length === 0) return NOTHING;
  const prevs = present.map((k) => st.kvs.get(k)!);
  for (const k of present) setKv(st, k, undefined);
  st.rev = rev;
  return {
    changed: true,
    events: prevs.map((p) => ({
      rev,
      type: "DELETE",
      key: p.key,
      kv: { key: p.key, value: "", mod: rev, create: 0, ver: 0, lease: "0" },
      prev: p,
    })),
    undo: () => {
      for (const p of prevs) setKv(st, p.key, p);
      st.rev = rev - 1;
    },
  };
}

function grantStep(st: KvState, output: OpOutput | undefined): StepResult | undefined {
  // A grant of unknown outcome is never placed: nobody learnt its id, so nothing can depend on it.
  if (output === undefined || output.lease === undefined) return NOTHING;
  if (output.rev !== st.rev || st.leases.has(output.lease)) return undefined;
  const id = output.lease;
  st.leases.set(id, new Set());
  toggle(st, `L${id}`);
  return {
    changed: true,
    events: [],
    undo: () => {
      st.leases.delete(id);
      toggle(st, `L${id}`);
    },
  };
}

function rangeMatches(st: KvState, prefix: string, limit: number, output: OpOutput): boolean {
  if (output.rev !== st.rev) return false;
  const all = [...st.kvs.values()]
    .filter((kv) => kv.key.startsWith(prefix))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const want = limit > 0 ? all.slice(0, limit) : all;
  return output.count === all.length && output.more === want.length < all.length && sameKvs(output.kvs, want);
}

/** revisionBump says whether an operation with this output took a revision of its own (its output.rev). */
export function claimsRevision(input: OpInput, output: OpOutput): boolean {
  switch (input.kind) {
    case "put":
      return true;
    case "cas":
      return output.succeeded === true;
    case "delete":
      return (output.deleted ?? 0) > 0;
    default:
      return false;
  }
}
