// ReadIndex batching for linearizable reads: reads that arrive together share one Raft ReadIndex round, and a
// round resolves once Raft confirms the leader's commit index and this member has applied up to it.
import { EtcdError, isEtcdError } from "../errors.js";

/** What a ReadIndex round needs from the member that runs it. */
export interface ReadIndexHost {
  /** Starts a Raft ReadIndex round carrying `ctx` (throws when there is no leader to ask). */
  requestReadIndex(ctx: Uint8Array): void;
  waitApplied(index: number): Promise<void>;
  readonly heartbeatMs: number;
  readonly requestTimeoutMs: number;
  readonly electionTicks: number;
}

type Reader = { resolve: () => void; reject: (e: Error) => void };

/**
 * Linearizable reads share ReadIndex rounds: every read arriving while no round is in flight joins the next one;
 * a round resolves when Raft confirms the leader's commit index (ReadState) and the apply loop reaches it.
 * A round lost to a leader change is retried after an election timeout.
 */
export class ReadIndexBatcher {
  readonly #host: ReadIndexHost;
  #waiting: Reader[] = [];
  #inFlight: { ctx: string; ticks: number; readers: Reader[] } | undefined;
  #seq = 0n;

  constructor(host: ReadIndexHost) {
    this.#host = host;
  }

  linearizableBarrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (this.#inFlight === undefined) setImmediate(() => this.#startRound());
    });
  }

  #startRound(): void {
    if (this.#inFlight !== undefined || this.#waiting.length === 0) return;
    this.#seq += 1n;
    const ctxBytes = Buffer.alloc(8);
    ctxBytes.writeBigUInt64BE(this.#seq);
    this.#inFlight = { ctx: ctxBytes.toString("hex"), ticks: 0, readers: this.#waiting };
    this.#waiting = [];
    try {
      this.#host.requestReadIndex(ctxBytes);
    } catch (err) {
      this.#finish(isEtcdError(err) ? err : new EtcdError("NO_LEADER"));
    }
  }

  onReadState(ctx: Uint8Array, index: number): void {
    const round = this.#inFlight;
    if (round === undefined || Buffer.from(ctx).toString("hex") !== round.ctx) return;
    this.#inFlight = undefined;
    void this.#host.waitApplied(index).then(() => {
      for (const r of round.readers) r.resolve();
      this.#startRound();
    });
  }

  onTick(): void {
    const round = this.#inFlight;
    if (round === undefined) return;
    round.ticks++;
    if (round.ticks * this.#host.heartbeatMs >= this.#host.requestTimeoutMs) {
      this.#finish(new EtcdError("TIMEOUT", "read index"));
    } else if (round.ticks % this.#host.electionTicks === 0) {
      // Lost (no leader, or leadership changed): ask again with the same readers.
      this.#inFlight = undefined;
      this.#waiting = round.readers.concat(this.#waiting);
      this.#startRound();
    }
  }

  #finish(err: Error): void {
    const round = this.#inFlight;
    this.#inFlight = undefined;
    for (const r of round?.readers ?? []) r.reject(err);
  }

  failAll(err: Error): void {
    this.#finish(err);
    for (const r of this.#waiting) r.reject(err);
    this.#waiting = [];
  }
}
