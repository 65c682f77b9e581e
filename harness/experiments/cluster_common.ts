// What the cluster experiments share: the --targets list (real etcd and/or etcd-ts clusters), a results dir under
// results/cluster/ whose env.json carries the command that made it, starting a cluster or saying why it could
// not be measured, a background write load that records every call (for unavailability windows and P99s), and
// the leader-change / term readings from each member.
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "csv-stringify/sync";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import { machineEnv } from "../results.js";
import type { EtcdCluster, EtcdClusterOptions } from "../targets/etcd_cluster.js";
import { CLUSTER_KINDS, makeCluster, type ClusterKind } from "../targets/make.js";
import type { Args } from "./common.js";
import { setTimeout as pause } from "node:timers/promises";

/** How long withCluster waits for each member to serve with a leader. */
const CLUSTER_START_TIMEOUT_MS = 60_000;

export const LEADER_CHANGES_METRIC = "etcd_server_leader_changes_seen_total";

export const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** clusterKinds reads --targets (default "etcd,etcd-ts"). */
export function clusterKinds(args: Args): ClusterKind[] {
  const list = (args.get("targets") ?? "etcd,etcd-ts").split(",").filter((t) => t.length > 0);
  for (const t of list) {
    if (!(CLUSTER_KINDS as readonly string[]).includes(t))
      throw new Error(`--targets takes ${CLUSTER_KINDS.join(", ")}; got ${JSON.stringify(t)}`);
  }
  return list as ClusterKind[];
}

/** clusterResultsDir makes results/cluster/<timestamp>-<name>/ (or under --results). */
export function clusterResultsDir(name: string, args: Args): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, "-")
    .replace(/-\d{3}Z$/, "Z");
  const dir = join(args.get("results") ?? resolve("results/cluster"), `${stamp}-${name}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** commandLine is how to run the experiment again with the same arguments. */
export function commandLine(name: string, argv: readonly string[]): string {
  return ["npm run bench --", name, ...argv].join(" ");
}

export interface TargetOutcome {
  readonly name: string;
  readonly describe: string;
  readonly version: string;
  readonly available: boolean;
  readonly reason?: string;
}

/** writeRun writes `file` (CSV of rows) and env.json (command, machine, targets, settings, notes). */
export function writeRun(
  dir: string,
  file: string,
  rows: readonly Record<string, unknown>[],
  env: {
    experiment: string;
    argv: readonly string[];
    targets: readonly TargetOutcome[];
    settings: unknown;
    notes: readonly string[];
    startedAt: string;
  },
): void {
  const columns = Object.keys(rows[0] ?? { target: "" });
  writeFileSync(
    join(dir, file),
    stringify(rows as Record<string, unknown>[], { header: true, columns, cast: { boolean: (b) => String(b) } }),
  );
  writeFileSync(
    join(dir, "env.json"),
    JSON.stringify(
      {
        ...machineEnv(),
        experiment: env.experiment,
        command: commandLine(env.experiment, env.argv),
        startedAt: env.startedAt,
        loadAverageAtEnd: loadavg().map((v) => round(v, 2)),
        targets: env.targets,
        settings: env.settings,
        notes: env.notes,
      },
      null,
      2,
    ) + "\n",
  );
}

/**
 * withCluster starts a `kind` cluster, runs body and stops it. A cluster that is not built or does not start is
 * an outcome with the reason (never a number); a failure inside body is reported too, after the stop.
 */
export async function withCluster<T>(
  kind: ClusterKind,
  size: number,
  opts: Parameters<typeof makeCluster>[2],
  body: (cluster: EtcdCluster) => Promise<T>,
): Promise<{ outcome: TargetOutcome; value: T | undefined }> {
  // A loaded 2-core machine can take etcd-ts members well over the 20 s default to come up.
  const slot = makeCluster(kind, size, { startTimeoutMs: CLUSTER_START_TIMEOUT_MS, ...opts });
  if (slot.target === undefined) {
    console.error(`${slot.name}: not measured — ${slot.reason ?? ""}`);
    return {
      outcome: { name: slot.name, describe: "", version: "", available: false, reason: slot.reason ?? "" },
      value: undefined,
    };
  }
  const cluster = slot.target;
  try {
    console.error(`${slot.name}: starting ${size} members`);
    try {
      await cluster.start();
    } catch (err) {
      const reason = `did not start: ${String(err).replace(/\s+/g, " ").slice(0, 400)}`;
      console.error(`${slot.name}: not measured — ${reason}`);
      return {
        outcome: { name: slot.name, describe: cluster.describe, version: "", available: false, reason },
        value: undefined,
      };
    }
    const value = await body(cluster);
    return {
      outcome: { name: slot.name, describe: cluster.describe, version: cluster.version(), available: true },
      value,
    };
  } finally {
    await cluster.stop();
  }
}

export type ClusterOpts = Omit<EtcdClusterOptions, "bin" | "prefixArgs" | "name" | "label" | "faults"> & {
  readonly faults?: boolean;
};

/** leaderChanges reads etcd_server_leader_changes_seen_total from member i (-1 when unreadable). */
export async function leaderChanges(cluster: EtcdCluster, i: number): Promise<number> {
  try {
    return (await cluster.metricValue(i, LEADER_CHANGES_METRIC)) ?? -1;
  } catch {
    return -1;
  }
}

/**
 * termOf is member i's raft term: the higher of Status's raft_term and the last "became … at term N" it logged
 * (real etcd's Status term only moves when an entry is applied, so a member campaigning alone does not show it).
 */
export async function termOf(cluster: EtcdCluster, i: number): Promise<number> {
  const logged = cluster.loggedTerm(i);
  try {
    return Math.max(logged, Number((await cluster.status(i)).raftTerm));
  } catch {
    return logged > 0 ? logged : -1;
  }
}

/** One finished call of a WriteLoad: ms since the load's t0 when sent and done; code when it failed. */
export interface CallRecord {
  readonly sentMs: number;
  readonly doneMs: number;
  readonly code: string | undefined;
}

/**
 * WriteLoad: `writers` closed loops of 256 B puts, each op sent to the next allowed member (one EtcdClient per
 * member, no failover inside a client: a member that is down costs its calls, the next op goes elsewhere).
 * exclude(i) keeps the writers off a member about to be killed.
 */
export class WriteLoad {
  readonly calls: CallRecord[] = [];
  private readonly t0 = performance.now();
  private readonly clients = new Map<number, EtcdClient>();
  private readonly excluded = new Set<number>();
  /** Calls in flight per member index. */
  private readonly inflight = new Map<number, number>();
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: EtcdCluster,
    private readonly opts: { writers: number; callTimeoutMs: number; prefix: string },
  ) {}

  now(): number {
    return performance.now() - this.t0;
  }

  private client(i: number): EtcdClient {
    let c = this.clients.get(i);
    if (c === undefined) {
      c = new EtcdClient({
        endpoints: [this.cluster.endpoint(i)],
        callTimeoutMs: this.opts.callTimeoutMs,
        dialTimeoutMs: this.opts.callTimeoutMs,
      });
      this.clients.set(i, c);
    }
    return c;
  }

  /** members the writers use: every started member not excluded (learners and removed ones are excluded by the caller). */
  private pick(n: number): number | undefined {
    const ok: number[] = [];
    for (let i = 0; i < this.cluster.memberCount; i++) if (!this.excluded.has(i)) ok.push(i);
    return ok.length === 0 ? undefined : ok[n % ok.length];
  }

  exclude(i: number): void {
    this.excluded.add(i);
  }

  /** drain excludes member i and resolves once none of the writers' calls to it is in flight (or after maxMs). */
  async drain(i: number, maxMs = 10_000): Promise<void> {
    this.exclude(i);
    const end = this.now() + maxMs;
    while ((this.inflight.get(i) ?? 0) > 0 && this.now() < end) await pause(5);
  }

  include(i: number): void {
    this.excluded.delete(i);
  }

  start(): void {
    const value = Buffer.alloc(256, "w");
    this.loops = Array.from({ length: this.opts.writers }, async (_, w) => {
      for (let n = w; this.running; n++) {
        const at = this.pick(n);
        if (at === undefined) {
          await pause(10);
          continue;
        }
        const sentMs = this.now();
        this.inflight.set(at, (this.inflight.get(at) ?? 0) + 1);
        try {
          await this.client(at).put(`${this.opts.prefix}${w}/${n % 100}`, value);
          this.calls.push({ sentMs, doneMs: this.now(), code: undefined });
        } catch (err) {
          this.calls.push({ sentMs, doneMs: this.now(), code: errorCode(err) });
          await pause(10);
        } finally {
          this.inflight.set(at, (this.inflight.get(at) ?? 1) - 1);
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** waitWriteAfter resolves once a write sent at or after `sinceMs` has succeeded, or after maxMs; says which. */
  async waitWriteAfter(sinceMs: number, maxMs: number): Promise<boolean> {
    const end = this.now() + maxMs;
    while (this.now() < end) {
      if (this.calls.some((c) => c.code === undefined && c.sentMs >= sinceMs)) return true;
      await pause(20);
    }
    return false;
  }

  /** longestGapMs is the longest stretch inside [fromMs, toMs] with no write completing successfully. */
  longestGapMs(fromMs: number, toMs: number): number {
    const done = this.calls
      .filter((c) => c.code === undefined && c.doneMs >= fromMs && c.doneMs <= toMs)
      .map((c) => c.doneMs)
      .sort((a, b) => a - b);
    let gap = 0,
      prev = fromMs;
    for (const t of done) {
      gap = Math.max(gap, t - prev);
      prev = t;
    }
    return Math.max(gap, toMs - prev);
  }

  /** errors counts failed calls completing in [fromMs, toMs], by code. */
  errors(fromMs: number, toMs: number): { count: number; byCode: string } {
    const by = new Map<string, number>();
    for (const c of this.calls)
      if (c.code !== undefined && c.doneMs >= fromMs && c.doneMs <= toMs) by.set(c.code, (by.get(c.code) ?? 0) + 1);
    return {
      count: [...by.values()].reduce((a, b) => a + b, 0),
      byCode: [...by].map(([c, n]) => `${c}:${n}`).join(" "),
    };
  }

  /** p99Ms of the successful calls sent in [fromMs, toMs), and how many there were. */
  latency(fromMs: number, toMs: number): { p99Ms: number; p50Ms: number; ok: number } {
    const ms = this.calls
      .filter((c) => c.code === undefined && c.sentMs >= fromMs && c.sentMs < toMs)
      .map((c) => c.doneMs - c.sentMs)
      .sort((a, b) => a - b);
    const at = (p: number): number =>
      ms.length === 0 ? 0 : ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
    return { p99Ms: round(at(99), 2), p50Ms: round(at(50), 2), ok: ms.length };
  }
}

/** flagArgs are the extra member flags from --heartbeat-ms/--election-ms when given (etcd's defaults otherwise). */
export function timingArgs(args: Args): string[] {
  const out: string[] = [];
  const hb = args.get("heartbeat-ms"),
    el = args.get("election-ms");
  if (hb !== undefined) out.push("--heartbeat-interval", hb);
  if (el !== undefined) out.push("--election-timeout", el);
  return out;
}
