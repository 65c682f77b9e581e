// Open-loop pacing for readers: a reader issues one request every `periodS` from its own start offset, whether
// or not its earlier requests have returned, so every target is asked for the same read work at the same
// times. Latency counts from the intended start (coordinated-omission aware): a request that had to wait for
// a free slot, or a sender that woke late, is charged for the wait. The clock is injected so tests can run the
// schedule on virtual time.
import { performance } from "node:perf_hooks";

/** Clock: seconds since an origin, and a wait until a given second. */
export interface Clock {
  now(): number;
  sleepUntil(s: number): Promise<void>;
}

/** realClock counts seconds from `originMs` (a performance.now() value). */
export function realClock(originMs = performance.now()): Clock {
  const now = (): number => (performance.now() - originMs) / 1000;
  return {
    now,
    sleepUntil: (s) => {
      const ms = (s - now()) * 1000;
      return ms <= 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, ms));
    },
  };
}

export interface PacedTimes {
  readonly intendedS: number;
  readonly sentS: number;
  readonly doneS: number;
}

export interface PacedOptions<T> {
  readonly clock: Clock;
  /** First intended start (seconds on the clock). */
  readonly startS: number;
  /** No request is intended at or after this second. */
  readonly endS: number;
  readonly periodS: number;
  /** Requests of this reader in flight at once; past it the next one waits (and is charged the wait). */
  readonly maxInFlight: number;
  readonly issue: () => Promise<T>;
  /** Called once per request with its times and either its result or its error. */
  readonly done: (t: PacedTimes, outcome: { value?: T; error?: unknown }) => void;
}

export interface PacedResult {
  /** Requests sent. */
  readonly issued: number;
  /** Scheduled requests not sent: no slot came free before the schedule's end. */
  readonly skipped: number;
  /** Requests sent more than 1 ms after their intended start (sender late or no free slot). */
  readonly sentLate: number;
}

/** intendedStarts are the schedule's start times: startS + k × periodS for every one before endS. */
export function intendedStarts(startS: number, endS: number, periodS: number): number[] {
  if (!(periodS > 0)) throw new Error(`period must be > 0 s, got ${periodS}`);
  const out: number[] = [];
  for (let k = 0; startS + k * periodS < endS; k++) out.push(startS + k * periodS);
  return out;
}

/**
 * pacedLoop runs one reader's schedule; it resolves when every request it sent has completed. A request that
 * cannot get a slot before the end is skipped, so a target that cannot keep the pace shows less read work done
 * rather than a backlog spilling past the end.
 */
export async function pacedLoop<T>(o: PacedOptions<T>): Promise<PacedResult> {
  const slots = new Slots(o.maxInFlight);
  let issued = 0,
    skipped = 0,
    sentLate = 0;
  const pending: Promise<void>[] = [];
  for (const intendedS of intendedStarts(o.startS, o.endS, o.periodS)) {
    await o.clock.sleepUntil(intendedS);
    await slots.acquire();
    const sentS = o.clock.now();
    if (sentS >= o.endS) {
      slots.release();
      skipped++;
      continue;
    }
    issued++;
    if (sentS - intendedS > 0.001) sentLate++;
    const finish = (outcome: { value?: T; error?: unknown }): void => {
      slots.release();
      o.done({ intendedS, sentS, doneS: o.clock.now() }, outcome);
    };
    pending.push(
      o.issue().then(
        (value) => finish({ value }),
        (error: unknown) => finish({ error }),
      ),
    );
  }
  await Promise.all(pending);
  return { issued, skipped, sentLate };
}

/** Slots: at most `size` holders at once; waiters are served first come, first served. */
export class Slots {
  private held = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`slots must be a whole number >= 1, got ${size}`);
  }

  get inUse(): number {
    return this.held;
  }

  async acquire(): Promise<void> {
    if (this.held < this.size) {
      this.held++;
      return;
    }
    // The releasing holder hands its slot over directly, so a newcomer cannot overtake a waiter.
    await new Promise<void>((r) => this.waiters.push(r));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.held--;
  }
}
