// Shared setup for the membership tests: a temp LMDB backend with the membership buckets and a Cluster loaded from
// it; apply steps run in one write transaction each, as the server's batch would run them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Backend } from "../../core/backend/backend.js";
import type { WriteView } from "../../core/backend/read_view.js";
import { Cluster, MEMBERSHIP_BUCKETS, type Member } from "../../core/membership/cluster.js";

export class MembershipHarness {
  readonly dir: string;
  backend: Backend;
  cluster: Cluster;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "membership-"));
    this.backend = Backend.open(this.dir, { buckets: MEMBERSHIP_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
    this.cluster = this.backend.readNow((view) => Cluster.load(view));
  }

  apply(fn: (tx: WriteView, c: Cluster) => void): Promise<void> {
    return this.backend.batch(undefined, (tx) => fn(tx, this.cluster));
  }

  /** Closes and reopens the backend and loads a fresh Cluster from it (a restart). */
  async reopen(): Promise<void> {
    await this.backend.close();
    this.backend = Backend.open(this.dir, { buckets: MEMBERSHIP_BUCKETS, readWorkers: 0, syncIntervalMs: 0 });
    this.cluster = this.backend.readNow((view) => Cluster.load(view));
  }

  async close(): Promise<void> {
    await this.backend.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A member with one peer URL on port 2380 + n and id n (tests pick ids; the server derives them). */
export function member(n: number, o: { learner?: boolean; started?: boolean } = {}): Member {
  return {
    id: BigInt(n),
    name: o.started === false ? "" : `m${n}`,
    peerUrls: [`http://127.0.0.1:${2380 + n}`],
    clientUrls: o.started === false ? [] : [`http://127.0.0.1:${3380 + n}`],
    isLearner: o.learner ?? false,
  };
}

/** Runs fn and returns the EtcdError code (or the error name) it threw; undefined when it did not throw. */
export function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    const e = err as { code?: string; name?: string };
    return e.code ?? e.name ?? "unknown";
  }
}
