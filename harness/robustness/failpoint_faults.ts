// Failpoint crashes (etcd-ts only): a member is armed through its --experimental-failpoints endpoint so that its
// process kills itself (SIGKILL, as kill -9) at one chosen place of the storage path, and then that place is made
// to run: the workload's writes for the WAL and backend points, enough writes for a snapshot and a WAL release,
// a defragment for the defrag rename, and for a snapshot install a follower cut off until the leader's log has
// moved past it. The member's exit status proves the failpoint fired; the schedule then restarts it.
import { request } from "node:http";
import { EtcdClient } from "../../core/client/index.js";
import { FAILPOINTS, type FailpointName } from "../../core/failpoints.js";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import type { PeerLinks } from "../targets/peer_proxy.js";
import type { Rng } from "./rng.js";
import { setTimeout as sleep } from "node:timers/promises";

export const FAILPOINT_FAULTS = ["failpoint-leader", "failpoint-follower"] as const;
export type FailpointFault = (typeof FAILPOINT_FAULTS)[number];

/** Entries between two snapshots, and entries kept before a snapshot for slow followers (small: points fire). */
const SNAPSHOT_COUNT = 100;
const CATCH_UP_ENTRIES = 20;

/**
 * The etcd-ts flags a run with failpoint faults adds: the arming endpoint, and snapshots, log compaction and WAL
 * segment releases frequent enough that their failpoints are reached within seconds.
 */
export const FAILPOINT_FLAGS: readonly string[] = [
  "--experimental-failpoints",
  "--snapshot-count",
  String(SNAPSHOT_COUNT),
  "--experimental-snapshot-catchup-entries",
  String(CATCH_UP_ENTRIES),
  "--experimental-wal-segment-bytes",
  "8192",
];

type Trigger = "writes" | "snapshot" | "install" | "defrag";

/** What makes each failpoint run, and the highest hit count drawn (the kill comes at a hit from 1 to it). */
const TRIGGERS: Readonly<Record<FailpointName, { readonly trigger: Trigger; readonly maxHit: number }>> = {
  "wal-before-save": { trigger: "writes", maxHit: 30 },
  "wal-after-save": { trigger: "writes", maxHit: 30 },
  "snap-before-save": { trigger: "snapshot", maxHit: 2 },
  "snap-after-save": { trigger: "snapshot", maxHit: 2 },
  "wal-after-release": { trigger: "snapshot", maxHit: 2 },
  "backend-before-commit": { trigger: "writes", maxHit: 30 },
  "backend-after-commit": { trigger: "writes", maxHit: 30 },
  "snap-install-mid": { trigger: "install", maxHit: 1 },
  "defrag-before-rename": { trigger: "defrag", maxHit: 1 },
};

/** How long each trigger may take to reach its failpoint before the fault gives up (and disarms it). */
const FIRE_TIMEOUT_MS: Readonly<Record<Trigger, number>> = {
  writes: 15_000,
  snapshot: 25_000,
  install: 10_000,
  defrag: 10_000,
};
/** The longest a follower stays cut off waiting for the others to move a snapshot past it. */
const CUT_OFF_MAX_MS = 20_000;

export interface FailpointPlan {
  readonly point: FailpointName;
  /** The process dies at this hit of the point, counted from arming. */
  readonly hit: number;
}

/** The failpoints a role can die at: only a follower is sent a snapshot to install. */
export function failpointsFor(role: "leader" | "follower"): FailpointName[] {
  return FAILPOINTS.filter((p) => role === "follower" || TRIGGERS[p].trigger !== "install");
}

/** planFailpoint draws the point and the hit (two draws from rng, whatever they are). */
export function planFailpoint(rng: Rng, role: "leader" | "follower"): FailpointPlan {
  const point = rng.pick(failpointsFor(role));
  return { point, hit: rng.int(1, TRIGGERS[point].maxHit) };
}

export interface FailpointCrash {
  readonly point: FailpointName;
  readonly hit: number;
  /** How the member's process ended ("SIGKILL" when the failpoint fired). */
  readonly exit: string;
  /** Milliseconds from arming to the exit. */
  readonly firedAfterMs: number;
}

export interface CrashContext {
  readonly cluster: EtcdCluster;
  readonly links: PeerLinks;
  /** The members in the cluster now. */
  readonly active: readonly number[];
  /** The run is over: the workload no longer writes, so a point waiting for writes will not be reached. */
  readonly stop: () => boolean;
}

/**
 * crashAtFailpoint arms plan's point on member i, makes it run and resolves once the process is dead by the
 * failpoint's SIGKILL. Throws (after disarming) when the point was not reached in time, and when the process
 * ended any other way, which is a bug of its own.
 */
export async function crashAtFailpoint(ctx: CrashContext, i: number, plan: FailpointPlan): Promise<FailpointCrash> {
  const { cluster } = ctx;
  const port = clientPort(cluster.endpoint(i));
  const trigger = TRIGGERS[plan.point].trigger;
  const armedAt = Date.now();
  await putFailpoints(port, `${plan.point}=kill@${plan.hit}`);
  if (trigger === "defrag") void defragment(cluster.endpoint(i));
  if (trigger === "install") await cutOffUntilBehind(ctx, i, armedAt + CUT_OFF_MAX_MS);
  const deadline = Date.now() + FIRE_TIMEOUT_MS[trigger];
  const dead = await waitExit(cluster, i, deadline, trigger === "defrag" ? () => false : ctx.stop);
  if (!dead) {
    await putFailpoints(port, `${plan.point}=off`).catch(() => undefined);
    throw new Error(
      `failpoint ${plan.point}@${plan.hit} on m${i} not reached (${ctx.stop() ? "run over" : "timeout"})`,
    );
  }
  const st = cluster.exitStatus(i);
  const exit = st === undefined ? "unknown" : (st.signal ?? `code ${st.code}`);
  if (exit !== "SIGKILL")
    throw new Error(`m${i} ended with ${exit}, not at failpoint ${plan.point}: ${cluster.stderrTail(i).slice(-400)}`);
  return { point: plan.point, hit: plan.hit, exit, firedAfterMs: Date.now() - armedAt };
}

/**
 * cutOffUntilBehind isolates follower i until the others' raft index is far enough ahead that the leader has
 * compacted the entries i lacks (so it must send a snapshot), then heals the links.
 */
async function cutOffUntilBehind(ctx: CrashContext, i: number, deadline: number): Promise<void> {
  const { cluster, links } = ctx;
  const others = ctx.active.filter((j) => j !== i);
  links.isolate(i);
  try {
    const behind = await raftIndex(cluster, i);
    const wanted = behind + SNAPSHOT_COUNT + CATCH_UP_ENTRIES * 2;
    while (Date.now() < deadline && !ctx.stop()) {
      const ahead = Math.max(...(await Promise.all(others.map((j) => raftIndex(cluster, j)))));
      if (ahead >= wanted) return;
      await sleep(200);
    }
  } finally {
    links.healAll();
  }
}

async function raftIndex(cluster: EtcdCluster, i: number): Promise<number> {
  try {
    return Number((await cluster.status(i, 1_000)).raftIndex);
  } catch {
    return 0;
  }
}

/** defragment asks member i to defragment; the member dying mid-call is the expected answer. */
async function defragment(endpoint: string): Promise<void> {
  const client = new EtcdClient({ endpoints: [endpoint], callTimeoutMs: 10_000 });
  try {
    await client.maintenance.defragment({ timeoutMs: 10_000 });
  } catch {
    // the process was killed at the rename, or the call timed out: waitExit tells which
  } finally {
    client.close();
  }
}

/** waitExit polls until member i's process has ended (true) or the deadline or `giveUp` comes (false). */
async function waitExit(cluster: EtcdCluster, i: number, deadline: number, giveUp: () => boolean): Promise<boolean> {
  while (cluster.isRunning(i)) {
    if (Date.now() > deadline || giveUp()) return false;
    await sleep(50);
  }
  return true;
}

function clientPort(endpoint: string): number {
  const port = Number(/:(\d+)$/.exec(endpoint)?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in endpoint ${endpoint}`);
  return port;
}

/** putFailpoints arms or disarms failpoints through PUT /debug/failpoints on a member's client port. */
export function putFailpoints(port: number, spec: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "PUT", path: "/debug/failpoints", timeout: 5_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`arm ${spec}: HTTP ${res.statusCode} ${body}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`arm ${spec} on port ${port}: no answer in 5 s`)));
    req.on("error", reject);
    req.end(spec);
  });
}
