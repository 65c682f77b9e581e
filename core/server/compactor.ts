// Auto-compaction as etcd 3.4 (--auto-compaction-mode, --auto-compaction-retention), on the leader only.
// - revision: every 5 minutes, compact at (current revision − retention) when that moved past the last one.
// - periodic: the retention is a window of time (a bare number means hours). The compactor records the current
//   revision every tenth of the interval, and every interval — the window itself when shorter than an hour,
//   else one hour — compacts at the newest revision recorded at least one window ago. The first compaction
//   comes one window after start. A failed compaction (already compacted) is not retried at a lower revision.
// The policy is a pure function of the clock and the revisions it is shown; the server drives it with a timer.
import type { ServerConfig } from "./server_config.js";

export const CompactionMode = { Periodic: "periodic", Revision: "revision" } as const;
export type CompactionMode = (typeof CompactionMode)[keyof typeof CompactionMode];

/** etcd's revision compactor runs every 5 minutes. */
export const REVISION_COMPACTION_INTERVAL_MS = 5 * 60 * 1000;
export const HOUR_MS = 60 * 60 * 1000;

export interface CompactionPolicy {
  readonly mode: CompactionMode;
  /** Periodic: the window in ms; revision: how many revisions to keep. 0 = off. */
  readonly retention: number;
}

/** Decides when and where to compact; `step` is called on every timer tick with the clock and revisions. */
export class Compactor {
  readonly policy: CompactionPolicy;
  readonly #samples: { atMs: number; rev: number }[] = [];
  #startMs: number | undefined;
  #nextRunMs = 0;
  #nextSampleMs = 0;
  #lastCompacted = 0;

  constructor(policy: CompactionPolicy) {
    this.policy = policy;
  }

  /** How often the periodic compactor acts: the window when under an hour, else every hour. */
  get intervalMs(): number {
    if (this.policy.mode === CompactionMode.Revision) return REVISION_COMPACTION_INTERVAL_MS;
    return Math.min(this.policy.retention, HOUR_MS);
  }

  /** Leadership lost: start over (etcd pauses the compactor on followers and resumes with fresh records). */
  reset(): void {
    this.#startMs = undefined;
    this.#samples.length = 0;
  }

  /** Returns the revision to compact at now, or undefined. `compacted` is the store's compacted revision. */
  step(nowMs: number, currentRev: number, compacted: number): number | undefined {
    this.#lastCompacted = Math.max(this.#lastCompacted, compacted);
    if (this.#startMs === undefined) {
      this.#startMs = nowMs;
      this.#nextSampleMs = nowMs;
      this.#nextRunMs =
        nowMs +
        (this.policy.mode === CompactionMode.Revision ? REVISION_COMPACTION_INTERVAL_MS : this.policy.retention);
    }
    return this.policy.mode === CompactionMode.Revision
      ? this.#stepRevision(nowMs, currentRev)
      : this.#stepPeriodic(nowMs, currentRev);
  }

  #stepRevision(nowMs: number, currentRev: number): number | undefined {
    if (nowMs < this.#nextRunMs) return undefined;
    this.#nextRunMs = nowMs + REVISION_COMPACTION_INTERVAL_MS;
    const rev = currentRev - this.policy.retention;
    return this.#take(rev);
  }

  #stepPeriodic(nowMs: number, currentRev: number): number | undefined {
    if (nowMs >= this.#nextSampleMs) {
      this.#samples.push({ atMs: nowMs, rev: currentRev });
      this.#nextSampleMs = nowMs + this.intervalMs / 10;
    }
    if (nowMs < this.#nextRunMs) return undefined;
    this.#nextRunMs = nowMs + this.intervalMs;
    // The newest record at least one window old; older records are no longer needed.
    let pick: number | undefined;
    while (this.#samples.length > 0 && (this.#samples[0]?.atMs ?? Infinity) <= nowMs - this.policy.retention) {
      pick = this.#samples.shift()?.rev;
    }
    return pick === undefined ? undefined : this.#take(pick);
  }

  #take(rev: number): number | undefined {
    if (rev <= this.#lastCompacted || rev <= 1) return undefined;
    this.#lastCompacted = rev;
    return rev;
  }
}

/** What the auto-compaction timer reads from its member. */
export interface AutoCompactionHost {
  readonly isLeader: boolean;
  readonly revision: number;
  readonly compactRevision: number;
  compact(revision: number): Promise<unknown>;
  log?: ((level: "I" | "W" | "E" | "N", pkg: string, msg: string) => void) | undefined;
}

/** Auto-compaction: the leader asks the policy every tick (a tenth of its interval, at most a second). */
export function startAutoCompaction(compactor: Compactor, host: AutoCompactionHost, now: () => number): NodeJS.Timeout {
  const every = Math.max(10, Math.min(1000, compactor.intervalMs / 10));
  const timer = setInterval(() => {
    if (!host.isLeader) {
      compactor.reset();
      return;
    }
    const rev = compactor.step(now(), host.revision, host.compactRevision);
    if (rev === undefined) return;
    host.log?.(
      "N",
      "compactor",
      `Starting auto-compaction at revision ${rev} (retention: ${retentionText(compactor.policy)})`,
    );
    host.compact(rev).then(
      () => host.log?.("N", "compactor", `Finished auto-compaction at revision ${rev}`),
      (err: unknown) =>
        host.log?.(
          "W",
          "compactor",
          `Failed auto-compaction at revision ${rev} (${err instanceof Error ? err.message : String(err)})`,
        ),
    );
  }, every);
  timer.unref();
  return timer;
}

function retentionText(p: CompactionPolicy): string {
  return p.mode === "revision" ? `${p.retention} revisions` : `${p.retention / 1000}s`;
}

/** What a member shows its auto-compaction. */
export interface CompactingMember {
  readonly config: Pick<ServerConfig, "autoCompaction" | "clock" | "log">;
  readonly isLeader: boolean;
  readonly kv: { readonly revision: number; readonly compactRevision: number };
  compact(revision: number): Promise<unknown>;
}

/** Starts a member's auto-compaction (--auto-compaction-mode/-retention); undefined when it is off. */
export function startMemberAutoCompaction(m: CompactingMember): NodeJS.Timeout | undefined {
  const policy = m.config.autoCompaction;
  if (policy === undefined) return undefined;
  const host: AutoCompactionHost = {
    get isLeader() {
      return m.isLeader;
    },
    get revision() {
      return m.kv.revision;
    },
    get compactRevision() {
      return m.kv.compactRevision;
    },
    compact: (rev) => m.compact(rev),
    log: m.config.log,
  };
  return startAutoCompaction(new Compactor(policy), host, m.config.clock ?? (() => performance.now()));
}
