// Proves etcd-ts answers hostile or edge-case requests as real etcd 3.4 does, one server of each side by side on
// default flags, compared through the TS client: values at and past the default 1.5 MiB request limit and gRPC's
// receive limit, a 100,000-key DeleteRange, 128- and 129-op txns, txns of large puts over the limit, compaction at,
// before and past the current revision, 10,000 watches on one Watch stream, and ranges with limit and revision edge
// values. Every outcome is "ok" or the gRPC status plus etcd's error text, and etcd-ts still serves afterwards.
// Both draw the "too large" line at the same byte: where etcd's protobuf proposal passes the limit.
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as pb from "../../core/api/proto/types.js";
import { ClientCallError, EtcdClient, type RangeOptions } from "../../core/client/index.js";
import { EtcdError, GrpcStatus } from "../../core/errors.js";
import { haveEtcd, startServer, type RunningServer } from "./processes.js";

const KINDS = ["etcd", "etcd-ts"] as const;
type Kind = (typeof KINDS)[number];

/** etcd's default --max-request-bytes; gRPC's receive limit is this plus 512 KiB. */
const LIMIT = 1.5 * 1024 * 1024;
const GRPC_LIMIT = LIMIT + 512 * 1024;
const TOO_LARGE = "INVALID_ARGUMENT: etcdserver: request is too large";
const COMPACTED = "OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted";
const FUTURE = "OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision";

/** A key past 127 bytes, whose length takes two bytes of protobuf: etcd's framing then differs from etcd-ts's own. */
const LINE_KEY = "l".repeat(200);

const STATUS_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** grpc-go and grpc-js word the receive-limit refusal slightly differently; the numbers must agree. */
function sameWording(message: string): string {
  return message.replace(/^grpc: received/, "Received").replace(/ vs\. /, " vs ");
}

function describeError(err: unknown): string {
  if (err instanceof EtcdError) return `${STATUS_NAMES.get(err.grpcStatus)}: ${err.message}`;
  if (err instanceof ClientCallError) return `${STATUS_NAMES.get(err.grpcStatus)}: ${sameWording(err.reason)}`;
  return `thrown: ${String(err)}`;
}

/** "ok", or what the call returned when that is a string (a summary of a read), or the error's status and text. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    const result = await call();
    return typeof result === "string" ? result : "ok";
  } catch (err) {
    return describeError(err);
  }
}

function varintBytes(n: bigint): number {
  let bytes = 1;
  for (let v = n >> 7n; v > 0n; v >>= 7n) bytes++;
  return bytes;
}

/**
 * The largest value etcd 3.4 accepts for a put of a `keyBytes`-byte key: it refuses when its protobuf
 * InternalRaftRequest (a header holding the request id, then the PutRequest) is longer than the limit. The id's top
 * 16 bits are the member id's low 16 bits and its low 48 bits a millisecond clock and counter.
 */
function etcdLargestValue(memberId: bigint, keyBytes: number): number {
  const id = ((memberId & 0xffffn) << 48n) | ((BigInt(Date.now()) & ((1n << 40n) - 1n)) << 8n);
  const valueLen = varintBytes(BigInt(LIMIT));
  const put = 1 + varintBytes(BigInt(keyBytes)) + keyBytes + 1 + valueLen; // plus the value itself
  const framing = 2 + 1 + 1 + varintBytes(id) + 1 + valueLen + put; // header, then the put field around it
  return LIMIT - framing;
}

function keys(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(6, "0")}`);
}

describe.runIf(haveEtcd())("bad input, etcd-ts against real etcd 3.4 on default flags", () => {
  const servers = new Map<Kind, RunningServer>();
  const clients = new Map<Kind, EtcdClient>();
  beforeAll(async () => {
    for (const kind of KINDS) {
      const server = await startServer(kind);
      servers.set(kind, server);
      clients.set(kind, new EtcdClient({ endpoints: [server.endpoint], callTimeoutMs: 60_000 }));
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of clients.values()) c.close();
    for (const s of servers.values()) await s.stop();
  });

  const client = (kind: Kind): EtcdClient => {
    const c = clients.get(kind);
    if (c === undefined) throw new Error(`${kind} did not start`);
    return c;
  };

  /** Runs the same request on both servers, one after the other, and returns both outcomes. */
  async function both(call: (c: EtcdClient) => Promise<unknown>): Promise<Record<Kind, string>> {
    return { etcd: await outcome(() => call(client("etcd"))), "etcd-ts": await outcome(() => call(client("etcd-ts"))) };
  }

  const value = (n: number): Buffer => Buffer.alloc(n, "v");

  it("values around the request limit and gRPC's receive limit get etcd's answers", async () => {
    const cases: [number, string][] = [
      [LIMIT - 64, "ok"],
      [LIMIT, TOO_LARGE],
      [LIMIT + 1, TOO_LARGE],
      [GRPC_LIMIT - 64, TOO_LARGE],
      // The put request is the value plus 10 bytes of protobuf: key "big" with its tag and length, the value's.
      [GRPC_LIMIT, `RESOURCE_EXHAUSTED: Received message larger than max (${GRPC_LIMIT + 10} vs ${GRPC_LIMIT})`],
    ];
    for (const [size, expected] of cases) {
      const got = await both((c) => c.put("big", value(size)));
      expect(got, `value of ${size} bytes`).toEqual({ etcd: expected, "etcd-ts": expected });
    }
    const stored = await both(async (c) => {
      const r = await c.get("big");
      if (r.kvs[0]?.value.length !== LIMIT - 64) throw new Error(`stored ${r.kvs[0]?.value.length} bytes`);
    });
    expect(stored).toEqual({ etcd: "ok", "etcd-ts": "ok" });
  });

  /** Bisects the largest value `kind` accepts for a put of `key` (key and value within 64 bytes of the limit). */
  async function largestValue(kind: Kind, key: string): Promise<number> {
    let ok = LIMIT - key.length - 64;
    let refused = LIMIT - key.length;
    while (refused - ok > 1) {
      const mid = (ok + refused) >> 1;
      const got = await outcome(() => client(kind).put(key, value(mid)));
      if (got === "ok") ok = mid;
      else if (got === TOO_LARGE) refused = mid;
      else throw new Error(`${kind}: value of ${mid} bytes: ${got}`);
    }
    return ok;
  }

  it("real etcd draws the line where its encoded proposal passes the limit", async () => {
    const memberId = (await client("etcd").status()).header.memberId;
    expect(await largestValue("etcd", LINE_KEY)).toBe(etcdLargestValue(memberId, LINE_KEY.length));
  }, 60_000);

  it("etcd-ts draws the line at the same byte as etcd would for its member id", async () => {
    const memberId = (await client("etcd-ts").status()).header.memberId;
    expect(await largestValue("etcd-ts", LINE_KEY)).toBe(etcdLargestValue(memberId, LINE_KEY.length));
  }, 60_000);

  it("a DeleteRange of 100,000 keys deletes them all and reports the count", async () => {
    const all = keys("del/", 100_000);
    for (const kind of KINDS) {
      const batches = Array.from({ length: Math.ceil(all.length / 128) }, (_, i) => all.slice(i * 128, i * 128 + 128));
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let b = batches[next++]; b !== undefined; b = batches[next++])
          await client(kind).txn({ compare: [], success: b.map((key) => ({ put: { key, value: "v" } })) });
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    }
    const counted = await both(async (c) => `count ${(await c.get("del/", { prefix: true, countOnly: true })).count}`);
    expect(counted).toEqual({ etcd: "count 100000", "etcd-ts": "count 100000" });
    const deleted = await both(async (c) => {
      const r = await c.deleteRange("del/", { prefix: true });
      const left = (await c.get("del/", { prefix: true, countOnly: true })).count;
      return `deleted ${r.deleted}, ${left} left`;
    });
    expect(deleted).toEqual({ etcd: "deleted 100000, 0 left", "etcd-ts": "deleted 100000, 0 left" });
  }, 120_000);

  it("a txn of 128 ops passes and one of 129 is refused, nothing of it written", async () => {
    const txn = (n: number) => (c: EtcdClient) =>
      c.txn({ compare: [], success: keys(`ops${n}/`, n).map((key) => ({ put: { key, value: "v" } })) });
    expect(await both(txn(128))).toEqual({ etcd: "ok", "etcd-ts": "ok" });
    const refused = "INVALID_ARGUMENT: etcdserver: too many operations in txn request";
    expect(await both(txn(129))).toEqual({ etcd: refused, "etcd-ts": refused });
    // The same bound holds for the failure branch, and for deletes as well as puts.
    const failing = (c: EtcdClient) =>
      c.txn({
        compare: [{ key: "absent", target: "VERSION", result: "GREATER", value: 0n }],
        success: [],
        failure: keys("opsdel/", 129).map((key) => ({ delete: { key } })),
      });
    expect(await both(failing)).toEqual({ etcd: refused, "etcd-ts": refused });
    const written = await both(async (c) => {
      const counts = [128, 129].map((n) => c.get(`ops${n}/`, { prefix: true, countOnly: true }));
      const [n128, n129] = await Promise.all(counts);
      if (n128?.count !== 128n || n129?.count !== 0n) throw new Error(`${n128?.count} and ${n129?.count} written`);
    });
    expect(written).toEqual({ etcd: "ok", "etcd-ts": "ok" });
  });

  it("a txn of large puts over the request limit is refused as too large", async () => {
    const puts = (n: number, bytes: number) => (c: EtcdClient) =>
      c.txn({ compare: [], success: keys("bigtxn/", n).map((key) => ({ put: { key, value: value(bytes) } })) });
    // Three puts of 600 KiB: each within the limit, together over it but under gRPC's receive limit.
    expect(await both(puts(3, 600 * 1024))).toEqual({ etcd: TOO_LARGE, "etcd-ts": TOO_LARGE });
    // Two of 700 KiB fit.
    expect(await both(puts(2, 700 * 1024))).toEqual({ etcd: "ok", "etcd-ts": "ok" });
    // Four puts of 1 MiB never reach etcd's check: gRPC refuses the message first.
    const fourMiB = await both(puts(4, 1024 * 1024));
    expect(fourMiB["etcd-ts"]).toBe(fourMiB.etcd);
    expect(fourMiB.etcd).toMatch(/^RESOURCE_EXHAUSTED: Received message larger than max \(\d+ vs 2097152\)$/);
  });

  /** 128 puts of `bytes` each under 9-byte keys: a txn as large as etcd allows when `bytes` is near 12,267. */
  const wideTxn = (bytes: number) => (c: EtcdClient) =>
    c.txn({
      compare: [],
      success: Array.from({ length: 128 }, (_, i) => ({
        put: { key: `wide/${String(i).padStart(4, "0")}`, value: value(bytes) },
      })),
    });

  it("real etcd takes a 128-op txn whose protobuf proposal is just under the limit", async () => {
    expect(await outcome(() => wideTxn(12_240)(client("etcd")))).toBe("ok");
    expect(await outcome(() => wideTxn(12_300)(client("etcd")))).toBe(TOO_LARGE);
  });

  it("etcd-ts takes the same 128-op txn and refuses the same larger one", async () => {
    expect(await outcome(() => wideTxn(12_240)(client("etcd-ts")))).toBe("ok");
    expect(await outcome(() => wideTxn(12_300)(client("etcd-ts")))).toBe(TOO_LARGE);
  });

  it("compaction at the current revision passes; again, before it, past it and reads below it fail as on etcd", async () => {
    const steps = async (c: EtcdClient): Promise<string[]> => {
      await c.put("compact/a", "1");
      const rev = (await c.put("compact/a", "2")).header.revision;
      return [
        await outcome(() => c.compact(rev)),
        await outcome(() => c.compact(rev)),
        await outcome(() => c.compact(rev - 1n)),
        await outcome(() => c.compact(rev + 1n)),
        await outcome(() => c.compact(rev + 1_000_000n)),
        await outcome(() => c.get("compact/a", { revision: rev - 1n })),
        await outcome(async () => {
          const r = await c.get("compact/a", { revision: rev });
          if (r.kvs[0]?.value.toString() !== "2") throw new Error(`read ${r.kvs[0]?.value.toString()} at ${rev}`);
        }),
      ];
    };
    const expected = ["ok", COMPACTED, COMPACTED, FUTURE, FUTURE, COMPACTED, "ok"];
    for (const kind of KINDS) expect(await steps(client(kind)), kind).toEqual(expected);
  });

  /** Opens one Watch stream, creates `n` watches on `key` over it, then puts `key` once; counts what comes back. */
  async function manyWatches(kind: Kind, key: string, n: number): Promise<Record<string, number>> {
    const c = client(kind);
    const { client: watchClient } = c.connection.service("Watch");
    const open = (
      watchClient as unknown as { Watch(): grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse__Output> }
    ).Watch;
    const stream = open.call(watchClient);
    const ids = new Set<string>();
    const eventsById = new Map<string, number>();
    let canceled = 0;
    let events = 0;
    let wake: () => void = () => undefined;
    let failure: Error | undefined;
    stream.on("data", (res: pb.WatchResponse__Output) => {
      if (res.created) ids.add(res.watch_id);
      if (res.canceled) canceled++;
      events += res.events.length;
      eventsById.set(res.watch_id, (eventsById.get(res.watch_id) ?? 0) + res.events.length);
      wake();
    });
    stream.on("error", (err: Error) => {
      failure = err;
      wake();
    });
    const until = async (done: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 90_000;
      while (!done()) {
        if (failure !== undefined) throw failure;
        if (Date.now() > deadline) throw new Error(`${kind}: ${what} not reached`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1_000);
        });
      }
    };
    try {
      for (let i = 0; i < n; i++) stream.write({ create_request: { key: Buffer.from(key) } });
      await until(() => ids.size + canceled >= n, `${n} watch responses`);
      await c.put(key, "fired");
      await until(() => events >= ids.size, `${ids.size} events`);
      const oneEach = [...eventsById.values()].filter((count) => count === 1).length;
      return { created: ids.size, canceled, events, watchesWithOneEvent: oneEach };
    } finally {
      stream.cancel();
    }
  }

  it("10,000 watches on one stream are all created and each sees the put", async () => {
    const n = 10_000;
    const results = {
      etcd: await manyWatches("etcd", "watched", n),
      "etcd-ts": await manyWatches("etcd-ts", "watched", n),
    };
    expect(results["etcd-ts"]).toEqual(results.etcd);
    expect(results.etcd).toEqual({ created: n, canceled: 0, events: n, watchesWithOneEvent: n });
  }, 240_000);

  it("ranges with limit and revision edge values answer as on etcd", async () => {
    const summary = async (c: EtcdClient, opts: RangeOptions, relativeRev?: bigint): Promise<string> => {
      const current = (await c.get("range/")).header.revision;
      const revision = relativeRev === undefined ? opts.revision : current + relativeRev;
      const r = await c.get("range/", { prefix: true, ...opts, ...(revision === undefined ? {} : { revision }) });
      const revOk = r.header.revision === current;
      return `${r.kvs.map((kv) => kv.key.toString()).join(",")} more=${r.more} count=${r.count} header@current=${revOk}`;
    };
    const probe = (opts: RangeOptions, relativeRev?: bigint) => (c: EtcdClient) => summary(c, opts, relativeRev);
    for (const kind of KINDS)
      await client(kind).txn({ compare: [], success: keys("range/", 5).map((key) => ({ put: { key, value: "v" } })) });
    const cases: [string, RangeOptions, bigint | undefined][] = [
      ["limit 0", { limit: 0 }, undefined],
      ["limit -1", { limit: -1 }, undefined],
      ["limit 2", { limit: 2 }, undefined],
      ["limit past the keyspace", { limit: 1_000 }, undefined],
      ["limit 2 count only", { limit: 2, countOnly: true }, undefined],
      ["revision 0", { revision: 0n }, undefined],
      ["revision -1", { revision: -1n }, undefined],
      ["revision current", {}, 0n],
      ["revision current+1", {}, 1n],
      ["revision current+1000", {}, 1_000n],
    ];
    for (const [name, opts, rel] of cases) {
      const got = await both(probe(opts, rel));
      expect(got["etcd-ts"], name).toBe(got.etcd);
    }
    // Spot-check the shared answers against etcd's documented behaviour.
    const all = keys("range/", 5).join(",");
    const etcdSays = async (opts: RangeOptions, rel?: bigint) => outcome(() => probe(opts, rel)(client("etcd")));
    expect(await etcdSays({ limit: -1 })).toBe(`${all} more=false count=5 header@current=true`);
    expect(await etcdSays({ limit: 2 })).toBe(`${keys("range/", 2).join(",")} more=true count=5 header@current=true`);
    expect(await etcdSays({}, 1n)).toBe(FUTURE);
  });

  it("etcd-ts still serves after all of it", async () => {
    const c = client("etcd-ts");
    await c.put("still/up", "yes");
    expect((await c.get("still/up")).kvs[0]?.value.toString()).toBe("yes");
    const status = await c.status();
    expect(status.header.revision).toBeGreaterThan(0n);
  });
});
