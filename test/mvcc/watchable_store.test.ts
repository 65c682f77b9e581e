// Proves the watchable store: events in revision order with filters and prev_kv; a watch from a past revision
// catches up from history and then follows live commits with no lost or duplicated event, even when its
// consumer stalls (the writer never waits); a watch from a compacted revision gets the compacted error with
// the compact revision (kept until a full consumer takes it); progress notifications only for synced watchers;
// thousands of watchers behind one consumer catch up in bounded turns that share one history read.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import {
  CATCH_UP_MAX_EVENTS,
  EventType,
  SYNC_MAX_WATCHERS,
  WatchableStore,
  type WatchResponse,
} from "../../core/mvcc/watchable_store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

let dir: string;
let kv: KvStore;
let ws: WatchableStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "watch-"));
  kv = KvStore.open(dir, { readWorkers: 0 });
  ws = new WatchableStore(kv);
});

afterEach(async () => {
  await kv.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Flattens responses to "TYPE key@rev" strings. */
function flat(resps: readonly WatchResponse[]): string[] {
  return resps.flatMap((r) =>
    r.events.map((e) => {
      const k = decodeKeyValue(e.kv);
      return `${e.type === EventType.PUT ? "PUT" : "DEL"} ${dec(k.key)}@${k.modRevision}`;
    }),
  );
}

describe("watch", () => {
  it("delivers live events of a range in order, honouring filters and prev_kv", async () => {
    const all: WatchResponse[] = [];
    const noDel: WatchResponse[] = [];
    ws.watch({ key: enc("a"), rangeEnd: enc("c"), prevKv: true, send: (r) => all.push(r) > 0 });
    ws.watch({ key: enc("a"), rangeEnd: enc("c"), noDelete: true, send: (r) => noDel.push(r) > 0 });
    await kv.put({ key: enc("a"), value: enc("1") });
    await kv.put({ key: enc("z"), value: enc("out of range") });
    await kv.put({ key: enc("b"), value: enc("2") });
    await kv.put({ key: enc("a"), value: enc("3") });
    await kv.deleteRange({ key: enc("a"), rangeEnd: enc("c") });
    expect(flat(all)).toEqual(["PUT a@2", "PUT b@4", "PUT a@5", "DEL a@6", "DEL b@6"]);
    expect(flat(noDel)).toEqual(["PUT a@2", "PUT b@4", "PUT a@5"]);
    const prevOfSecondA = all[2]?.events[0]?.prevKv;
    expect(prevOfSecondA !== undefined ? dec(decodeKeyValue(prevOfSecondA).value) : "none").toBe("1");
    expect(all[0]?.events[0]?.prevKv, "a new key has no prev_kv").toBeUndefined();
  });

  it("puts take version, create revision and lease from the index while no watcher wants prev_kv", async () => {
    const plain: WatchResponse[] = [];
    ws.watch({ key: enc("p"), send: (r) => plain.push(r) > 0 });
    await kv.put({ key: enc("p"), value: enc("1") }); // rev 2
    await kv.put({ key: enc("p"), value: enc("2") }); // rev 3
    const third = await kv.put({ key: enc("p"), value: enc("3"), prevKv: true }); // rev 4: asks for it itself
    expect(third.prevKv !== undefined ? dec(decodeKeyValue(third.prevKv).value) : "none").toBe("2");
    const last = decodeKeyValue(plain.at(-1)?.events[0]?.kv ?? new Uint8Array(0));
    expect([last.createRevision, last.modRevision, last.version, dec(last.value)]).toEqual([2, 4, 3, "3"]);
    expect(plain.flatMap((r) => r.events).every((e) => e.prevKv === undefined)).toBe(true);
    await kv.put({ key: enc("p"), value: new Uint8Array(0), ignoreValue: true }); // rev 5: keeps "3"
    const got = await kv.range({ key: enc("p") });
    const kv5 = decodeKeyValue(got.kvs[0] ?? new Uint8Array(0));
    expect([kv5.createRevision, kv5.modRevision, kv5.version, dec(kv5.value)]).toEqual([2, 5, 4, "3"]);
  });

  it("a prev_kv watcher that arrives while a write it did not see is being committed still gets prev_kv", async () => {
    await kv.put({ key: enc("q"), value: enc("old") });
    const got: WatchResponse[] = [];
    // The write runs (and reads nothing it replaces) before the watcher exists; its commit reaches the watcher.
    const writing = kv.put({ key: enc("q"), value: enc("new") });
    ws.watch({ key: enc("q"), prevKv: true, send: (r) => got.push(r) > 0 });
    await writing;
    const ev = got.flatMap((r) => r.events)[0];
    expect(ev !== undefined ? dec(decodeKeyValue(ev.kv).value) : "none").toBe("new");
    expect(ev?.prevKv !== undefined ? dec(decodeKeyValue(ev.prevKv).value) : "none").toBe("old");
  });

  it("catches up from a past revision, then follows live commits: no event lost or duplicated", async () => {
    for (let i = 0; i < 30; i++) await kv.put({ key: enc(`k${i % 4}`), value: enc(`v${i}`) });
    await kv.deleteRange({ key: enc("k1") });
    const got: WatchResponse[] = [];
    ws.watch({ key: enc("k"), rangeEnd: enc("l"), startRevision: 5, prevKv: true, send: (r) => got.push(r) > 0 });
    expect(ws.unsyncedCount).toBe(0);
    await kv.put({ key: enc("k9"), value: enc("live") });
    const revs = flat(got).map((s) => Number(s.split("@")[1]));
    const want = Array.from({ length: 33 - 5 + 1 }, (_, i) => i + 5); // puts 2..31, delete 32, live put 33
    expect(revs).toEqual(want);
    expect(flat(got)).toContain("DEL k1@32");
    const del = got.flatMap((r) => r.events).find((e) => e.type === EventType.DELETE);
    expect(
      del?.prevKv !== undefined ? dec(decodeKeyValue(del.prevKv).value) : "none",
      "history prev_kv of the delete",
    ).toBe("v29");
  });

  it("a watch from a revision past the current one gets nothing below it (a member behind the one a client left)", async () => {
    await kv.put({ key: enc("f"), value: enc("1") }); // rev 2
    const got: WatchResponse[] = [];
    ws.watch({ key: enc("f"), startRevision: 5, send: (r) => got.push(r) > 0 });
    await kv.put({ key: enc("f"), value: enc("2") }); // rev 3
    await kv.put({ key: enc("f"), value: enc("3") }); // rev 4
    await kv.put({ key: enc("f"), value: enc("4") }); // rev 5
    await kv.put({ key: enc("f"), value: enc("5") }); // rev 6
    expect(flat(got)).toEqual(["PUT f@5", "PUT f@6"]);
  });

  it("a stalled consumer never blocks writers and, after resume, receives every event exactly once", async () => {
    const got: WatchResponse[] = [];
    let open = true;
    ws.watch({ key: enc("s"), rangeEnd: enc("t"), send: (r) => open && got.push(r) > 0 });
    await kv.put({ key: enc("s1"), value: enc("x") });
    open = false; // the consumer's buffer is full
    for (let i = 0; i < CATCH_UP_MAX_EVENTS + 200; i++) await kv.put({ key: enc(`s${i % 7}`), value: enc(`${i}`) });
    expect(ws.unsyncedCount, "the watcher fell back to catch-up").toBe(1);
    expect(kv.revision).toBe(2 + CATCH_UP_MAX_EVENTS + 200);
    open = true;
    ws.resume();
    await kv.put({ key: enc("s-last"), value: enc("y") });
    const revs = flat(got).map((s) => Number(s.split("@")[1]));
    expect(revs.length).toBe(kv.revision - 1);
    expect(revs, "strictly increasing, no gap").toEqual(Array.from({ length: kv.revision - 1 }, (_, i) => i + 2));
    expect(got.length, "history came in bounded batches").toBeGreaterThan(2);
  });

  it("a watch from a compacted revision gets the compact revision and is canceled", async () => {
    for (let i = 0; i < 6; i++) await kv.put({ key: enc("c"), value: enc(`${i}`) });
    await kv.compact(5);
    const got: WatchResponse[] = [];
    ws.watch({ key: enc("c"), startRevision: 3, send: (r) => got.push(r) > 0 });
    expect(got.map((r) => [r.compactRevision, r.canceled, r.events.length])).toEqual([[5, true, 0]]);
    const fromCompact: WatchResponse[] = [];
    ws.watch({ key: enc("c"), startRevision: 5, send: (r) => fromCompact.push(r) > 0 });
    expect(flat(fromCompact)).toEqual(["PUT c@5", "PUT c@6", "PUT c@7"]);
  });

  it("progress notification: the current revision for a synced watcher, nothing for an unknown one", async () => {
    const got: WatchResponse[] = [];
    const id = ws.watch({ key: enc("p"), send: (r) => got.push(r) > 0 });
    await kv.put({ key: enc("other"), value: enc("x") });
    expect(ws.requestProgress(id)).toBe(true);
    expect(got.map((r) => [r.revision, r.events.length])).toEqual([[2, 0]]);
    expect(ws.requestProgress(999)).toBe(false);
  });

  it("a compaction cancel the consumer refuses is kept and delivered after resume", async () => {
    for (let i = 0; i < 6; i++) await kv.put({ key: enc("c"), value: enc(`${i}`) });
    await kv.compact(5);
    const got: WatchResponse[] = [];
    let open = false;
    ws.watch({ key: enc("c"), startRevision: 3, send: (r) => open && got.push(r) > 0 });
    expect([ws.watcherCount, got.length], "refused: still registered, nothing taken").toEqual([1, 0]);
    open = true;
    ws.resume();
    expect(got.map((r) => [r.compactRevision, r.canceled])).toEqual([[5, true]]);
    expect(ws.watcherCount).toBe(0);
  });
});

describe("the synced index", () => {
  it("one commit over several keys reaches the watchers of each key and of the range, and no other", async () => {
    for (const k of ["a", "b", "c"]) await kv.put({ key: enc(k), value: enc("1") });
    const got = new Map<string, WatchResponse[]>();
    const watch = (name: string, key: string, rangeEnd?: string): void => {
      got.set(name, []);
      const list = got.get(name) as WatchResponse[];
      ws.watch({ key: enc(key), ...(rangeEnd ? { rangeEnd: enc(rangeEnd) } : {}), send: (r) => list.push(r) > 0 });
    };
    watch("a", "a");
    watch("b", "b");
    watch("a-c", "a", "c");
    watch("z", "z");
    await kv.deleteRange({ key: enc("a"), rangeEnd: enc("d") }); // rev 5
    const seen = Object.fromEntries([...got].map(([name, rs]) => [name, flat(rs)]));
    expect(seen).toEqual({ a: ["DEL a@5"], b: ["DEL b@5"], "a-c": ["DEL a@5", "DEL b@5"], z: [] });
  });

  it("a watcher that no commit concerned for long falls behind at the revision it missed, not a compacted one", async () => {
    const got: WatchResponse[] = [];
    let open = true;
    ws.watch({ key: enc("x"), send: (r) => open && got.push(r) > 0 });
    for (let i = 0; i < 10; i++) await kv.put({ key: enc("y"), value: enc(`${i}`) });
    await kv.compact(kv.revision);
    open = false;
    await kv.put({ key: enc("x"), value: enc("late") });
    expect(ws.unsyncedCount).toBe(1);
    open = true;
    ws.resume();
    expect(got.map((r) => [r.canceled, r.compactRevision])).toEqual([[false, 0]]);
    expect(flat(got)).toEqual([`PUT x@${kv.revision}`]);
  });
});

describe("many watchers behind one consumer", () => {
  /** A consumer shared by a group of watchers that takes `room` responses, then refuses until refilled. */
  function consumer(): { group: object; got: Map<number, string[]>; refill: (n: number) => void } {
    const got = new Map<number, string[]>();
    let room = Number.POSITIVE_INFINITY;
    const group = {
      take(r: WatchResponse): boolean {
        if (room <= 0) return false;
        room -= 1;
        got.set(r.watchId, [...(got.get(r.watchId) ?? []), ...flat([r])]);
        return true;
      },
    };
    return { group, got, refill: (n) => (room = n) };
  }

  it("one put reaches each of 3,000 watchers exactly once through a consumer that takes 50 at a time", async () => {
    const n = 3_000;
    const c = consumer();
    const take = (c.group as { take(r: WatchResponse): boolean }).take;
    for (let i = 0; i < n; i++) ws.watch({ key: enc("g"), group: c.group, send: take });
    c.refill(50);
    await kv.put({ key: enc("g"), value: enc("fired") });
    expect(ws.unsyncedCount, "all but the first 50 fell behind").toBe(n - 50);
    const reads = vi.spyOn(kv.backend, "readNow");
    let turns = 0;
    while (ws.unsyncedCount > 0 && turns < n) {
      c.refill(50);
      ws.resume(c.group);
      turns += 1;
    }
    expect(turns).toBe((n - 50) / 50);
    expect(reads.mock.calls.length, "one history read per turn, not per watcher").toBeLessThanOrEqual(turns);
    expect(c.got.size).toBe(n);
    expect([...c.got.values()].every((evs) => evs.length === 1 && evs[0] === "PUT g@2")).toBe(true);
  });

  it("a turn catches up at most SYNC_MAX_WATCHERS of a group; the rest follow on later turns", async () => {
    const n = SYNC_MAX_WATCHERS * 2 + 10;
    const c = consumer();
    const take = (c.group as { take(r: WatchResponse): boolean }).take;
    for (let i = 0; i < n; i++) ws.watch({ key: enc("h"), group: c.group, send: take });
    c.refill(0);
    await kv.put({ key: enc("h"), value: enc("fired") });
    expect(ws.unsyncedCount).toBe(n);
    c.refill(Number.POSITIVE_INFINITY);
    ws.resume(c.group);
    expect(ws.unsyncedCount, "the first turn stops at the bound").toBe(n - SYNC_MAX_WATCHERS);
    for (let i = 0; i < 5 && ws.unsyncedCount > 0; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(ws.unsyncedCount).toBe(0);
    expect(c.got.size).toBe(n);
    await kv.put({ key: enc("h"), value: enc("again") });
    expect([...c.got.values()].every((evs) => evs.join() === "PUT h@2,PUT h@3")).toBe(true);
  });

  it("a turn scheduled before the store closed does nothing once it runs", async () => {
    const c = consumer();
    const take = (c.group as { take(r: WatchResponse): boolean }).take;
    for (let i = 0; i < SYNC_MAX_WATCHERS + 1; i++) ws.watch({ key: enc("k"), group: c.group, send: take });
    c.refill(0);
    await kv.put({ key: enc("k"), value: enc("fired") });
    c.refill(Number.POSITIVE_INFINITY);
    vi.useFakeTimers({ toFake: ["setImmediate"] }); // the scheduled turn waits until the store has closed
    try {
      ws.resume(c.group); // leaves one watcher for a scheduled turn
      expect(ws.unsyncedCount).toBe(1);
      await kv.close();
      expect(vi.getTimerCount(), "one turn scheduled").toBe(1);
      vi.runOnlyPendingTimers(); // would throw reading the closed backend
      expect(ws.unsyncedCount).toBe(1);
    } finally {
      vi.useRealTimers();
    }
    kv = KvStore.open(dir, { readWorkers: 0 }); // for afterEach
  });
});
