// Proves the lessor's contract on a virtual clock over a real temporary LMDB backend: etcd's TTL rules
// (minimum raise, too large, duplicate), attach/detach/move, revoke returning keys and removing the record,
// heap-ordered and lazy expiry bounded per call without handing out in-flight ids twice, promote's extension
// and spreading, leader-only renew, and that 10,000 leases expiring in the same second come out in bounded
// batches. Checkpoints have their own file (lessor_checkpoint.test.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import { isEtcdError, type ErrorCode } from "../../core/errors.js";
import { encodeLeaseKey } from "../../core/lease/lease_codec.js";
import { LEASE_BUCKET, LEASE_EXPIRED_RETRY_INTERVAL_MS, Lessor, type LessorOptions } from "../../core/lease/lessor.js";
import { MAX_LEASE_TTL_SECONDS } from "../../core/limits.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

let dir: string;
let backend: Backend;
let clockMs = 0;
const now = (): number => clockMs;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lessor-"));
  backend = Backend.open(dir, { buckets: [LEASE_BUCKET], readWorkers: 0, syncIntervalMs: 0 });
  clockMs = 1_000_000;
});

afterEach(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

function lessor(opts: Partial<LessorOptions> = {}): Lessor {
  return new Lessor({ minTtlSeconds: 2, now, ...opts });
}

const grant = (l: Lessor, id: bigint, ttl: number): Promise<{ id: bigint; ttl: number }> =>
  backend.batch(undefined, (tx) => l.grant(tx, id, ttl));
const revoke = (l: Lessor, id: bigint): Promise<readonly Uint8Array[]> =>
  backend.batch(undefined, (tx) => l.revoke(tx, id));

function codeOf(fn: () => unknown): ErrorCode | string {
  try {
    fn();
  } catch (err) {
    return isEtcdError(err) ? err.code : String(err);
  }
  return "no error";
}

async function rejectionCode(p: Promise<unknown>): Promise<ErrorCode | string> {
  try {
    await p;
  } catch (err) {
    return isEtcdError(err) ? err.code : String(err);
  }
  return "no error";
}

describe("grant", () => {
  it("raises a TTL below the minimum (also 0 and negative) and refuses too large TTLs and duplicate ids", async () => {
    const l = lessor({ minTtlSeconds: 5 });
    expect((await grant(l, 1n, 1)).ttl, "ttl 1 with minimum 5").toBe(5);
    expect((await grant(l, 2n, 0)).ttl, "ttl 0").toBe(5);
    expect((await grant(l, 3n, -7)).ttl, "ttl -7").toBe(5);
    expect((await grant(l, 4n, 60)).ttl, "ttl 60").toBe(60);
    expect((await grant(l, 5n, MAX_LEASE_TTL_SECONDS)).ttl, "max ttl").toBe(MAX_LEASE_TTL_SECONDS);
    expect(await rejectionCode(grant(l, 6n, MAX_LEASE_TTL_SECONDS + 1))).toBe("LEASE_TTL_TOO_LARGE");
    expect(await rejectionCode(grant(l, 4n, 10)), "duplicate id 4").toBe("LEASE_EXIST");
    expect(l.timeToLive(4n, false)?.grantedTtl, "the duplicate changed nothing").toBe(60);
    expect([l.size, l.granted, l.has(6n)]).toEqual([5, 5, false]);
    expect(
      backend.readNow((v) => v.get(LEASE_BUCKET, encodeLeaseKey(6n))),
      "no record for a refused grant",
    ).toBeUndefined();
    await expect(grant(l, 0n, 10)).rejects.toThrow(/id 0/);
  });

  it("counts granted TTLs in etcd's exponential buckets", async () => {
    const l = lessor();
    for (const [i, ttl] of [1, 3, 3, 60, 100_000].entries()) await grant(l, BigInt(i + 1), ttl);
    // ttl 1 → raised to 2 (bucket ≤2), 3 → ≤4, 60 → ≤64, 100000 → above 8192.
    expect([l.ttlHistogram[1], l.ttlHistogram[2], l.ttlHistogram[6], l.ttlHistogram[14]]).toEqual([1, 2, 1, 1]);
    expect(l.ttlSecondsSum).toBe(2 + 3 + 3 + 60 + 100_000);
  });
});

describe("attach, detach, revoke", () => {
  it("moves a key between leases, detaches it, and refuses an unknown lease", async () => {
    const l = lessor();
    await grant(l, 1n, 10);
    await grant(l, 2n, 10);
    l.attach(1n, enc("a"));
    l.attach(1n, enc("b"));
    l.attach(2n, enc("a"));
    expect([l.leaseOfKey(enc("a")), l.leaseOfKey(enc("b")), l.leaseOfKey(enc("c"))]).toEqual([2n, 1n, 0n]);
    expect(l.timeToLive(1n, true)?.keys.map(dec)).toEqual(["b"]);
    expect(l.timeToLive(2n, true)?.keys.map(dec)).toEqual(["a"]);
    expect(l.timeToLive(2n, false)?.keys).toEqual([]);
    l.detach(enc("b"));
    l.detach(enc("never-attached"));
    expect(l.leaseOfKey(enc("b"))).toBe(0n);
    expect(l.timeToLive(1n, true)?.keys).toEqual([]);
    expect(codeOf(() => l.attach(9n, enc("x")))).toBe("LEASE_NOT_FOUND");
  });

  it("keeps binary keys exact (every byte value, sliced views)", async () => {
    const l = lessor();
    await grant(l, 1n, 10);
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const slice = new Uint8Array(all.buffer, 250, 6);
    l.attach(1n, all);
    l.attach(1n, slice);
    const keys = [...(l.timeToLive(1n, true)?.keys ?? [])].map((k) => Buffer.from(k).toString("hex")).sort();
    expect(keys).toEqual([Buffer.from(all).toString("hex"), Buffer.from(slice).toString("hex")].sort());
    expect(l.leaseOfKey(Uint8Array.from([250, 251, 252, 253, 254, 255]))).toBe(1n);
  });

  it("revoke returns the attached keys, removes the record and the key index; a second revoke is not found", async () => {
    const l = lessor();
    await grant(l, 7n, 10);
    for (const k of ["x", "y", "z"]) l.attach(7n, enc(k));
    expect(backend.readNow((v) => v.get(LEASE_BUCKET, encodeLeaseKey(7n)))?.length, "record stored").toBe(16);
    const keys = await revoke(l, 7n);
    expect(keys.map(dec).sort()).toEqual(["x", "y", "z"]);
    expect(
      backend.readNow((v) => v.get(LEASE_BUCKET, encodeLeaseKey(7n))),
      "record gone",
    ).toBeUndefined();
    expect([l.has(7n), l.leaseOfKey(enc("x")), l.timeToLive(7n, true), l.size, l.revoked]).toEqual([
      false,
      0n,
      undefined,
      0,
      1,
    ]);
    expect(await rejectionCode(revoke(l, 7n))).toBe("LEASE_NOT_FOUND");
  });
});

describe("expiry on the primary", () => {
  it("hands out expired leases in expiry order, at most max per call, and never an in-flight one twice", async () => {
    const l = lessor();
    l.promote(0);
    for (const [id, ttl] of [
      [1n, 30],
      [2n, 10],
      [3n, 11],
      [4n, 10],
      [5n, 40],
    ] as const)
      await grant(l, id, ttl);
    clockMs += 9_999;
    expect(l.expired(10), "nothing before 10 s").toEqual([]);
    clockMs += 1;
    expect([...l.expired(10)].sort()).toEqual([2n, 4n]);
    clockMs += 1_000;
    expect(l.expired(10), "2 and 4 in flight; 3 due at 11 s").toEqual([3n]);
    clockMs += 1_000;
    expect(l.expired(10), "all three in flight at 12 s").toEqual([]);
    clockMs += 1_000;
    const first = l.expired(1);
    expect(first, "13 s: 2 and 4 are due again, bounded by max = 1").toHaveLength(1);
    const second = l.expired(1);
    expect([...first, ...second].sort(), "the other one next, not the same twice").toEqual([2n, 4n]);
    expect(l.expired(1), "3 is in flight until 14 s").toEqual([]);
    clockMs += 27_000;
    expect([...l.expired(10)].sort(), "40 s: 1 and 5 in expiry order with the retries").toEqual([1n, 2n, 3n, 4n, 5n]);
  });

  it("returns an unrevoked lease after the retry interval, and forgets a revoked or renewed one", async () => {
    const l = lessor();
    l.promote(0);
    await grant(l, 1n, 5);
    await grant(l, 2n, 5);
    await grant(l, 3n, 5);
    clockMs += 5_000;
    expect([...l.expired(10)].sort()).toEqual([1n, 2n, 3n]);
    await revoke(l, 1n);
    expect(
      codeOf(() => l.renew(2n)),
      "an expired lease is not renewed",
    ).toBe("LEASE_NOT_FOUND");
    clockMs += LEASE_EXPIRED_RETRY_INTERVAL_MS - 1;
    expect(l.expired(10)).toEqual([]);
    clockMs += 1;
    expect([...l.expired(10)].sort(), "revoke of 2 and 3 lost: handed out again").toEqual([2n, 3n]);
  });

  it("a renew moves the expiry (the old heap entry is skipped), and the queue stays bounded under many renews", async () => {
    const l = lessor();
    l.promote(0);
    await grant(l, 1n, 10);
    clockMs += 9_000;
    expect(l.renew(1n), "renew returns the granted TTL").toBe(10);
    clockMs += 1_000;
    expect(l.expired(10), "old expiry passed, lease renewed").toEqual([]);
    expect(l.timeToLive(1n, false)?.ttl).toBe(9);
    for (let i = 0; i < 20_000; i++) l.renew(1n);
    expect(l.expiryQueueLength, "stale entries compacted").toBeLessThanOrEqual(2 * l.size + 1024 + 1);
    expect(l.renewed).toBe(20_001);
    clockMs += 10_000;
    expect(l.expired(10)).toEqual([1n]);
    expect(l.timeToLive(1n, false)?.ttl, "expired, not yet revoked").toBe(-1);
  });

  it("reports remaining TTL truncated to whole seconds as etcd (60 s lease, 0.5 s later: 59)", async () => {
    const l = lessor();
    l.promote(0);
    await grant(l, 1n, 60);
    clockMs += 500;
    expect(l.timeToLive(1n, false)).toEqual({ id: 1n, grantedTtl: 60, ttl: 59, keys: [] });
    expect(l.timeToLive(2n, false)).toBeUndefined();
  });

  it("hands out 10,000 leases expiring in the same second in bounded batches, each once", async () => {
    const l = lessor();
    l.promote(0);
    await backend.batch(undefined, (tx) => {
      for (let i = 1; i <= 10_000; i++) l.grant(tx, BigInt(i), 2);
    });
    clockMs += 2_000;
    const seen = new Set<bigint>();
    let batches = 0;
    for (let got = l.expired(500); got.length > 0; got = l.expired(500)) {
      expect(got.length, `batch ${batches}`).toBeLessThanOrEqual(500);
      for (const id of got) {
        expect(seen.has(id), `lease ${id} handed out twice`).toBe(false);
        seen.add(id);
      }
      batches++;
      await backend.batch(undefined, (tx) => got.forEach((id) => l.revoke(tx, id)));
    }
    expect([seen.size, batches, l.size]).toEqual([10_000, 20, 0]);
  });
});

describe("leadership", () => {
  it("a follower's leases never expire and it cannot renew; promote extends every lease", async () => {
    const l = lessor();
    await grant(l, 1n, 10);
    clockMs += 3_600_000;
    expect([l.isPrimary, l.expired(10).length, l.timeToLive(1n, false)?.ttl]).toEqual([false, 0, 10]);
    expect(codeOf(() => l.renew(1n))).toBe("NOT_LEADER");
    l.promote(1_000);
    expect(l.timeToLive(1n, false)?.ttl, "10 s + 1 s extension").toBe(11);
    clockMs += 10_999;
    expect(l.expired(10)).toEqual([]);
    clockMs += 1;
    expect(l.expired(10)).toEqual([1n]);
    l.demote();
    expect([l.isPrimary, l.expired(10).length]).toEqual([false, 0]);
    expect(codeOf(() => l.renew(1n))).toBe("NOT_LEADER");
    expect(codeOf(() => l.renew(99n))).toBe("NOT_LEADER");
  });

  it("promote spreads a pile-up: no second holds more than 3/4 of the revoke rate", async () => {
    const l = lessor({ revokeRatePerSecond: 1000 });
    await backend.batch(undefined, (tx) => {
      for (let i = 1; i <= 10_000; i++) l.grant(tx, BigInt(i), 5);
    });
    l.promote(0);
    const perSecond = new Map<number, number>();
    for (let s = 0; s < 30; s++) {
      clockMs += 1_000;
      const got = l.expired(100_000);
      if (got.length > 0) perSecond.set(s, got.length);
      await backend.batch(undefined, (tx) => got.forEach((id) => l.revoke(tx, id)));
    }
    const counts = [...perSecond.values()];
    expect(
      counts.reduce((a, b) => a + b, 0),
      "every lease expires once",
    ).toBe(10_000);
    expect(Math.max(...counts), `per second: ${counts.join(",")}`).toBeLessThanOrEqual(750);
    expect(perSecond.get(4), "the first ones still expire on time (5 s)").toBe(750);
  });
});
