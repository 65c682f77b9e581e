// Proves the server's maintenance paths: the backend quota refuses a write that would pass
// --quota-backend-bytes with etcd's "database space exceeded" and raises NOSPACE through Raft; while it is
// raised every write that grows the database is refused on apply (deletes still work), the alarm survives a
// restart, and disarming it lets writes through again; defragmentation under concurrent puts and ranges loses
// nothing and gives back the space of deleted keys.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isEtcdError } from "../../core/errors.js";
import { AlarmAction, AlarmType } from "../../core/server/alarms.js";
import { EtcdServer, type ServerConfig } from "../../core/server/etcd_server.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const dirs: string[] = [];
const servers: EtcdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(dataDir: string, extra: Partial<ServerConfig>): ServerConfig {
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
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "etcd-ts-maint-"));
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

async function stop(s: EtcdServer): Promise<void> {
  await s.stop();
  servers.splice(servers.indexOf(s), 1);
}

describe("quota and the NOSPACE alarm", () => {
  it("refuses writes past the quota, raises NOSPACE durably, and writes resume after disarm", async () => {
    const probe = await start();
    const emptyBytes = probe.s.kv.size().dbSizeBytes;
    await stop(probe.s);
    const quota = emptyBytes + 256 * 1024;
    const { s, dir } = await start(undefined, { quotaBackendBytes: quota });
    const value = new Uint8Array(16 * 1024).fill(7);
    let accepted = 0;
    let refused: unknown;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      refused = await errorOf(s.put({ key: enc(`q/${i}`), value }));
      if (refused === undefined) accepted++;
    }
    expect(isEtcdError(refused, "NO_SPACE"), `refused with ${String(refused)} after ${accepted} puts of 16 KiB`).toBe(
      true,
    );
    expect(accepted).toBeGreaterThan(0);
    // The alarm goes through Raft; a GET after a linearizable read sees it applied.
    await s.range({ key: enc("q/0") });
    expect((await s.alarm(AlarmAction.GET, 0n, AlarmType.NONE)).response).toEqual([
      { memberId: s.config.memberId, alarm: AlarmType.NOSPACE },
    ]);
    // Capped: even a tiny put or a lease grant is refused on apply; deletes go on.
    expect(isEtcdError(await errorOf(s.put({ key: enc("tiny"), value: enc("1") })), "NO_SPACE")).toBe(true);
    expect(isEtcdError(await errorOf(s.leaseGrant(0n, 60)), "NO_SPACE")).toBe(true);
    expect((await s.deleteRange({ key: enc("q/"), rangeEnd: enc("q0") })).response.deleted).toBe(accepted);
    await stop(s);

    const again = await start(dir, { quotaBackendBytes: -1 });
    expect(
      again.s.alarms.list().map((a) => a.alarm),
      "the alarm is in the backend",
    ).toEqual([AlarmType.NOSPACE]);
    expect(isEtcdError(await errorOf(again.s.put({ key: enc("tiny"), value: enc("1") })), "NO_SPACE")).toBe(true);
    const cleared = await again.s.alarm(AlarmAction.DEACTIVATE, 0n, AlarmType.NOSPACE);
    expect(cleared.response.length).toBe(1);
    expect(again.s.alarms.list()).toEqual([]);
    expect((await again.s.put({ key: enc("tiny"), value: enc("1") })).response.revision).toBeGreaterThan(0);
  });
});

describe("defragmentation", () => {
  it("keeps every write and read made while it runs, and gives back the space of deleted keys", async () => {
    // etcd's default timings: requests waiting out the defragmentation get 5 s, not the 0.5 s of a 100 ms election.
    const { s } = await start(undefined, { quotaBackendBytes: -1, heartbeatIntervalMs: 100, electionTimeoutMs: 1000 });
    const value = new Uint8Array(4096).fill(1);
    for (let i = 0; i < 500; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => s.put({ key: enc(`d/${String(i + j).padStart(4, "0")}`), value })),
      );
    }
    await s.deleteRange({ key: enc("d/0"), rangeEnd: enc("d/04") });
    const before = s.kv.backend.size().dbSizeBytes;
    const during = Array.from({ length: 20 }, (_, i) => s.put({ key: enc(`during/${i}`), value: enc(String(i)) }));
    const reads = Array.from({ length: 5 }, () => s.range({ key: enc("d/"), rangeEnd: enc("d0"), serializable: true }));
    await s.defragment();
    await Promise.all(during);
    for (const r of await Promise.all(reads)) expect(r.response.count).toBe(100);
    const after = s.kv.backend.size().dbSizeBytes;
    expect(after, `file ${before} → ${after} bytes after deleting 400 of 500 4 KiB values`).toBeLessThan(before);
    expect((await s.range({ key: enc("during/"), rangeEnd: enc("during0") })).response.count).toBe(20);
    expect((await s.range({ key: enc("d/"), rangeEnd: enc("d0"), countOnly: true })).response.count).toBe(100);
  });
});
