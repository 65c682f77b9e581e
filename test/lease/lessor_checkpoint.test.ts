// Proves lease checkpoints on a virtual clock over a real temporary LMDB backend: a 60 s lease checkpointed at
// 40 s remaining keeps ≈40 s (not 60 s) after a leader change (demote → promote) and after a restart (the backend
// reopened, the lessor loaded from it); with checkpoints disabled the same lease comes back at 60 s. Also: a renew
// clears the checkpoint, only leases with more than one interval left are checkpointed, batches are bounded, a
// lost checkpoint proposal is retried, and followers propose nothing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import { decodeLeaseValue, encodeLeaseKey } from "../../core/lease/lease_codec.js";
import { LEASE_BUCKET, Lessor, type LessorOptions } from "../../core/lease/lessor.js";

let dir: string;
let backend: Backend;
let clockMs = 0;
const now = (): number => clockMs;
const INTERVAL_MS = 20_000;

function openBackend(): Backend {
  return Backend.open(dir, { buckets: [LEASE_BUCKET], readWorkers: 0, syncIntervalMs: 0 });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lessor-cp-"));
  backend = openBackend();
  clockMs = 5_000_000;
});

afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

function options(enabled: boolean): LessorOptions {
  return { minTtlSeconds: 2, now, checkpointIntervalMs: INTERVAL_MS, checkpointEnabled: enabled };
}

/** What the server does each checkpoint tick on the leader: propose the due checkpoints, apply them in order. */
async function proposeAndApplyCheckpoints(
  l: Lessor,
  max = 1000,
): Promise<readonly { id: bigint; remainingTtl: number }[]> {
  const due = l.dueCheckpoints(max);
  await backend.batch(undefined, (tx) => due.forEach((c) => l.checkpoint(tx, c.id, c.remainingTtl)));
  return due;
}

function storedRemaining(id: bigint): number | undefined {
  const v = backend.readNow((view) => view.get(LEASE_BUCKET, encodeLeaseKey(id)));
  return v === undefined ? undefined : decodeLeaseValue(id, v).remainingTtlSeconds;
}

/** A 60 s lease on a leader, 20 s later (one checkpoint interval), then a checkpoint tick. */
async function leaseAt40Remaining(enabled: boolean): Promise<Lessor> {
  const l = new Lessor(options(enabled));
  l.promote(0);
  await backend.batch(undefined, (tx) => l.grant(tx, 1n, 60));
  clockMs += INTERVAL_MS - 1;
  expect(await proposeAndApplyCheckpoints(l), "nothing due before the interval").toEqual([]);
  clockMs += 1;
  const due = await proposeAndApplyCheckpoints(l);
  expect(due, `checkpoints with enabled=${enabled}`).toEqual(enabled ? [{ id: 1n, remainingTtl: 40 }] : []);
  return l;
}

describe("a 60 s lease at 40 s remaining", () => {
  it("keeps 40 s after a leader change and after a restart when checkpoints are enabled", async () => {
    const l = await leaseAt40Remaining(true);
    expect(storedRemaining(1n), "the checkpoint is persisted").toBe(40);
    l.demote();
    clockMs += 5_000; // a follower's clock does not run
    l.promote(0);
    expect(l.timeToLive(1n, false)?.ttl, "after the leader change").toBe(40);
    await backend.close();
    backend = openBackend();
    const restarted = Lessor.load(
      backend.readNow((v) => v),
      options(true),
    );
    expect([restarted.isPrimary, restarted.size, restarted.timeToLive(1n, false)?.grantedTtl]).toEqual([false, 1, 60]);
    restarted.promote(0);
    expect(restarted.timeToLive(1n, false)?.ttl, "after a restart").toBe(40);
    clockMs += 40_000;
    expect(restarted.expired(10), "expires 40 s after the promote, not 60 s").toEqual([1n]);
  });

  it("comes back at the full 60 s after a leader change and a restart when checkpoints are disabled", async () => {
    const l = await leaseAt40Remaining(false);
    expect(storedRemaining(1n)).toBe(0);
    l.demote();
    l.promote(0);
    expect(l.timeToLive(1n, false)?.ttl, "after the leader change").toBe(60);
    await backend.close();
    backend = openBackend();
    const restarted = Lessor.load(
      backend.readNow((v) => v),
      options(false),
    );
    restarted.promote(0);
    expect(restarted.timeToLive(1n, false)?.ttl, "after a restart").toBe(60);
  });

  it("a renew clears the checkpoint, so the next leader restores the full TTL", async () => {
    const l = await leaseAt40Remaining(true);
    expect(l.renew(1n)).toBe(60);
    expect(await proposeAndApplyCheckpoints(l), "the clear comes first").toEqual([{ id: 1n, remainingTtl: 0 }]);
    expect(storedRemaining(1n)).toBe(0);
    expect(l.timeToLive(1n, false)?.ttl, "applying the clear on the leader does not move its clock").toBe(60);
    l.demote();
    l.promote(0);
    expect(l.timeToLive(1n, false)?.ttl).toBe(60);
  });

  it("a follower applies checkpoints it is sent but proposes none, and its promote uses them", async () => {
    const l = new Lessor(options(true));
    await backend.batch(undefined, (tx) => l.grant(tx, 1n, 60));
    clockMs += 10 * INTERVAL_MS;
    expect(l.dueCheckpoints(10)).toEqual([]);
    await backend.batch(undefined, (tx) => {
      l.checkpoint(tx, 1n, 33);
      l.checkpoint(tx, 404n, 5); // unknown id: ignored, as etcd
    });
    expect([l.timeToLive(1n, false)?.ttl, l.checkpointed, storedRemaining(404n)]).toEqual([33, 1, undefined]);
    l.promote(2_000);
    expect(l.timeToLive(1n, false)?.ttl, "33 s + 2 s extension").toBe(35);
  });
});

describe("which leases are checkpointed, and when", () => {
  it("only leases with more than one interval left; a lease at or below it is never checkpointed", async () => {
    const l = new Lessor(options(true));
    l.promote(0);
    await backend.batch(undefined, (tx) => {
      l.grant(tx, 1n, 20);
      l.grant(tx, 2n, 21);
    });
    clockMs += INTERVAL_MS;
    expect(await proposeAndApplyCheckpoints(l)).toEqual([{ id: 2n, remainingTtl: 1 }]);
    clockMs += INTERVAL_MS;
    expect(await proposeAndApplyCheckpoints(l), "1 s left after the checkpoint: not rescheduled").toEqual([]);
  });

  it("hands out at most max per call, and retries a checkpoint whose proposal was lost", async () => {
    const l = new Lessor(options(true));
    l.promote(0);
    await backend.batch(undefined, (tx) => {
      for (let i = 1; i <= 2_500; i++) l.grant(tx, BigInt(i), 100);
    });
    clockMs += INTERVAL_MS;
    const sizes: number[] = [];
    for (let due = l.dueCheckpoints(1000); due.length > 0; due = l.dueCheckpoints(1000)) {
      sizes.push(due.length);
      expect(
        due.every((c) => c.remainingTtl === 80),
        "every remaining TTL is 80 s",
      ).toBe(true);
    }
    expect(sizes, "2,500 due leases in bounded batches").toEqual([1000, 1000, 500]);
    clockMs += INTERVAL_MS; // none of those proposals was applied (say the leader's proposals were dropped)
    const retried = l.dueCheckpoints(5_000);
    expect([retried.length, retried[0]?.remainingTtl]).toEqual([2_500, 60]);
  });
});
