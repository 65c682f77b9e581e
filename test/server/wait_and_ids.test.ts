// Proves request waits resolve each id once, fail cleanly, time out at their deadline, and refuse beyond their
// bound; and that request ids carry the member prefix and strictly increase.
import { describe, expect, it } from "vitest";
import { isEtcdError } from "../../core/errors.js";
import { IdGenerator } from "../../core/server/id_gen.js";
import { Wait } from "../../core/server/wait.js";

describe("Wait", () => {
  it("resolves a registered id once with the applied result", async () => {
    const w = new Wait<string>({ maxPending: 4 });
    const p = w.register(7n);
    expect(w.trigger(7n, "done")).toBe(true);
    expect(w.trigger(7n, "again")).toBe(false);
    await expect(p).resolves.toBe("done");
    expect(w.size).toBe(0);
  });

  it("refuses past its bound with etcd's too-many-requests error", () => {
    const w = new Wait<number>({ maxPending: 2 });
    const held = [w.register(1n), w.register(2n)];
    for (const p of held) p.catch(() => undefined);
    let caught: unknown;
    try {
      void w.register(3n);
    } catch (err) {
      caught = err;
    }
    expect(isEtcdError(caught, "TOO_MANY_REQUESTS")).toBe(true);
    expect((caught as Error).message).toBe("etcdserver: too many requests");
    w.failAll(new Error("stop"));
  });

  it("fails an id with etcd's request timeout once its deadline passes, and only the ids still waiting", async () => {
    const w = new Wait<string>({ maxPending: 8 });
    const started = performance.now();
    const answered = w.register(1n, 40);
    const late = w.register(2n, 40);
    const later = w.register(3n, 40);
    expect(w.trigger(1n, "applied")).toBe(true);
    await expect(answered).resolves.toBe("applied");
    let caught: unknown;
    try {
      await late;
    } catch (err) {
      caught = err;
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
    expect(isEtcdError(caught, "TIMEOUT")).toBe(true);
    expect((caught as Error).message).toBe("etcdserver: request timed out");
    await expect(later).rejects.toThrow("request timed out");
    expect(w.size).toBe(0);
    // A registration after the sweep emptied the waits arms a new deadline.
    const again = w.register(4n, 20);
    await expect(again).rejects.toThrow("request timed out");
  });

  it("keeps ids without a deadline past the sweep", async () => {
    const w = new Wait<string>({ maxPending: 8 });
    const open = w.register(1n);
    const timed = w.register(2n, 10);
    await expect(timed).rejects.toThrow("request timed out");
    expect(w.isRegistered(1n)).toBe(true);
    expect(w.trigger(1n, "applied")).toBe(true);
    await expect(open).resolves.toBe("applied");
  });

  it("fails every waiter on failAll", async () => {
    const w = new Wait<number>({ maxPending: 8 });
    const ps = [w.register(1n), w.register(2n)];
    w.failAll(new Error("etcdserver: server stopped"));
    for (const p of ps) await expect(p).rejects.toThrow("server stopped");
    expect(w.size).toBe(0);
  });
});

describe("IdGenerator", () => {
  it("prefixes ids with the member's low 16 bits and strictly increases them", () => {
    const g = new IdGenerator(0xabcd_1234n, 1_700_000_000_000);
    const a = g.next();
    const b = g.next();
    expect(b).toBe(a + 1n);
    expect(a >> 48n).toBe(0x1234n);
  });
  it("gives different members disjoint ids at the same instant", () => {
    const x = new IdGenerator(1n, 5).next();
    const y = new IdGenerator(2n, 5).next();
    expect(x).not.toBe(y);
  });
});
