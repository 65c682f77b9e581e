// The seeded client workload: KV clients (put, linearizable and serializable get, range with limit, delete,
// txn compare-and-swap), a lease client (grant, keys attached, keepalive, revoke) and a compactor, each
// recording every call with its invoke and complete times and outcome. Two mixes: "kube" (mostly optimistic
// updates by mod_revision and reads, as kube-apiserver does) and "kv" (plain puts, gets and deletes).
import { EtcdError } from "../../core/errors.js";
import { ClientCallError, EtcdClient, type KeyValue } from "../../core/client/index.js";
import type { Kv, OpInput, OpOutput, OpRecord, HistoryRecord } from "./history.js";
import { Rng } from "./rng.js";
import { setTimeout as sleep } from "node:timers/promises";

export const MIXES = ["kube", "kv"] as const;
export type Mix = (typeof MIXES)[number];

/** The prefix every workload key starts with, and the subtrees. */
export const KEY_PREFIX = "/registry/";
const POD_PREFIX = "/registry/pods/default/";
const LEASE_KEY_PREFIX = "/registry/leases/";

type KvOpKind = "get" | "sget" | "range" | "srange" | "put" | "delete" | "cas";
const WEIGHTS: Record<Mix, Record<KvOpKind, number>> = {
  kube: { get: 25, sget: 5, range: 8, srange: 2, put: 5, delete: 5, cas: 50 },
  kv: { get: 30, sget: 5, range: 4, srange: 1, put: 35, delete: 10, cas: 15 },
};
const KEYS: Record<Mix, number> = { kube: 8, kv: 12 };

/** Errors that prove the request took no effect (refused before or during apply, or never sent). */
const DEFINITE = new Set([
  "COMPACTED",
  "FUTURE_REV",
  "LEASE_NOT_FOUND",
  "KEY_NOT_FOUND",
  "LEASE_EXIST",
  "TOO_MANY_REQUESTS",
  "EMPTY_KEY",
]);

/** Recorder stamps times (ms since the run began, monotonic) and numbers operations. */
export class Recorder {
  private readonly t0 = performance.now();
  private nextId = 0;
  /** The highest revision any answer carried (the compactor aims below it). */
  maxRev = 1;

  constructor(private readonly sink: (r: HistoryRecord) => void) {}

  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  add(r: HistoryRecord): void {
    this.sink(r);
  }

  /** call runs one operation and records it. */
  async call(client: number, input: OpInput, run: () => Promise<OpOutput>): Promise<OpOutput | undefined> {
    const id = this.nextId++;
    const invoke = this.now();
    let rec: OpRecord;
    let out: OpOutput | undefined;
    try {
      out = await run();
      this.maxRev = Math.max(this.maxRev, out.rev);
      rec = { t: "op", id, client, input, invoke, complete: this.now(), outcome: "ok", output: out };
    } catch (err) {
      const definite =
        (err instanceof EtcdError && DEFINITE.has(err.code)) || (err instanceof ClientCallError && err.notSent);
      rec = {
        t: "op",
        id,
        client,
        input,
        invoke,
        complete: this.now(),
        outcome: definite ? "failed" : "unknown",
        error: errText(err),
      };
    }
    this.sink(rec);
    return out;
  }
}

function errText(err: unknown): string {
  if (err instanceof EtcdError || err instanceof ClientCallError) return `${err.code}: ${err.message}`.slice(0, 200);
  return String(err).slice(0, 200);
}

export function kvOf(kv: KeyValue): Kv {
  return {
    key: kv.key.toString("utf8"),
    value: kv.value.toString("utf8"),
    mod: Number(kv.modRevision),
    create: Number(kv.createRevision),
    ver: Number(kv.version),
    lease: kv.lease.toString(),
  };
}

/** execute sends one operation through the client and turns the answer into the history's shape. */
export async function execute(c: EtcdClient, input: OpInput): Promise<OpOutput> {
  const m = (h: { revision: bigint; memberId: bigint }): { rev: number; member: string } => ({
    rev: Number(h.revision),
    member: h.memberId.toString(16),
  });
  switch (input.kind) {
    case "put": {
      const r = await c.put(input.key, input.value, input.lease === undefined ? {} : { lease: BigInt(input.lease) });
      return m(r.header);
    }
    case "get": {
      const r = await c.get(input.key, { serializable: input.serializable });
      return { ...m(r.header), kvs: r.kvs.map(kvOf) };
    }
    case "range": {
      const r = await c.get(input.prefix, { prefix: true, limit: input.limit, serializable: input.serializable });
      return { ...m(r.header), kvs: r.kvs.map(kvOf), count: Number(r.count), more: r.more };
    }
    case "delete": {
      const r = await c.deleteRange(input.key);
      return { ...m(r.header), deleted: Number(r.deleted) };
    }
    case "cas": {
      const r = await c.txn({
        compare: [{ key: input.key, target: "MOD", result: "EQUAL", value: BigInt(input.expectMod) }],
        success: [{ put: { key: input.key, value: input.value } }],
        failure: [{ range: { key: input.key } }],
      });
      const read = r.responses[0];
      const kvs = !r.succeeded && read !== undefined && "range" in read ? read.range.kvs.map(kvOf) : undefined;
      return { ...m(r.header), succeeded: r.succeeded, ...(kvs === undefined ? {} : { kvs }) };
    }
    case "grant": {
      const r = await c.leaseGrant(input.ttl);
      return { ...m(r.header), lease: r.id.toString() };
    }
    case "revoke":
      return m(await c.leaseRevoke(BigInt(input.lease)));
    case "compact":
      return m(await c.compact(BigInt(input.rev)));
  }
}

export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  readonly seed: number;
  readonly mix: Mix;
  readonly clients: number;
  /** Lease TTL: longer than the run, so no lease expires on its own (expiry is not in the model). */
  readonly leaseTtlSeconds: number;
  readonly compactEveryMs: number;
}

function newClient(endpoints: readonly string[], first: number): EtcdClient {
  const rotated = endpoints.map((_, i) => endpoints[(i + first) % endpoints.length]!);
  return new EtcdClient({
    endpoints: rotated,
    callTimeoutMs: 2_000,
    dialTimeoutMs: 1_000,
    keepAliveTimeMs: 2_000,
    keepAliveTimeoutMs: 1_000,
  });
}

/** runWorkload runs every client until `stop` says so, and resolves when all have finished. */
export async function runWorkload(rec: Recorder, opts: WorkloadOptions, stop: () => boolean): Promise<void> {
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < opts.clients; i++) tasks.push(kvClient(rec, opts, i, stop));
  tasks.push(leaseClient(rec, opts, opts.clients, stop), compactor(rec, opts, opts.clients + 1, stop));
  await Promise.all(tasks);
}

async function kvClient(rec: Recorder, opts: WorkloadOptions, id: number, stop: () => boolean): Promise<void> {
  const rng = Rng.derive(opts.seed, id);
  const client = newClient(opts.endpoints, id);
  const lastMod = new Map<string, number>();
  let n = 0;
  try {
    while (!stop()) {
      const key = `${POD_PREFIX}pod-${rng.int(0, KEYS[opts.mix] - 1)}`;
      const value = `c${id}-${n++}`;
      const kind = rng.weighted(WEIGHTS[opts.mix]);
      const input: OpInput =
        kind === "get" || kind === "sget"
          ? { kind: "get", key, serializable: kind === "sget" }
          : kind === "range" || kind === "srange"
            ? { kind: "range", prefix: POD_PREFIX, limit: rng.int(1, 4), serializable: kind === "srange" }
            : kind === "put"
              ? { kind: "put", key, value }
              : kind === "delete"
                ? { kind: "delete", key }
                : { kind: "cas", key, expectMod: rng.next() < 0.8 ? (lastMod.get(key) ?? 0) : 0, value };
      const out = await rec.call(id, input, () => execute(client, input));
      if (out === undefined) {
        await sleep(rng.int(10, 50));
        continue;
      }
      for (const kv of out.kvs ?? []) lastMod.set(kv.key, kv.mod);
      if (input.kind === "get" && (out.kvs ?? []).length === 0) lastMod.set(key, 0);
      if (input.kind === "put" || (input.kind === "cas" && out.succeeded === true)) lastMod.set(key, out.rev);
      if (input.kind === "delete") lastMod.set(key, 0);
    }
  } finally {
    client.close();
  }
}

async function leaseClient(rec: Recorder, opts: WorkloadOptions, id: number, stop: () => boolean): Promise<void> {
  const rng = Rng.derive(opts.seed, id);
  const client = newClient(opts.endpoints, id);
  let n = 0;
  try {
    while (!stop()) {
      const grant = await rec.call(id, { kind: "grant", ttl: opts.leaseTtlSeconds }, () =>
        execute(client, { kind: "grant", ttl: opts.leaseTtlSeconds }),
      );
      if (grant?.lease === undefined) {
        await sleep(100);
        continue;
      }
      const lease = grant.lease;
      for (let k = rng.int(1, 2); k > 0; k--) {
        const input: OpInput = {
          kind: "put",
          key: `${LEASE_KEY_PREFIX}lease-${rng.int(0, 3)}`,
          value: `l${id}-${n++}`,
          lease,
        };
        await rec.call(id, input, () => execute(client, input));
      }
      const keepAlive = client.leaseKeepAlive(BigInt(lease));
      await sleep(rng.int(200, 1500));
      keepAlive.stop();
      const revoke: OpInput = { kind: "revoke", lease };
      await rec.call(id, revoke, () => execute(client, revoke));
    }
  } finally {
    client.close();
  }
}

async function compactor(rec: Recorder, opts: WorkloadOptions, id: number, stop: () => boolean): Promise<void> {
  const rng = Rng.derive(opts.seed, id);
  const client = newClient(opts.endpoints, id);
  let last = 0;
  try {
    while (!stop()) {
      await sleep(rng.int(opts.compactEveryMs / 2, (opts.compactEveryMs * 3) / 2));
      if (stop()) break;
      const target = rec.maxRev - rng.int(5, 40);
      if (target <= last) continue;
      const input: OpInput = { kind: "compact", rev: target };
      const out = await rec.call(id, input, () => execute(client, input));
      if (out !== undefined) last = target;
    }
  } finally {
    client.close();
  }
}
