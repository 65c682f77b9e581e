// The seeded fault schedule: between quiet gaps, one fault at a time (kill -9 of the leader, a follower or every
// member; SIGSTOP/SIGCONT of the leader or a follower; a member cut off by the peer proxy; one direction of one
// link dropped; a clean member restart; a defragment; a follower removed and replaced by a new member added as
// a learner and promoted; on etcd-ts, the leader or a follower killed at a storage failpoint), each undone before
// the next, and everything healed at the end. Every random choice of a fault is drawn before it starts, so the
// seed alone fixes the schedule (faultSchedule lists it); which member a choice lands on depends on who leads
// then. Every fault is recorded with its start and end.
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import type { ClusterKind } from "../targets/make.js";
import { EtcdClient } from "../../core/client/index.js";
import { EtcdError } from "../../core/errors.js";
import { crashAtFailpoint, FAILPOINT_FAULTS, planFailpoint, type FailpointPlan } from "./failpoint_faults.js";
import type { FailpointNote } from "./history.js";
import type { PeerLinks } from "../targets/peer_proxy.js";
import { Rng } from "./rng.js";
import type { Recorder } from "./workload.js";
import { setTimeout as sleep } from "node:timers/promises";

/** The faults every target supports; `--faults all` means these. */
export const FAULTS = [
  "kill-leader",
  "kill-follower",
  "kill-all",
  "pause-leader",
  "pause-follower",
  "partition-leader",
  "partition-follower",
  "drop-oneway",
  "restart",
  "defrag",
  "replace-follower",
] as const;
/** Every fault name: the common ones and the etcd-ts failpoint crashes (`--faults failpoints`). */
export const ALL_FAULTS = [...FAULTS, ...FAILPOINT_FAULTS] as const;
export type FaultName = (typeof ALL_FAULTS)[number];
/** Faults that need at least two members. */
const MULTI: ReadonlySet<FaultName> = new Set([
  "kill-follower",
  "pause-follower",
  "partition-leader",
  "partition-follower",
  "drop-oneway",
  "replace-follower",
  "failpoint-follower",
]);

/** usesFailpoints: the faults include a failpoint crash (the cluster then needs etcd-ts's failpoint flags). */
export function usesFailpoints(faults: readonly FaultName[]): boolean {
  return faults.some((f) => (FAILPOINT_FAULTS as readonly string[]).includes(f));
}

/** refuseFailpoints throws when failpoint faults are asked of a target that has no failpoints. */
export function refuseFailpoints(target: ClusterKind, faults: readonly FaultName[]): void {
  if (target !== "etcd-ts" && usesFailpoints(faults))
    throw new Error(
      `${faults.filter((f) => (FAILPOINT_FAULTS as readonly string[]).includes(f)).join(", ")}: failpoint faults need etcd-ts (its --experimental-failpoints); real etcd 3.4 has none`,
    );
}

/** parseFaults reads --faults: all (the common faults), none, failpoints, or a comma list of names and those words. */
export function parseFaults(s: string, target: ClusterKind = "etcd-ts"): FaultName[] {
  const out: FaultName[] = [];
  for (const word of s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "" && x !== "none")) {
    if (word === "all") out.push(...FAULTS);
    else if (word === "failpoints") out.push(...FAILPOINT_FAULTS);
    else if ((ALL_FAULTS as readonly string[]).includes(word)) out.push(word as FaultName);
    else
      throw new Error(
        `unknown fault ${JSON.stringify(word)}; use all, none, failpoints or a list of ${ALL_FAULTS.join(", ")}`,
      );
  }
  const unique = [...new Set(out)];
  refuseFailpoints(target, unique);
  return unique;
}

/**
 * One fault of the schedule with its random choices. `pick` and `pickDst` are uniform draws in [0, 1) that choose
 * a member among the candidates at that moment (a follower of whoever leads then, say).
 */
export interface FaultStep {
  /** Quiet time before the fault. */
  readonly gapMs: number;
  readonly name: FaultName;
  readonly pick?: number;
  readonly pickDst?: number;
  /** drop-oneway: the dropped link starts at the leader (else at the member `pick` chooses). */
  readonly fromLeader?: boolean;
  /** How long the fault is held before it is undone. */
  readonly holdMs?: number;
  readonly failpoint?: FailpointPlan;
}

/** drawStep draws the next fault and its choices, in the order the schedule has always drawn them. */
export function drawStep(rng: Rng, usable: readonly FaultName[]): FaultStep {
  const gapMs = rng.int(800, 2_500);
  const name = rng.pick(usable);
  const hold = (): number => rng.int(500, 2_500);
  switch (name) {
    case "kill-leader":
    case "kill-all":
    case "pause-leader":
    case "partition-leader":
      return { gapMs, name, holdMs: hold() };
    case "kill-follower":
    case "pause-follower":
    case "partition-follower": {
      const pick = rng.next();
      return { gapMs, name, pick, holdMs: hold() };
    }
    case "drop-oneway": {
      const fromLeader = rng.next() < 0.5;
      const pick = fromLeader ? undefined : rng.next();
      const pickDst = rng.next();
      return { gapMs, name, fromLeader, ...(pick === undefined ? {} : { pick }), pickDst, holdMs: hold() };
    }
    case "restart":
    case "defrag":
    case "replace-follower":
      return { gapMs, name, pick: rng.next() };
    case "failpoint-leader":
      return { gapMs, name, failpoint: planFailpoint(rng, "leader"), holdMs: hold() };
    case "failpoint-follower": {
      const pick = rng.next();
      return { gapMs, name, pick, failpoint: planFailpoint(rng, "follower"), holdMs: hold() };
    }
  }
}

/** usableFaults: the faults a cluster of `members` can take. */
function usableFaults(faults: readonly FaultName[], members: number): FaultName[] {
  return faults.filter((f) => members > 1 || !MULTI.has(f));
}

/** faultSchedule lists the first n steps the schedule of `seed` takes (what a run injects, if it lasts). */
export function faultSchedule(opts: FaultOptions, n: number): FaultStep[] {
  const rng = scheduleRng(opts.seed);
  const usable = usableFaults(opts.faults, opts.members);
  if (usable.length === 0) return [];
  return Array.from({ length: n }, () => drawStep(rng, usable));
}

function scheduleRng(seed: number): Rng {
  return Rng.derive(seed, 2000);
}

/** choose: the item a uniform draw u in [0, 1) lands on. */
function choose<T>(u: number | undefined, items: readonly T[]): T {
  if (items.length === 0) throw new Error("choose from an empty list");
  return items[Math.min(items.length - 1, Math.floor((u ?? 0) * items.length))]!;
}

export interface FaultOptions {
  readonly seed: number;
  readonly faults: readonly FaultName[];
  readonly members: number;
}

/** What a fault touched, filled in as it goes so that a fault that fails midway still says it. */
interface FaultNote {
  members: number[];
  failpoint?: FailpointNote;
}

export class FaultInjector {
  private readonly rng: Rng;
  private readonly paused = new Set<number>();
  /** The members in the cluster now (indexes into the launcher's list; a replaced member leaves, its successor joins). */
  private active: number[];
  private stop: () => boolean = () => false;

  constructor(
    private readonly cluster: EtcdCluster,
    private readonly links: PeerLinks,
    private readonly rec: Recorder,
    private readonly opts: FaultOptions,
  ) {
    this.rng = scheduleRng(opts.seed);
    this.active = [...Array(opts.members).keys()];
  }

  get members(): readonly number[] {
    return this.active;
  }

  /** run injects faults until stop() says so. */
  async run(stop: () => boolean): Promise<void> {
    this.stop = stop;
    const usable = usableFaults(this.opts.faults, this.opts.members);
    if (usable.length === 0) return;
    while (!stop()) {
      const step = drawStep(this.rng, usable);
      await sleep(step.gapMs);
      if (stop()) break;
      const name = step.name;
      const start = this.rec.now();
      const note: FaultNote = { members: [] };
      try {
        await this.inject(step, note);
        this.rec.add({ t: "fault", name, ...note, start, end: this.rec.now() });
      } catch (err) {
        this.rec.add({ t: "fault", name, ...note, start, end: this.rec.now(), error: String(err).slice(0, 300) });
        await this.healAll();
      }
    }
  }

  private async leaderOr(fallback: number): Promise<number> {
    const l = await this.cluster.leaderIndex(500);
    return l >= 0 && this.active.includes(l) ? l : fallback;
  }

  private async follower(u: number | undefined): Promise<number> {
    const leader = await this.cluster.leaderIndex(500);
    const others = this.active.filter((i) => i !== leader);
    return choose(u, others);
  }

  /** inject applies one fault, holds it, undoes it; notes the members it touched. */
  private async inject(step: FaultStep, note: FaultNote): Promise<void> {
    const c = this.cluster;
    const hold = (): Promise<void> => sleep(step.holdMs ?? 0);
    const touch = (...ids: number[]): void => {
      note.members.push(...ids);
    };
    switch (step.name) {
      case "kill-leader":
      case "kill-follower": {
        const i = step.name === "kill-leader" ? await this.leaderOr(this.active[0]!) : await this.follower(step.pick);
        touch(i);
        await c.kill(i, "SIGKILL");
        await hold();
        await c.restart(i);
        return;
      }
      case "kill-all": {
        const all = [...this.active];
        touch(...all);
        await Promise.all(all.map((i) => c.kill(i, "SIGKILL")));
        await hold();
        await Promise.all(all.map((i) => c.restart(i, { wait: false })));
        await Promise.all(all.map((i) => c.waitReady(i, 30_000)));
        return;
      }
      case "pause-leader":
      case "pause-follower": {
        const i = step.name === "pause-leader" ? await this.leaderOr(this.active[0]!) : await this.follower(step.pick);
        touch(i);
        this.signal(i, "SIGSTOP");
        await hold();
        this.signal(i, "SIGCONT");
        return;
      }
      case "partition-leader":
      case "partition-follower": {
        const i =
          step.name === "partition-leader" ? await this.leaderOr(this.active[0]!) : await this.follower(step.pick);
        touch(i);
        this.links.isolate(i);
        await hold();
        this.links.healAll();
        return;
      }
      case "drop-oneway": {
        const src = step.fromLeader === true ? await this.leaderOr(this.active[0]!) : choose(step.pick, this.active);
        const dst = choose(
          step.pickDst,
          this.active.filter((j) => j !== src),
        );
        touch(src, dst);
        this.links.drop(src, dst);
        await hold();
        this.links.healAll();
        return;
      }
      case "restart": {
        const i = choose(step.pick, this.active);
        touch(i);
        await c.kill(i, "SIGTERM");
        await c.restart(i);
        return;
      }
      case "defrag": {
        const i = choose(step.pick, this.active);
        touch(i);
        const client = new EtcdClient({ endpoints: [c.endpoint(i)], callTimeoutMs: 10_000 });
        try {
          await client.maintenance.defragment({ timeoutMs: 10_000 });
        } finally {
          client.close();
        }
        return;
      }
      case "replace-follower":
        touch(...(await this.replaceFollower(step.pick)));
        return;
      case "failpoint-leader":
      case "failpoint-follower":
        return this.failpointCrash(step, note);
    }
  }

  /** failpointCrash kills the leader or a follower at the step's failpoint, holds it down, restarts it. */
  private async failpointCrash(step: FaultStep, note: FaultNote): Promise<void> {
    const i = step.name === "failpoint-leader" ? await this.leaderOr(this.active[0]!) : await this.follower(step.pick);
    const plan = step.failpoint;
    if (plan === undefined) throw new Error(`${step.name} without a failpoint plan`);
    note.members.push(i);
    note.failpoint = { point: plan.point, hit: plan.hit };
    const ctx = { cluster: this.cluster, links: this.links, active: this.active, stop: this.stop };
    note.failpoint = await crashAtFailpoint(ctx, i, plan);
    await sleep(step.holdMs ?? 0);
    await this.cluster.restart(i);
  }

  /**
   * replaceFollower removes a follower through the Cluster API, adds a fresh member as a learner (new data dir:
   * it catches up from the leader, by snapshot when the log was compacted) and promotes it once it is in sync.
   */
  private async replaceFollower(pick: number | undefined): Promise<number[]> {
    const c = this.cluster;
    const i = await this.follower(pick);
    const rest = this.active.filter((j) => j !== i);
    const client = new EtcdClient({ endpoints: rest.map((j) => c.endpoint(j)), callTimeoutMs: 5_000 });
    try {
      const id = (await c.status(i, 2_000)).header.memberId;
      await retryWhile(() => client.cluster.memberRemove(id), "UNHEALTHY", 10_000);
      this.active = rest;
      await c.forget(i);
      const { index, peerUrl } = await c.prepareJoin();
      const added = await client.cluster.memberAdd([peerUrl], { isLearner: true });
      this.links.ids.set(added.member.id.toString(16), index);
      await c.startJoin(index);
      // etcd refuses to promote a learner that has not caught up with the leader yet.
      await retryWhile(() => client.cluster.memberPromote(added.member.id), "LEARNER_NOT_READY", 20_000);
      this.active = [...rest, index];
      return [i, index];
    } finally {
      client.close();
    }
  }

  private signal(i: number, sig: "SIGSTOP" | "SIGCONT"): void {
    if (!this.cluster.isRunning(i)) return;
    this.cluster.signal(i, sig);
    if (sig === "SIGSTOP") this.paused.add(i);
    else this.paused.delete(i);
  }

  /** healAll undoes every fault: links healed, paused members resumed, dead members restarted. */
  async healAll(): Promise<void> {
    this.links.healAll();
    for (const i of [...this.paused]) this.signal(i, "SIGCONT");
    const dead = this.active.filter((i) => !this.cluster.isRunning(i));
    await Promise.all(dead.map((i) => this.cluster.restart(i, { wait: false })));
    await Promise.all(this.active.map((i) => this.cluster.waitReady(i, 30_000)));
  }
}

/**
 * retryWhile repeats call while it fails with etcd error `code`, up to timeoutMs. etcd refuses to remove a voter
 * while a member has been up for less than its health interval ("unhealthy cluster"), as after a restart fault.
 */
async function retryWhile<T>(call: () => Promise<T>, code: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline || !(err instanceof EtcdError && err.code === code)) throw err;
      await sleep(300);
    }
  }
}
