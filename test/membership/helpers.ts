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

/** An in-memory WriteView (for property tests that build thousands of clusters; LMDB is covered elsewhere). */
export class MemoryView {
  private readonly buckets = new Map<string, Map<string, { key: Uint8Array; value: Uint8Array }>>();

  private bucket(name: string): Map<string, { key: Uint8Array; value: Uint8Array }> {
    let b = this.buckets.get(name);
    if (b === undefined) {
      b = new Map();
      this.buckets.set(name, b);
    }
    return b;
  }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    return this.bucket(bucket).get(Buffer.from(key).toString("hex"))?.value;
  }

  *range(bucket: string): Iterable<{ key: Uint8Array; value: Uint8Array }> {
    const entries = [...this.bucket(bucket).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [, e] of entries) yield e;
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.bucket(bucket).set(Buffer.from(key).toString("hex"), { key: key.slice(), value: value.slice() });
  }

  del(bucket: string, key: Uint8Array): void {
    this.bucket(bucket).delete(Buffer.from(key).toString("hex"));
  }
}
