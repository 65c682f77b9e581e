// One robustness run: start a cluster (the harness's launcher, peers behind the link proxy; with failpoint
// faults, etcd-ts's failpoint endpoint and frequent snapshots), run the workload, the watches, the fault schedule
// and the Status monitor for the duration, heal everything, record every member's HashKV and contents at one
// common revision, and write the history file the checker reads.
import { join } from "node:path";
import { EtcdClient } from "../../core/client/index.js";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { makeCluster, type ClusterKind } from "../targets/make.js";
import { FAILPOINT_FLAGS } from "./failpoint_faults.js";
import { FaultInjector, refuseFailpoints, usesFailpoints, type FaultName } from "./faults.js";
import { HistoryWriter } from "./history.js";
import { PeerLinks } from "../targets/peer_proxy.js";
import { runWatchers } from "./watchers.js";
import { KEY_PREFIX, kvOf, Recorder, runWorkload, type Mix } from "./workload.js";
import { setTimeout as sleep } from "node:timers/promises";

export interface RunOptions {
  readonly target: ClusterKind;
  readonly members: number;
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: readonly FaultName[];
  readonly mix: Mix;
  readonly clients: number;
  readonly watches: number;
  /** Directory the history file goes to. */
  readonly dir: string;
}

/** runOnce runs one seed and resolves the path of its history file. */
export async function runOnce(opts: RunOptions, log: (s: string) => void = () => undefined): Promise<string> {
  refuseFailpoints(opts.target, opts.faults);
  const links = new PeerLinks();
  const slot = makeCluster(opts.target, opts.members, {
    peerAdvertise: (i, port) => links.listen(i, port),
    extraArgs: [
      "--experimental-watch-progress-notify-interval",
      "1s",
      ...(usesFailpoints(opts.faults) ? FAILPOINT_FLAGS : []),
    ],
    startTimeoutMs: 30_000,
  });
  if (slot.target === undefined) throw new Error(`${slot.name}: ${slot.reason ?? "not available"}`);
  const cluster = slot.target;
  const path = join(opts.dir, `history-${opts.target}-${opts.members}-seed${opts.seed}.jsonl`);
  const writer = new HistoryWriter(path);
  try {
    await cluster.start();
    for (let i = 0; i < opts.members; i++)
      links.ids.set((await cluster.status(i, 2_000)).header.memberId.toString(16), i);
    const rec = new Recorder((r) => writer.add(r));
    rec.add({
      t: "meta",
      target: opts.target,
      members: opts.members,
      seed: opts.seed,
      durationMs: opts.durationMs,
      faults: opts.faults,
      mix: opts.mix,
      prefix: KEY_PREFIX,
    });
    const endpoints = cluster.endpoints();
    const stopAt = Date.now() + opts.durationMs;
    const stop = (): boolean => Date.now() >= stopAt;
    const faults = new FaultInjector(cluster, links, rec, {
      seed: opts.seed,
      faults: opts.faults,
      members: opts.members,
    });
    log(
      `${slot.name} seed ${opts.seed}: running ${opts.durationMs / 1000} s (${opts.mix} mix, faults ${opts.faults.join(",") || "none"})`,
    );
    await Promise.all([
      runWorkload(
        rec,
        {
          endpoints,
          seed: opts.seed,
          mix: opts.mix,
          clients: opts.clients,
          leaseTtlSeconds: Math.ceil(opts.durationMs / 1000) + 300,
          compactEveryMs: 2_000,
        },
        stop,
      ),
      runWatchers(rec, { endpoints, seed: opts.seed, watches: opts.watches }, stop),
      faults.run(stop),
      monitor(cluster, rec, opts.members, stop),
    ]);
    log(`${slot.name} seed ${opts.seed}: healing`);
    await faults.healAll();
    await finalState(cluster, rec, faults.members);
    return path;
  } finally {
    writer.flush();
    await cluster.stop();
    await links.close();
  }
}

/** monitor polls every member's Status and records the revision it reports. */
async function monitor(cluster: EtcdCluster, rec: Recorder, members: number, stop: () => boolean): Promise<void> {
  const clients = [...Array(members).keys()].map(
    (i) => new EtcdClient({ endpoints: [cluster.endpoint(i)], callTimeoutMs: 500, dialTimeoutMs: 500 }),
  );
  try {
    while (!stop()) {
      await Promise.all(
        clients.map(async (c, i) => {
          if (!cluster.isRunning(i)) return;
          const time = rec.now();
          try {
            const st = await c.status();
            rec.add({ t: "status", member: i, time, rev: Number(st.header.revision) });
          } catch {
            // a killed, paused or cut-off member does not answer: nothing to record
          }
        }),
      );
      await sleep(250);
    }
  } finally {
    for (const c of clients) c.close();
  }
}

/**
 * finalState waits for every member to reach the same revision (nothing writes any more), then records each
 * member's HashKV and serializable contents at that revision.
 */
async function finalState(cluster: EtcdCluster, rec: Recorder, members: readonly number[]): Promise<void> {
  const clients = members.map((i) => new EtcdClient({ endpoints: [cluster.endpoint(i)], callTimeoutMs: 5_000 }));
  try {
    // A linearizable read through the leader first: every member then has to catch up to at least its revision.
    const head = await clients[0]!.get(KEY_PREFIX, { prefix: true, countOnly: true });
    const target = Number(head.header.revision);
    const deadline = Date.now() + 30_000;
    let revs: number[] = [];
    for (;;) {
      revs = await Promise.all(clients.map(async (c) => Number((await c.status()).header.revision)));
      if (revs.every((r) => r === revs[0] && r >= target)) break;
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    // Members that did not converge are compared where they all are, and their heads recorded as they stand.
    const rev = Math.min(...revs);
    for (const [k, i] of members.entries()) {
      const c = clients[k]!;
      const hk = await c.maintenance.hashKV(BigInt(rev));
      const read = await c.get(KEY_PREFIX, { prefix: true, serializable: true, revision: BigInt(rev) });
      rec.add({
        t: "final",
        member: i,
        head: revs[k]!,
        rev,
        hash: hk.hash,
        compactRev: Number(hk.compactRevision),
        kvs: read.kvs.map(kvOf),
      });
    }
  } finally {
    for (const c of clients) c.close();
  }
}
