// The seeded fault schedule: between quiet gaps, one fault at a time (kill -9 of the leader, a follower or every
// member; SIGSTOP/SIGCONT of the leader or a follower; a member cut off by the peer proxy; one direction of one
// link dropped; a clean member restart; a defragment; a follower removed and replaced by a new member added as
// a learner and promoted), each undone before the next, and everything healed at
// the end. Every fault is recorded with its start and end.
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { EtcdClient } from "../../core/client/index.js";
import { EtcdError } from "../../core/errors.js";
import type { PeerLinks } from "../targets/peer_proxy.js";
import { Rng } from "./rng.js";
import type { Recorder } from "./workload.js";
import { setTimeout as sleep } from "node:timers/promises";

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
export type FaultName = (typeof FAULTS)[number];
/** Faults that need at least two members. */
const MULTI: ReadonlySet<FaultName> = new Set([
  "kill-follower",
  "pause-follower",
  "partition-leader",
  "partition-follower",
  "drop-oneway",
  "replace-follower",
]);

export function parseFaults(s: string): FaultName[] {
  if (s === "all") return [...FAULTS];
  if (s === "none" || s === "") return [];
  const out = s.split(",").map((x) => x.trim());
  for (const f of out)
    if (!(FAULTS as readonly string[]).includes(f))
      throw new Error(`unknown fault ${JSON.stringify(f)}; use all, none or a list of ${FAULTS.join(", ")}`);
  return out as FaultName[];
}

export interface FaultOptions {
  readonly seed: number;
  readonly faults: readonly FaultName[];
  readonly members: number;
}

export class FaultInjector {
  private readonly rng: Rng;
  private readonly paused = new Set<number>();
  /** The members in the cluster now (indexes into the launcher's list; a replaced member leaves, its successor joins). */
  private active: number[];

  constructor(
    private readonly cluster: EtcdCluster,
    private readonly links: PeerLinks,
    private readonly rec: Recorder,
    private readonly opts: FaultOptions,
  ) {
    this.rng = Rng.derive(opts.seed, 2000);
    this.active = [...Array(opts.members).keys()];
  }

  get members(): readonly number[] {
    return this.active;
  }

  /** run injects faults until stop() says so. */
  async run(stop: () => boolean): Promise<void> {
    const usable = this.opts.faults.filter((f) => this.opts.members > 1 || !MULTI.has(f));
    if (usable.length === 0) return;
    while (!stop()) {
      await sleep(this.rng.int(800, 2_500));
      if (stop()) break;
      const name = this.rng.pick(usable);
      const start = this.rec.now();
      let members: number[] = [];
      try {
        members = await this.inject(name);
        this.rec.add({ t: "fault", name, members, start, end: this.rec.now() });
      } catch (err) {
        this.rec.add({ t: "fault", name, members, start, end: this.rec.now(), error: String(err).slice(0, 300) });
        await this.healAll();
      }
    }
  }

  private async leaderOr(fallback: number): Promise<number> {
    const l = await this.cluster.leaderIndex(500);
    return l >= 0 && this.active.includes(l) ? l : fallback;
  }

  private async follower(): Promise<number> {
    const leader = await this.cluster.leaderIndex(500);
    const others = this.active.filter((i) => i !== leader);
    return this.rng.pick(others);
  }

  private hold(): Promise<void> {
    return sleep(this.rng.int(500, 2_500));
  }

  /** inject applies one fault, holds it, undoes it; resolves the members it touched. */
  private async inject(name: FaultName): Promise<number[]> {
    const c = this.cluster;
    switch (name) {
      case "kill-leader":
      case "kill-follower": {
        const i = name === "kill-leader" ? await this.leaderOr(this.active[0]!) : await this.follower();
        await c.kill(i, "SIGKILL");
        await this.hold();
        await c.restart(i);
        return [i];
      }
      case "kill-all": {
        const all = [...this.active];
        await Promise.all(all.map((i) => c.kill(i, "SIGKILL")));
        await this.hold();
        await Promise.all(all.map((i) => c.restart(i, { wait: false })));
        await Promise.all(all.map((i) => c.waitReady(i, 30_000)));
        return all;
      }
      case "pause-leader":
      case "pause-follower": {
        const i = name === "pause-leader" ? await this.leaderOr(this.active[0]!) : await this.follower();
        this.signal(i, "SIGSTOP");
        await this.hold();
        this.signal(i, "SIGCONT");
        return [i];
      }
      case "partition-leader":
      case "partition-follower": {
        const i = name === "partition-leader" ? await this.leaderOr(this.active[0]!) : await this.follower();
        this.links.isolate(i);
        await this.hold();
        this.links.healAll();
        return [i];
      }
      case "drop-oneway": {
        const src = this.rng.next() < 0.5 ? await this.leaderOr(this.active[0]!) : this.rng.pick(this.active);
        const dst = this.rng.pick(this.active.filter((j) => j !== src));
        this.links.drop(src, dst);
        await this.hold();
        this.links.healAll();
        return [src, dst];
      }
      case "restart": {
        const i = this.rng.pick(this.active);
        await c.kill(i, "SIGTERM");
        await c.restart(i);
        return [i];
      }
      case "defrag": {
        const i = this.rng.pick(this.active);
        const client = new EtcdClient({ endpoints: [c.endpoint(i)], callTimeoutMs: 10_000 });
        try {
          await client.maintenance.defragment({ timeoutMs: 10_000 });
        } finally {
          client.close();
        }
        return [i];
      }
      case "replace-follower":
        return this.replaceFollower();
    }
  }

  /**
   * replaceFollower removes a follower through the Cluster API, adds a fresh member as a learner (new data dir:
   * it catches up from the leader, by snapshot when the log was compacted) and promotes it once it is in sync.
   */
  private async replaceFollower(): Promise<number[]> {
    const c = this.cluster;
    const i = await this.follower();
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
