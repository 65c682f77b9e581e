// Proves the paced reader schedule on virtual time (no timing luck): it issues one request per period from its
// start whatever the server does, so a slow server or a late-waking sender does not lower the read work; the
// schedule does not drift; and each request's latency counts from its intended start, including any wait for a
// free slot, while service time counts from the actual send. Also the slot bound the replayer's paced callers
// use: never more holders than slots, waiters served in arrival order.
import { describe, expect, it } from "vitest";
import { intendedStarts, pacedLoop, Slots, type Clock, type PacedTimes } from "../../harness/paced.js";

/** VirtualClock: time moves only when every pending callback has run and something waits for a later time. */
class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers: { at: number; seq: number; wake: () => void }[] = [];
  /** Extra seconds every sleep overshoots by (a sender whose event loop is busy). */
  constructor(private readonly oversleepS = 0) {}

  now(): number {
    return this.t;
  }

  sleepUntil(s: number): Promise<void> {
    return new Promise((wake) =>
      this.timers.push({ at: Math.max(s, this.t) + this.oversleepS, seq: this.seq++, wake }),
    );
  }

  /** after: the server's side, exactly `s` seconds of (virtual) work. */
  after(s: number): Promise<void> {
    return new Promise((wake) => this.timers.push({ at: this.t + s, seq: this.seq++, wake }));
  }

  async run<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    p.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (settled) return p;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers.shift();
      if (next === undefined) throw new Error("nothing left to wait for, but the loop has not finished");
      this.t = next.at;
      next.wake();
    }
  }
}

function schedule(
  clock: VirtualClock,
  o: { periodS: number; endS: number; maxInFlight: number; serviceS: (k: number) => number },
) {
  const seen: PacedTimes[] = [];
  let k = 0,
    inFlight = 0,
    peak = 0;
  const loop = pacedLoop({
    clock,
    startS: 0,
    endS: o.endS,
    periodS: o.periodS,
    maxInFlight: o.maxInFlight,
    issue: async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await clock.after(o.serviceS(k++));
      inFlight--;
      return 0;
    },
    done: (t) => seen.push(t),
  });
  return { run: clock.run(loop), seen, peak: () => peak };
}

const sorted = (ts: PacedTimes[]): PacedTimes[] => [...ts].sort((a, b) => a.intendedS - b.intendedS);

describe("paced reader schedule", () => {
  it("lists its intended starts at whole periods before the end", () => {
    expect(intendedStarts(0, 10, 2.5)).toEqual([0, 2.5, 5, 7.5]);
    expect(intendedStarts(1, 1, 1)).toEqual([]);
    expect(() => intendedStarts(0, 1, 0)).toThrow(/period/);
  });

  it("holds the rate when each request takes longer than the period (open loop)", async () => {
    const clock = new VirtualClock();
    const s = schedule(clock, { periodS: 1, endS: 10, maxInFlight: 4, serviceS: () => 2.5 });
    const r = await s.run;
    expect([r.issued, r.skipped, r.sentLate]).toEqual([10, 0, 0]);
    const ts = sorted(s.seen);
    expect(ts.map((t) => t.intendedS)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const t of ts) {
      expect(t.sentS, "sent at its intended time, not after the previous one returned").toBe(t.intendedS);
      expect(t.doneS - t.intendedS).toBeCloseTo(2.5, 9);
    }
    expect(s.peak(), "three requests overlap when each takes 2.5 periods").toBe(3);
  });

  it("charges the wait for a free slot to the request (latency from the intended start grows, service time does not) and skips what cannot start before the end", async () => {
    const clock = new VirtualClock();
    const s = schedule(clock, { periodS: 1, endS: 10, maxInFlight: 1, serviceS: () => 2.5 });
    const r = await s.run;
    expect(r.issued, "sent at 0, 2.5, 5, 7.5; the slot frees at 10, the end").toBe(4);
    expect(r.skipped, "the rest is skipped and counted, not sent after the end").toBe(6);
    expect(r.sentLate).toBe(3);
    sorted(s.seen).forEach((t, k) => {
      expect(t.intendedS).toBe(k);
      expect(t.sentS).toBeCloseTo(2.5 * k, 9);
      expect(t.doneS - t.sentS, "service time").toBeCloseTo(2.5, 9);
      expect(t.doneS - t.intendedS, "latency from the intended start").toBeCloseTo(2.5 * (k + 1) - k, 9);
    });
  });

  it("does not drift when the sender wakes late: starts stay on the grid and the lateness is charged", async () => {
    const clock = new VirtualClock(0.3);
    const s = schedule(clock, { periodS: 1, endS: 10, maxInFlight: 8, serviceS: () => 0.1 });
    const r = await s.run;
    expect(r.issued).toBe(10);
    expect(r.sentLate).toBe(10);
    sorted(s.seen).forEach((t, k) => {
      expect(t.intendedS).toBe(k);
      expect(t.sentS).toBeCloseTo(k + 0.3, 9);
      expect(t.doneS - t.intendedS).toBeCloseTo(0.4, 9);
    });
  });

  it("reports a failed request with its times and error", async () => {
    const clock = new VirtualClock();
    const outcomes: { error?: unknown }[] = [];
    let k = 0;
    const loop = pacedLoop({
      clock,
      startS: 0,
      endS: 3,
      periodS: 1,
      maxInFlight: 2,
      issue: async () => {
        await clock.after(0.5);
        if (k++ === 1) throw new Error("boom");
        return k;
      },
      done: (_t, o) => outcomes.push(o),
    });
    expect((await clock.run(loop)).issued).toBe(3);
    expect(outcomes.filter((o) => o.error !== undefined).map((o) => String(o.error))).toEqual(["Error: boom"]);
  });
});

describe("slots", () => {
  it("admits at most `size` holders and hands a released slot to the earliest waiter", async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    await slots.acquire();
    await slots.acquire();
    const waiting = [3, 4].map((k) => slots.acquire().then(() => order.push(k)));
    await new Promise((r) => setImmediate(r));
    expect(order, "both wait while two slots are held").toEqual([]);
    expect(slots.inUse).toBe(2);
    slots.release();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([3]);
    expect(slots.inUse, "the slot passed to the waiter, not freed").toBe(2);
    slots.release();
    await Promise.all(waiting);
    expect(order).toEqual([3, 4]);
    slots.release();
    slots.release();
    expect(slots.inUse).toBe(0);
    expect(() => new Slots(0)).toThrow();
  });
});
