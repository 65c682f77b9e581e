// Proves a v2 write that fails while it is persisted (anything but the store's own refusal) is taken back in memory
// as it is on disk: with failures injected at random writes of the backend transaction, the in-memory tree, index
// and history always equal what a reload from the backend gives, watchers never see a taken-back event, and a write
// whose request failed after the store's part (never kept) is taken back before the next one. End to end, v2 keys
// longer than the backend's key limit (3,000 and 100,000 bytes) are written, deleted and kept across a restart.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import type { Entry, RangeSpan, WriteView } from "../../core/backend/read_view.js";
import { EtcdServer, type ServerConfig } from "../../core/server/etcd_server.js";
import { V2_BUCKET, V2Keys } from "../../core/server/v2_keys.js";
import type { V2Event, V2Request } from "../../core/v2store/index.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/**
 * A backend bucket map with a transaction per request: writes go to a pending copy that is kept only when the
 * request's run() returns, as the real backend's per-request rollback does. `failAt` makes the n-th write throw.
 */
class FakeBackend {
  readonly data = new Map<string, Map<string, Uint8Array>>();
  failAt = 0;

  view(pending: Map<string, Map<string, Uint8Array>>): WriteView {
    let writes = 0;
    const bucket = (b: string): Map<string, Uint8Array> => {
      let m = pending.get(b);
      if (m === undefined) pending.set(b, (m = new Map()));
      return m;
    };
    const maybeFail = (): void => {
      if (++writes === this.failAt) throw new Error("injected failure while persisting");
    };
    return {
      get: (b, key) => bucket(b).get(hex(key)),
      range: (b: string, span: RangeSpan): Iterable<Entry> => {
        const from = span.start === undefined ? undefined : hex(span.start);
        const to = span.end === undefined ? undefined : hex(span.end);
        return [...bucket(b)]
          .filter(([k]) => (from === undefined || k >= from) && (to === undefined || k < to))
          .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
          .map(([k, value]) => ({ key: Buffer.from(k, "hex"), value }));
      },
      put: (b, key, value) => {
        maybeFail();
        bucket(b).set(hex(key), value);
      },
      del: (b, key) => {
        maybeFail();
        bucket(b).delete(hex(key));
      },
    };
  }

  /** Runs one request's effect; keeps its writes only when it returns. */
  apply(v2: V2Keys, req: V2Request): { ok: boolean; afterApply?: () => void } {
    const pending = new Map([...this.data].map(([b, m]) => [b, new Map(m)]));
    try {
      const out = v2.effect(req).run(this.view(pending));
      for (const [b, m] of pending) this.data.set(b, m);
      return { ok: true, ...(out.afterApply !== undefined ? { afterApply: out.afterApply } : {}) };
    } catch {
      return { ok: false };
    }
  }

  reload(): V2Keys {
    const fresh = new V2Keys();
    fresh.load(this.view(new Map([...this.data].map(([b, m]) => [b, new Map(m)]))));
    return fresh;
  }
}

/** What a v2 store holds that a reload must give back: the tree, the index and the history of events. */
function state(v2: V2Keys): unknown {
  const s = v2.store;
  const history: V2Event[] = [];
  for (let i = Math.max(1, s.index - 999); i <= s.index; i++) {
    const w = s.watch("/", true, false, i, () => undefined);
    w.cancel();
    if (w.event !== undefined) history.push(w.event);
  }
  return { index: s.index, tree: s.get("/", true, true).node, history: history.map((e) => ({ ...e, etcdIndex: 0 })) };
}

const FAR = (BigInt(Date.UTC(2100, 0, 1)) * 1_000_000n) as bigint;
const path = fc.constantFrom("/a", "/a/b", "/a/c", "/d", "/d/e/f", "/g");
const request: fc.Arbitrary<V2Request> = fc.oneof(
  fc.record({ method: fc.constant("PUT" as const), path, value: fc.constantFrom("1", "2") }),
  fc.record({ method: fc.constant("PUT" as const), path, value: fc.constant("t"), expireNs: fc.constant(FAR) }),
  fc.record({ method: fc.constant("PUT" as const), path, dir: fc.constant(true) }),
  fc.record({ method: fc.constant("POST" as const), path, value: fc.constant("q") }),
  fc.record({ method: fc.constant("DELETE" as const), path, recursive: fc.constant(true) }),
  fc.record({ method: fc.constant("PUT" as const), path, value: fc.constant("3"), prevValue: fc.constant("1") }),
  fc.record({ method: fc.constant("SYNC" as const), path: fc.constant("/"), timeNs: fc.constant(FAR + 1n) }),
);

describe("a v2 write that fails while persisted", () => {
  it("leaves memory equal to a reload of the backend, whatever write of the transaction fails", () => {
    // A node's ttl is counted from the clock when it is read: the two states compared must see the same second.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.UTC(2026, 0, 1) });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(request, fc.integer({ min: 0, max: 6 })), { minLength: 1, maxLength: 25 }),
        (steps) => {
          const backend = new FakeBackend();
          const v2 = new V2Keys();
          for (const [req, failAt] of steps) {
            backend.failAt = failAt;
            backend.apply(v2, req).afterApply?.();
            expect(state(v2)).toEqual(state(backend.reload()));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never shows watchers a taken-back event, and the next write goes on from the old index", () => {
    const backend = new FakeBackend();
    const v2 = new V2Keys();
    backend.apply(v2, { method: "PUT", path: "/k", value: "1" }).afterApply?.();
    const seen: V2Event[] = [];
    const w = v2.store.watch("/k", false, true, 0, (e) => seen.push(e));
    backend.failAt = 1;
    expect(backend.apply(v2, { method: "PUT", path: "/k", value: "2" }).ok).toBe(false);
    expect([seen.length, v2.store.index, v2.store.get("/k", false, false).node.value]).toEqual([0, 1, "1"]);
    expect(v2.store.stats.setsSuccess).toBe(1);
    backend.failAt = 0;
    backend.apply(v2, { method: "PUT", path: "/k", value: "3" }).afterApply?.();
    expect(seen.map((e) => [e.node.value, e.node.modifiedIndex])).toEqual([["3", 2]]);
    w.cancel();
  });

  it("takes back a write whose request failed after the store's part, before the next write", () => {
    const backend = new FakeBackend();
    const v2 = new V2Keys();
    const seen: V2Event[] = [];
    v2.store.watch("/", true, true, 0, (e) => seen.push(e));
    // run() returns, but the request fails later: the backend drops its writes and afterApply never runs.
    v2.effect({ method: "PUT", path: "/lost/x", value: "1" }).run(backend.view(new Map()));
    expect(v2.store.index).toBe(1);
    backend.apply(v2, { method: "PUT", path: "/kept", value: "2" }).afterApply?.();
    expect(state(v2)).toEqual(state(backend.reload()));
    expect(v2.store.index).toBe(1);
    expect(seen.map((e) => e.node.key)).toEqual(["/kept"]);
  });
});

describe("v2 keys past the backend's key limit", () => {
  const dirs: string[] = [];
  const servers: EtcdServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const config = (dataDir: string): ServerConfig => ({
    name: "n1",
    dataDir,
    memberId: 0x3f87d1e9930d82d9n,
    clusterId: 0xc053a5fbc1c5ad1en,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
  });

  it("is written, read, kept across a restart and deleted as on etcd, under a hash of it on disk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-v2-long-"));
    dirs.push(dir);
    const start = async (): Promise<EtcdServer> => {
      const s = await EtcdServer.start(config(dir));
      servers.push(s);
      await s.whenLeader();
      return s;
    };
    const s = await start();
    const long = `/dir/${"k".repeat(3000)}`;
    const longer = `/dir/${"k".repeat(100_000)}`;
    for (const [path, value] of [
      [long, "a"],
      [longer, "b"],
      ["/dir/short", "c"],
    ] as const)
      expect(await s.v2Write({ method: "PUT", path, value })).toMatchObject({ event: { action: "set" } });
    expect(await s.v2Write({ method: "DELETE", path: longer })).toMatchObject({ event: { action: "delete" } });
    const before = { index: s.v2.store.index, tree: s.v2.store.get("/", true, true).node };
    expect(before.index).toBe(4);
    await s.stop();
    servers.splice(servers.indexOf(s), 1);
    const again = await start();
    expect({ index: again.v2.store.index, tree: again.v2.store.get("/", true, true).node }).toEqual(before);
    expect(again.v2.store.get(long, false, false).node.value).toBe("a");
    expect(() => again.v2.store.get(longer, false, false)).toThrow(/Key not found/);
    const keyBytes = again.kv.backend.readNow((v) => [...v.range(V2_BUCKET, {})].map((e) => e.key.length));
    expect(Math.max(...keyBytes)).toBeLessThanOrEqual(1024);
  });
});
