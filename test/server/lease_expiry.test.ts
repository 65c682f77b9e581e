// Proves a mass expiry is handled as etcd's leader does it: 10,000 leases (one key each) expiring in the same
// second are all revoked through Raft — every key deleted, every lease gone — in batches bounded by the revoke
// rate (so the whole expiry takes ≈ leases / rate seconds, never one giant batch), while writes keep being
// served. The longest write latency seen meanwhile is printed (speed targets live in `npm run bench -- lease`).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LEASE_REVOKE_RATE_PER_SECOND } from "../../core/limits.js";
import { EtcdServer } from "../../core/server/etcd_server.js";

const LEASES = 10_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-mass-expiry-"));
let server: EtcdServer | undefined;
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("mass lease expiry", () => {
  it(`revokes ${LEASES} leases expiring together in rate-bounded batches while writes go on`, async () => {
    // The lessor's clock is virtual: grants and puts take their time, then the clock jumps past every expiry at once.
    let now = 0;
    const s = await EtcdServer.start({
      name: "n1",
      dataDir: dir,
      memberId: 1n,
      clusterId: 2n,
      quotaBackendBytes: -1,
      clock: () => now,
    });
    server = s;
    await s.whenLeader();
    const ids: bigint[] = [];
    for (let i = 0; i < LEASES; i += 500) {
      const batch = await Promise.all(Array.from({ length: 500 }, () => s.leaseGrant(0n, 1)));
      ids.push(...batch.map((g) => g.response.id));
    }
    for (let i = 0; i < LEASES; i += 500) {
      await Promise.all(
        ids
          .slice(i, i + 500)
          .map((id, j) => s.put({ key: enc(`exp/${String(i + j).padStart(5, "0")}`), value: enc("v"), lease: id })),
      );
    }
    expect(s.lessor.size).toBe(LEASES);
    now += 10_000;
    const start = performance.now();
    let writes = 0;
    let maxWriteMs = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const t = performance.now();
        await s.put({ key: enc(`live/${writes % 100}`), value: enc(String(writes)) });
        maxWriteMs = Math.max(maxWriteMs, performance.now() - t);
        writes++;
      }
    })();
    const deadline = start + 60_000;
    let left = LEASES;
    const seen: number[] = [];
    while (left > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      left = s.lessor.size;
      seen.push(left);
    }
    stop = true;
    await writer;
    const seconds = (performance.now() - start) / 1000;
    console.log(
      `mass expiry: ${LEASES} leases gone in ${seconds.toFixed(1)} s; ${writes} puts meanwhile, max put latency ${maxWriteMs.toFixed(1)} ms`,
    );
    expect(left, `leases left after 60 s: ${left}`).toBe(0);
    expect((await s.range({ key: enc("exp/"), rangeEnd: enc("exp0"), countOnly: true })).response.count).toBe(0);
    expect(writes, "writes were served during the expiry").toBeGreaterThan(0);
    // Bounded batches: with at most rate/2 revokes per 500 ms round, the expiry cannot finish in under
    // (leases / rate) − 1 s; every 250 ms sample shows a partial state rather than all-or-nothing.
    expect(seconds).toBeGreaterThan(LEASES / LEASE_REVOKE_RATE_PER_SECOND - 1);
    expect(seen.filter((n) => n > 0 && n < LEASES).length, `samples ${seen.join(",")}`).toBeGreaterThan(3);
  }, 90_000);
});
