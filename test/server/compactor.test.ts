// Proves auto-compaction follows etcd 3.4's rules: flag parsing (bare number = hours in periodic mode, Go
// durations, 0 = off, etcd's error texts), the periodic compactor's first compaction one window after start at
// the revision recorded then, later ones every min(window, 1 h) at the revision recorded a window before, the
// revision compactor every 5 minutes at current − retention, never moving backwards; and a server with
// --auto-compaction-retention compacts by itself through Raft.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseCompactionFlags } from "../../core/cli/compaction_flags.js";
import { Compactor, REVISION_COMPACTION_INTERVAL_MS } from "../../core/server/compactor.js";
import { EtcdServer } from "../../core/server/etcd_server.js";
import { waitFor } from "../support/wait_for.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

describe("compaction flags", () => {
  it("parses etcd's forms", () => {
    expect(parseCompactionFlags("periodic", "0")).toBeUndefined();
    expect(parseCompactionFlags("periodic", "1")).toEqual({ mode: "periodic", retention: HOUR });
    expect(parseCompactionFlags("periodic", "30m")).toEqual({ mode: "periodic", retention: 30 * MIN });
    expect(parseCompactionFlags("periodic", "1h30m")).toEqual({ mode: "periodic", retention: 90 * MIN });
    expect(parseCompactionFlags("revision", "1000")).toEqual({ mode: "revision", retention: 1000 });
    expect(() => parseCompactionFlags("periodic", "abc")).toThrow(
      'error parsing CompactionRetention: time: invalid duration "abc"',
    );
    expect(() => parseCompactionFlags("foo", "1")).toThrow(
      `error verifying flags, unknown auto-compaction-mode "foo". See 'etcd --help'.`,
    );
  });
});

describe("periodic compactor", () => {
  it("compacts one window after start at the start revision, then every window at the revision a window old", () => {
    const c = new Compactor({ mode: "periodic", retention: 30 * MIN });
    const out: [number, number][] = [];
    // 1000 revisions a minute, the timer ticking every 10 s for 2 hours.
    for (let t = 0; t <= 2 * HOUR; t += 10_000) {
      const rev = 1 + Math.floor(t / MIN) * 1000;
      const got = c.step(t, rev, out.at(-1)?.[1] ?? 0);
      if (got !== undefined) out.push([t / MIN, got]);
    }
    expect(out, "the first window's compaction (at the start revision 1) has nothing to compact").toEqual([
      [60, 30001],
      [90, 60001],
      [120, 90001],
    ]);
  });

  it("acts every hour with a window longer than an hour", () => {
    const c = new Compactor({ mode: "periodic", retention: 10 * HOUR });
    expect(c.intervalMs).toBe(HOUR);
    const runs: number[] = [];
    for (let t = 0; t <= 13 * HOUR; t += MIN) {
      const got = c.step(t, 100 + t / MIN, 0);
      if (got !== undefined) runs.push(t / HOUR);
    }
    expect(runs).toEqual([10, 11, 12, 13]);
  });
});

describe("revision compactor", () => {
  it("compacts every 5 minutes at current − retention, never backwards", () => {
    const d = new Compactor({ mode: "revision", retention: 1000 });
    expect(d.step(0, 100, 0)).toBeUndefined();
    expect(d.step(REVISION_COMPACTION_INTERVAL_MS, 500, 0), "current − retention ≤ 1: nothing").toBeUndefined();
    expect(d.step(2 * REVISION_COMPACTION_INTERVAL_MS, 5000, 0)).toBe(4000);
    expect(d.step(3 * REVISION_COMPACTION_INTERVAL_MS, 5000, 4000), "no new revisions: nothing").toBeUndefined();
    expect(
      d.step(3 * REVISION_COMPACTION_INTERVAL_MS + 1000, 30000, 4000),
      "not before the next 5 minutes",
    ).toBeUndefined();
    expect(d.step(4 * REVISION_COMPACTION_INTERVAL_MS, 30000, 4000)).toBe(29000);
  });
});

describe("a server with auto-compaction", () => {
  const dirs: string[] = [];
  const servers: EtcdServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("compacts through Raft on its own (periodic, virtual clock)", async () => {
    let now = 0;
    let clockReads = 0;
    const logs: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-compactor-"));
    dirs.push(dir);
    const s = await EtcdServer.start({
      name: "n1",
      dataDir: dir,
      memberId: 1n,
      clusterId: 2n,
      heartbeatIntervalMs: 10,
      electionTimeoutMs: 100,
      autoCompaction: { mode: "periodic", retention: 100 },
      clock: () => {
        clockReads++;
        return now;
      },
      log: (_l, pkg, msg) => logs.push(`${pkg}: ${msg}`),
    });
    servers.push(s);
    await s.whenLeader();
    for (let i = 0; i < 5; i++)
      await s.put({ key: new TextEncoder().encode("k"), value: new TextEncoder().encode(String(i)) });
    const rev = s.kv.revision;
    // The compactor (each tick reads the clock once) records `rev` at t=50, then compacts at it after the window.
    now = 50;
    const reads = clockReads;
    await waitFor(() => clockReads >= reads + 2, "two compactor ticks", 5000);
    expect(s.kv.compactRevision).toBe(0);
    now = 200;
    await waitFor(() => s.kv.compactRevision === rev, "the auto-compaction", 5000);
    expect(logs[0]).toBe(`compactor: Starting auto-compaction at revision ${rev} (retention: 0.1s)`);
  });
});
