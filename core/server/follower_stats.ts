// etcd's per-follower leader stats (/v2/stats/leader): the latency of each follower's appends and how many
// succeeded. etcd times the write of a MsgApp to the follower's stream; etcd-ts times a MsgApp until the follower's
// answer to it (the first MsgAppResp after it), so a figure includes the follower's disk write.

export interface FollowerLatency {
  current: number;
  average: number;
  standardDeviation: number;
  minimum: number;
  maximum: number;
}

export interface FollowerStat {
  readonly latency: FollowerLatency;
  readonly counts: { fail: number; success: number };
}

/** Milliseconds per follower; a new follower starts with etcd's initial minimum (1 << 63 ns, as Go prints it). */
export class FollowerStats {
  readonly #stats = new Map<bigint, FollowerStat & { averageSquare: number }>();
  readonly #pending = new Map<bigint, number>();

  /** A MsgApp left for `to` at `nowMs` (only the oldest unanswered one is timed). */
  sent(to: bigint, nowMs: number): void {
    if (!this.#pending.has(to)) this.#pending.set(to, nowMs);
  }

  /** Leadership changed: appends in flight are no longer timed. */
  forgetPending(): void {
    this.#pending.clear();
  }

  /** `from` answered a MsgApp: a rejection counts as a failure, as a failed send does in etcd. */
  answered(from: bigint, rejected: boolean, nowMs: number): void {
    const start = this.#pending.get(from);
    if (start === undefined) return;
    this.#pending.delete(from);
    const st = this.#of(from);
    if (rejected) {
      st.counts.fail++;
      return;
    }
    const n = st.counts.success;
    const ms = nowMs - start;
    const l = st.latency;
    st.counts.success = n + 1;
    l.current = ms;
    l.maximum = Math.max(l.maximum, ms);
    l.minimum = Math.min(l.minimum, ms);
    l.average = (l.average * n + ms) / (n + 1);
    st.averageSquare = (st.averageSquare * n + ms * ms) / (n + 1);
    l.standardDeviation = Math.sqrt(Math.max(0, st.averageSquare - l.average * l.average));
  }

  /** The stats of each of `followers` (etcd lists every peer from the start, with nothing counted yet). */
  of(followers: readonly bigint[]): Map<bigint, FollowerStat> {
    return new Map(
      followers.map((id) => {
        const { latency, counts } = this.#of(id);
        return [id, { latency: { ...latency }, counts: { ...counts } }];
      }),
    );
  }

  #of(id: bigint): FollowerStat & { averageSquare: number } {
    let st = this.#stats.get(id);
    if (st === undefined) {
      st = {
        latency: { current: 0, average: 0, standardDeviation: 0, minimum: 2 ** 63, maximum: 0 },
        counts: { fail: 0, success: 0 },
        averageSquare: 0,
      };
      this.#stats.set(id, st);
    }
    return st;
  }
}
