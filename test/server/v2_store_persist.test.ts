// Proves the v2 store is part of a member's durable state: v2 writes applied through Raft survive a restart on the
// same data dir (tree, indexes, TTLs, store index), a refused write changes nothing and answers etcd's error, and
// after the restart the store index goes on from where it was (no entry applied twice) and waits with a waitIndex
// are answered from the event history kept with it (the last 1,000 events, no more).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EtcdServer, type ServerConfig } from "../../core/server/etcd_server.js";
import { V2_BUCKET } from "../../core/server/v2_keys.js";

/** A v2 node as JSON without its ttl fields (its expiration stays). */
function withoutTtl(node: unknown): unknown {
  return JSON.parse(JSON.stringify(node, (k, v) => (k === "ttl" ? undefined : v)));
}

/** Every ttl in a v2 node tree. */
function ttls(node: unknown): number[] {
  const out: number[] = [];
  JSON.stringify(node, (k, v) => {
    if (k === "ttl") out.push(v as number);
    return v;
  });
  return out;
}

const dirs: string[] = [];
const servers: EtcdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(dataDir: string): ServerConfig {
  return {
    name: "n1",
    dataDir,
    memberId: 0x3f87d1e9930d82d9n,
    clusterId: 0xc053a5fbc1c5ad1en,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
  };
}

async function start(dir: string): Promise<EtcdServer> {
  const s = await EtcdServer.start(config(dir));
  servers.push(s);
  await s.whenLeader();
  return s;
}

describe("v2 store persistence", () => {
  it("keeps v2 keys, directories, TTLs and the store index across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-v2-"));
    dirs.push(dir);
    const s = await start(dir);
    const far = (BigInt(Date.now()) + 3_600_000n) * 1_000_000n;
    expect(await s.v2Write({ method: "PUT", path: "/a/b", value: "1" })).toMatchObject({ event: { action: "set" } });
    expect(await s.v2Write({ method: "PUT", path: "/t", value: "x", expireNs: far })).toMatchObject({
      event: { action: "set" },
    });
    expect(await s.v2Write({ method: "POST", path: "/q", value: "job" })).toMatchObject({
      event: { action: "create" },
    });
    expect(await s.v2Write({ method: "DELETE", path: "/a/b" })).toMatchObject({ event: { action: "delete" } });
    const refused = await s.v2Write({ method: "PUT", path: "/t", value: "y", prevValue: "nope" });
    expect(refused).toEqual({ error: { errorCode: 101, message: "Compare failed", cause: "[nope != x]", index: 4 } });
    const before = s.v2.store.get("/", true, true);
    await s.stop();
    servers.splice(servers.indexOf(s), 1);

    const again = await start(dir);
    expect(again.v2.store.index).toBe(4);
    // ttl is counted from the clock at each read, and the restart takes a moment: compared apart, within seconds.
    const after = again.v2.store.get("/", true, true).node;
    expect(withoutTtl(after)).toEqual(withoutTtl(before.node));
    const [was, is] = [ttls(before.node), ttls(after)];
    expect([was.length, is.length]).toEqual([1, 1]);
    expect((was[0] as number) - (is[0] as number)).toBeGreaterThanOrEqual(0);
    expect((was[0] as number) - (is[0] as number)).toBeLessThanOrEqual(5);
    expect(again.v2.store.hasTtlKeys).toBe(true);
    expect(await again.v2Write({ method: "PUT", path: "/after", value: "z" })).toMatchObject({
      event: { node: { modifiedIndex: 5 } },
    });
    const past = again.v2.store.watch("/a", true, false, 1, () => undefined);
    expect(past.event).toMatchObject({ action: "set", node: { key: "/a/b", value: "1", modifiedIndex: 1 } });
    expect(past.startIndex).toBe(5);
  });

  it("keeps only the last 1,000 events in the backend, and answers 401 for older ones after a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-v2-"));
    dirs.push(dir);
    const s = await start(dir);
    await Promise.all(
      Array.from({ length: 1010 }, (_, i) => s.v2Write({ method: "PUT", path: `/k${i % 7}`, value: String(i) })),
    );
    const stored = s.kv.backend.readNow(
      (v) =>
        [...v.range(V2_BUCKET, { start: new TextEncoder().encode("h/"), end: new TextEncoder().encode("h0") })].length,
    );
    expect(stored).toBe(1000);
    await s.stop();
    servers.splice(servers.indexOf(s), 1);
    const again = await start(dir);
    expect(() => again.v2.store.watch("/", true, false, 10, () => undefined)).toThrow(/outdated and cleared/);
    expect(again.v2.store.watch("/", true, false, 11, () => undefined).event?.node.modifiedIndex).toBe(11);
  });
});
