// Proves the store's traffic gate: a swap starts only after every operation in flight has left, operations that
// arrive during a swap wait until it is over (and the fast path refuses them), and swaps run one at a time.
import { describe, expect, it } from "vitest";
import { TrafficGate } from "../../core/mvcc/traffic_gate.js";

/** Lets every queued promise callback run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe("TrafficGate", () => {
  it("a swap waits for the operations in flight, and holds new ones until it is over", async () => {
    const gate = new TrafficGate();
    const log: string[] = [];
    expect(gate.tryEnter()).toBe(true);
    let finishSwap = (): void => undefined;
    const swap = gate.exclusive(async () => {
      log.push("swap starts");
      await new Promise<void>((resolve) => (finishSwap = resolve));
      log.push("swap ends");
      return 7;
    });
    await settle();
    expect(log).toEqual([]); // the read in flight has not left yet
    expect(gate.held).toBe(true);
    expect(gate.tryEnter()).toBe(false);
    const late = gate.enter().then(() => log.push("late read enters"));
    gate.leave();
    await settle();
    expect(log).toEqual(["swap starts"]);
    finishSwap();
    expect(await swap).toBe(7);
    await late;
    expect(log).toEqual(["swap starts", "swap ends", "late read enters"]);
    expect(gate.held).toBe(false);
    gate.leave();
    expect(gate.tryEnter()).toBe(true);
  });

  it("opens again after a swap that failed, and swaps never overlap", async () => {
    const gate = new TrafficGate();
    let running = 0;
    let overlapped = false;
    const body = async (fail: boolean): Promise<void> => {
      running++;
      if (running > 1) overlapped = true;
      await settle();
      running--;
      if (fail) throw new Error("swap failed");
    };
    const first = gate.exclusive(() => body(true));
    const second = gate.exclusive(() => body(false));
    await expect(first).rejects.toThrow("swap failed");
    await second;
    expect(overlapped).toBe(false);
    expect(gate.held).toBe(false);
    expect(gate.tryEnter()).toBe(true);
  });
});
