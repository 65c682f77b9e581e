// Proves the simulator's own parts before they judge Raft: the RNG replays from a seed and is unbiased enough,
// the virtual network delivers in time order and really drops, duplicates, delays and cuts links, and each
// safety checker fires on a history that breaks its property (with `seed=N` in the message) and stays quiet on
// a correct one.
import { describe, expect, it } from "vitest";
import type { Entry, Message, NodeId } from "../../core/raft/types.js";
import { InvariantViolation, SafetyChecker } from "./checkers.js";
import { VirtualNetwork } from "./network.js";
import { SeededRng } from "./rng.js";

const msg = (from: NodeId, to: NodeId, index = 0): Message => ({
  type: "MsgApp",
  from,
  to,
  term: 1,
  logTerm: 0,
  index,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
});
const ent = (index: number, term: number, data = ""): Entry => ({
  index,
  term,
  type: 0,
  data: new TextEncoder().encode(data),
});

describe("SeededRng", () => {
  it("replays the same sequence from the same seed and differs across seeds", () => {
    const a = new SeededRng(42);
    const b = new SeededRng(42);
    const c = new SeededRng(43);
    const sa = Array.from({ length: 100 }, () => a.nextInt(1000));
    const sb = Array.from({ length: 100 }, () => b.nextInt(1000));
    const sc = Array.from({ length: 100 }, () => c.nextInt(1000));
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });

  it("covers [0, n) roughly uniformly (each of 10 buckets within 20% of 10,000 draws/10)", () => {
    const r = new SeededRng(7);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) counts[r.nextInt(10)]! += 1;
    for (const [i, c] of counts.entries()) expect(c, `bucket ${i} count ${c}`).toBeGreaterThan(800);
    for (const [i, c] of counts.entries()) expect(c, `bucket ${i} count ${c}`).toBeLessThan(1200);
  });

  it("rejects bad bounds", () => {
    expect(() => new SeededRng(1).nextInt(0)).toThrow(/got 0/);
    expect(() => new SeededRng(1.5)).toThrow(/1.5/);
  });
});

describe("VirtualNetwork", () => {
  it("delivers in delivery-time order, ties in send order, nothing before it is due", () => {
    const net = new VirtualNetwork(new SeededRng(1), { dropRate: 0, dupRate: 0, minDelayUnits: 1, maxDelayUnits: 10 });
    for (let i = 0; i < 50; i++) net.send(msg(1n, 2n, i), 0);
    const got: number[] = [];
    let last = 0;
    for (let t = 0; t <= 10; t++) {
      for (let e = net.takeDue(t); e !== undefined; e = net.takeDue(t)) {
        expect(e.deliverAt, `delivered at ${t} but due ${e.deliverAt}`).toBeLessThanOrEqual(t);
        expect(e.deliverAt).toBeGreaterThanOrEqual(last);
        last = e.deliverAt;
        got.push(e.msg.index);
      }
    }
    expect(got.length).toBe(50);
    expect(got).not.toEqual([...got].sort((x, y) => x - y)); // random delays reordered them
  });

  it("drops and duplicates at the configured rates (±30% over 5,000 sends)", () => {
    const net = new VirtualNetwork(new SeededRng(2), {
      dropRate: 0.2,
      dupRate: 0.1,
      minDelayUnits: 0,
      maxDelayUnits: 0,
    });
    for (let i = 0; i < 5000; i++) net.send(msg(1n, 2n), 0);
    expect(net.stats.dropped).toBeGreaterThan(700);
    expect(net.stats.dropped).toBeLessThan(1300);
    expect(net.stats.duplicated).toBeGreaterThan(280);
    expect(net.stats.duplicated).toBeLessThan(520);
    expect(net.inFlight()).toBe(5000 - net.stats.dropped + net.stats.duplicated);
  });

  it("cuts links symmetrically or one way, and heals", () => {
    const net = new VirtualNetwork(new SeededRng(3));
    const lost: string[] = [];
    net.onLost = (m, cut) => lost.push(`${m.from}>${m.to}:${cut}`);
    net.cutOneWay(1n, 2n);
    expect(net.canReach(1n, 2n)).toBe(false);
    expect(net.canReach(2n, 1n)).toBe(true);
    net.send(msg(1n, 2n), 0);
    net.send(msg(2n, 1n), 0);
    expect(net.takeDue(1)?.msg.from).toBe(2n);
    expect(lost).toEqual(["1>2:true"]);
    net.heal();
    net.partition([1n], [2n, 3n]);
    expect([net.canReach(1n, 3n), net.canReach(3n, 1n), net.canReach(2n, 3n)]).toEqual([false, false, true]);
    net.heal();
    expect(net.canReach(1n, 3n)).toBe(true);
  });

  it("lets an interceptor delay or drop chosen messages", () => {
    const net = new VirtualNetwork(new SeededRng(4));
    const off = net.intercept((m) => (m.to === 2n ? { delayUnits: 30 } : m.to === 3n ? { drop: true } : undefined));
    net.send(msg(1n, 2n), 0);
    net.send(msg(1n, 3n), 0);
    expect(net.takeDue(29)).toBeUndefined();
    expect(net.takeDue(30)?.msg.to).toBe(2n);
    expect(net.stats.dropped).toBe(1);
    off();
    net.send(msg(1n, 3n), 0);
    expect(net.takeDue(1)?.msg.to).toBe(3n);
  });
});

describe("SafetyChecker", () => {
  const violation = (f: (c: SafetyChecker) => void): string => {
    const c = new SafetyChecker(99);
    try {
      f(c);
    } catch (e) {
      expect(e).toBeInstanceOf(InvariantViolation);
      return (e as Error).message;
    }
    return "no violation";
  };

  it("flags two leaders in one term", () => {
    expect(
      violation((c) => {
        c.onLeader(1n, 3);
        c.onLeader(2n, 3);
      }),
    ).toMatch(/seed=99 .*election safety.*term 3/);
  });

  it("flags two different entries with one (index, term), or different predecessors", () => {
    expect(
      violation((c) => {
        c.onAppend(1n, [ent(1, 1, "a")], 0);
        c.onAppend(2n, [ent(1, 1, "b")], 0);
      }),
    ).toMatch(/log matching/);
    expect(
      violation((c) => {
        c.onAppend(1n, [ent(2, 3, "a")], 1);
        c.onAppend(2n, [ent(2, 3, "a")], 2);
      }),
    ).toMatch(/log matching/);
    expect(violation((c) => c.onAppend(1n, [ent(1, 2), ent(2, 1)], 0))).toMatch(/terms monotonic/);
  });

  it("flags a second vote in the same term and a commit going back", () => {
    expect(
      violation((c) => {
        c.onPersistHardState(1n, { term: 2, vote: 1n, commit: 0 });
        c.onPersistHardState(1n, { term: 2, vote: 3n, commit: 0 });
      }),
    ).toMatch(/one vote per term/);
    expect(
      violation((c) => {
        c.onPersistHardState(1n, { term: 2, vote: 1n, commit: 5 });
        c.onPersistHardState(1n, { term: 2, vote: 1n, commit: 4 });
      }),
    ).toMatch(/commit monotonic/);
  });

  it("flags members committing or applying different entries at an index, and applying past commit", () => {
    const terms = new Map<NodeId, number[]>([
      [1n, [0, 1, 1]],
      [2n, [0, 1, 2]],
    ]);
    const at = (id: NodeId) => (i: number) => terms.get(id)?.[i];
    expect(
      violation((c) => {
        c.onCommit(1n, 2, 2, at(1n));
        c.onCommit(2n, 2, 2, at(2n));
      }),
    ).toMatch(/committed entries agree.*index 2/);
    expect(
      violation((c) => {
        c.onCommit(1n, 1, 1, at(1n));
        c.onApply(1n, ent(1, 1));
        c.onApply(1n, ent(2, 1));
      }),
    ).toMatch(/applied ≤ committed/);
    expect(
      violation((c) => {
        c.onCommit(1n, 2, 1, at(1n));
        c.onApply(1n, ent(1, 1, "x"));
        c.onCommit(3n, 1, 1, at(1n));
        c.onApply(3n, ent(1, 1, "y"));
      }),
    ).toMatch(/state machine safety/);
  });

  it("flags a leader of a later term missing a committed entry, but not one whose entry is committed later", () => {
    const at1 = (i: number) => [0, 1, 1][i];
    expect(
      violation((c) => {
        c.onCommit(1n, 2, 1, at1);
        c.onLeader(2n, 2);
        c.checkLeader(2n, (i) => [0, 1][i], 1);
      }),
    ).toMatch(/leader completeness.*index 2/);
    expect(
      violation((c) => {
        c.onLeader(2n, 2);
        c.onCommit(1n, 2, 2, at1);
        c.checkLeader(2n, (i) => [0, 1][i], 1);
      }),
    ).toBe("no violation");
  });

  it("accepts a correct history", () => {
    expect(
      violation((c) => {
        c.onPersistHardState(1n, { term: 1, vote: 1n, commit: 0 });
        c.onLeader(1n, 1);
        c.onAppend(1n, [ent(1, 1), ent(2, 1, "a")], 0);
        c.onAppend(2n, [ent(1, 1), ent(2, 1, "a")], 0);
        c.onCommit(1n, 2, 1, (i) => [0, 1, 1][i]);
        c.onApply(1n, ent(1, 1));
        c.onApply(1n, ent(2, 1, "a"));
        c.checkLeader(1n, (i) => [0, 1, 1][i], 1);
      }),
    ).toBe("no violation");
  });
});
