// Proves the server's lease path end to end (propose → Raft → apply → lessor, in one backend transaction):
// grant with the minimum TTL, put with a lease, TimeToLive with keys, keepalive, revoke deleting every attached
// key at one revision, etcd's errors (unknown lease on put, duplicate id, revoke twice, TTL -1 for a gone lease),
// expiry driven by the leader's loop, and leases with their keys and checkpointed remaining TTL surviving a
// restart of the member.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isEtcdError } from "../../core/errors.js";
import { Lessor } from "../../core/lease/lessor.js";
import { EtcdServer, type ServerConfig } from "../../core/server/etcd_server.js";
import { waitFor } from "../support/wait_for.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const dirs: string[] = [];
const servers: EtcdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// heartbeat 10 ms, election 100 ms: etcd's minimum lease TTL rule gives ceil(1.5 × 100 ms) = 1 s.
function config(dataDir: string, extra: Partial<ServerConfig> = {}): ServerConfig {
  return {
    name: "n1",
    dataDir,
    memberId: 0x3f87d1e9930d82d9n,
    clusterId: 0xc053a5fbc1c5ad1en,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
    ...extra,
  };
}

async function start(dataDir?: string, extra: Partial<ServerConfig> = {}): Promise<{ s: EtcdServer; dir: string }> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "etcd-ts-lease-"));
  if (dataDir === undefined) dirs.push(dir);
  const s = await EtcdServer.start(config(dir, extra));
  servers.push(s);
  await s.whenLeader();
  return { s, dir };
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe("leases through the server", () => {
  it("grants, attaches keys, answers TimeToLive with keys, renews, and revokes every key at one revision", async () => {
    const { s } = await start();
    const g = await s.leaseGrant(0n, 60);
    expect(g.response.id).toBeGreaterThan(0n);
    expect(g.response.ttl).toBe(60);
    const small = await s.leaseGrant(0n, 0);
    expect(small.response.ttl, "a TTL below the minimum is raised to it").toBe(1);
    await s.put({ key: enc("l/a"), value: enc("1"), lease: g.response.id });
    await s.put({ key: enc("l/b"), value: enc("2"), lease: g.response.id });
    const ttl = (await s.leaseTimeToLive(g.response.id, true)).response;
    expect(ttl.grantedTtl).toBe(60);
    expect(ttl.ttl).toBeGreaterThan(58);
    expect(ttl.keys.map(dec).sort()).toEqual(["l/a", "l/b"]);
    expect((await s.leaseRenew(g.response.id)).ttl).toBe(60);
    expect([...s.leaseLeases().response].sort()).toEqual([g.response.id, small.response.id].sort());
    const before = s.kv.revision;
    const rv = await s.leaseRevoke(g.response.id);
    expect(rv.response.deleted).toBe(2);
    expect(rv.header.revision, "both keys deleted at one new revision").toBe(before + 1);
    expect((await s.range({ key: enc("l/"), rangeEnd: enc("l0") })).response.count).toBe(0);
    expect((await s.leaseTimeToLive(g.response.id, false)).response.ttl).toBe(-1);
  });

  it("answers etcd's errors: unknown lease on put, duplicate id, revoke twice, renew of a gone lease", async () => {
    const { s } = await start();
    expect(
      isEtcdError(await errorOf(s.put({ key: enc("x"), value: enc("v"), lease: 12345n })), "LEASE_NOT_FOUND"),
    ).toBe(true);
    await s.leaseGrant(777n, 30);
    expect(isEtcdError(await errorOf(s.leaseGrant(777n, 30)), "LEASE_EXIST")).toBe(true);
    const applied = s.appliedIndex;
    expect(isEtcdError(await errorOf(s.leaseGrant(0n, 9_000_000_001)), "LEASE_TTL_TOO_LARGE")).toBe(true);
    expect(s.appliedIndex, "refused before it was proposed").toBe(applied);
    await s.leaseRevoke(777n);
    expect(isEtcdError(await errorOf(s.leaseRevoke(777n)), "LEASE_NOT_FOUND")).toBe(true);
    expect(isEtcdError(await errorOf(Promise.resolve().then(() => s.leaseRenew(777n))), "LEASE_NOT_FOUND")).toBe(true);
    expect((await s.range({ key: enc("x") })).response.count).toBe(0);
  });

  it("expires a lease on the leader and deletes its keys through Raft", async () => {
    const { s } = await start();
    const g = await s.leaseGrant(0n, 1);
    await s.put({ key: enc("e/a"), value: enc("1"), lease: g.response.id });
    const deleted = new Promise<number>((resolve) => {
      const id = s.watchable.watch({
        key: enc("e/a"),
        send: (resp) => {
          if (resp.events.some((e) => e.type === 1)) {
            s.watchable.cancel(id);
            resolve(resp.revision);
          }
          return true;
        },
      });
    });
    const rev = await deleted;
    expect(rev).toBeGreaterThan(0);
    expect((await s.leaseTimeToLive(g.response.id, false)).response.ttl).toBe(-1);
    expect((await s.range({ key: enc("e/a") })).response.count).toBe(0);
  }, 15_000);

  it("keeps leases and their keys across a restart", async () => {
    const first = await start();
    const g = await first.s.leaseGrant(0n, 3600);
    await first.s.put({ key: enc("r/a"), value: enc("1"), lease: g.response.id });
    await first.s.stop();
    servers.splice(servers.indexOf(first.s), 1);
    const { s } = await start(first.dir);
    const ttl = (await s.leaseTimeToLive(g.response.id, true)).response;
    expect(ttl.grantedTtl).toBe(3600);
    expect(ttl.keys.map(dec)).toEqual(["r/a"]);
    await s.leaseRevoke(g.response.id);
    expect((await s.range({ key: enc("r/a") })).response.count).toBe(0);
  });

  for (const checkpoints of [true, false]) {
    it(`a TTL-60 lease at 40 s remaining has ${checkpoints ? "≈40 s after a restart (checkpointed)" : "60 s again after a restart (checkpoints off)"}`, async () => {
      let now = 1_000_000;
      const extra = { leaseCheckpoint: checkpoints, leaseCheckpointIntervalMs: 1000, clock: () => now };
      const first = await start(undefined, extra);
      const g = await first.s.leaseGrant(0n, 60);
      now += 20_000;
      if (checkpoints) await waitFor(() => checkpointed(first.s), "checkpoint applied");
      await first.s.stop();
      servers.splice(servers.indexOf(first.s), 1);
      now += 5_000; // the whole member is down for a while: a checkpoint keeps the remaining TTL, not the wall time
      const { s } = await start(first.dir, extra);
      const ttl = (await s.leaseTimeToLive(g.response.id, false)).response.ttl;
      if (checkpoints) {
        expect(ttl, "remaining 40 s + the election-timeout extension, rounded up").toBeGreaterThanOrEqual(40);
        expect(ttl).toBeLessThanOrEqual(41);
      } else {
        expect(ttl).toBeGreaterThanOrEqual(60);
        expect(ttl).toBeLessThanOrEqual(61);
      }
    });
  }
});

/** Whether the lessor's stored record for some lease holds a checkpointed remaining TTL (read from the backend). */
function checkpointed(s: EtcdServer): boolean {
  return s.lessor
    .leases()
    .some(
      (id) => (s.kv.backend.readNow((v) => Lessor.load(v, { minTtlSeconds: 1 })).timeToLive(id, false)?.ttl ?? 60) < 60,
    );
}
