// Measurement: one HdrHistogram per (target, phase, verb, resource) of latency measured from the op's
// intended send time (so a stalled server shows up, no coordinated omission) and one of service time (from
// the actual send); counts, errors per code, per-second throughput timeline. Latencies are recorded in µs.
import * as hdr from "hdr-histogram-js";

export const HIST_MAX_US = 3_600_000_000; // one hour
/** Percentiles written to each per-op histogram CSV (the CDF the report draws). */
export const CDF_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100] as const;

export function newHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIST_MAX_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export interface OpCell {
  readonly phase: string;
  readonly verb: string;
  readonly resource: string;
  readonly latency: hdr.Histogram;
  readonly service: hdr.Histogram;
  count: number;
  errors: number;
  /** Compares that failed as expected by the caller (create of an existing object, stale update). */
  conflicts: number;
  /** Response bytes received (LISTs report theirs; 0 for ops that do not). */
  bytes: number;
  readonly errorsByCode: Map<string, number>;
}

export interface TimelineRow {
  readonly second: number;
  ops: number;
  writes: number;
  reads: number;
  errors: number;
}

const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection", "put", "compact"]);

/** isWrite says whether a verb changes the store (for throughput of writes). */
export function isWrite(verb: string): boolean {
  return WRITE_VERBS.has(verb);
}

/** Recorder collects one target's measurements. */
export class Recorder {
  readonly cells = new Map<string, OpCell>();
  readonly timeline: TimelineRow[] = [];
  /** Phase name → [first intended second, last completion second] seen. */
  readonly phaseSpan = new Map<string, [number, number]>();

  constructor(readonly target: string) {}

  cell(phase: string, verb: string, resource: string): OpCell {
    const key = `${phase}\u0000${verb}\u0000${resource}`;
    let c = this.cells.get(key);
    if (c === undefined) {
      c = {
        phase,
        verb,
        resource,
        latency: newHistogram(),
        service: newHistogram(),
        count: 0,
        errors: 0,
        conflicts: 0,
        bytes: 0,
        errorsByCode: new Map(),
      };
      this.cells.set(key, c);
    }
    return c;
  }

  /**
   * record one completed op. Times are seconds since the replay start: intended (scheduled) send, actual send,
   * completion. `errorCode` set = the op failed.
   */
  record(
    phase: string,
    verb: string,
    resource: string,
    t: { intendedS: number; sentS: number; doneS: number },
    outcome: { errorCode?: string; conflict?: boolean; bytes?: number } = {},
  ): void {
    const c = this.cell(phase, verb, resource);
    const latencyUs = Math.max(1, Math.round((t.doneS - t.intendedS) * 1e6));
    const serviceUs = Math.max(1, Math.round((t.doneS - t.sentS) * 1e6));
    c.latency.recordValue(Math.min(latencyUs, HIST_MAX_US));
    c.service.recordValue(Math.min(serviceUs, HIST_MAX_US));
    c.count++;
    if (outcome.conflict === true) c.conflicts++;
    c.bytes += outcome.bytes ?? 0;
    if (outcome.errorCode !== undefined) {
      c.errors++;
      c.errorsByCode.set(outcome.errorCode, (c.errorsByCode.get(outcome.errorCode) ?? 0) + 1);
    }
    const span = this.phaseSpan.get(phase);
    if (span === undefined) this.phaseSpan.set(phase, [t.intendedS, t.doneS]);
    else {
      span[0] = Math.min(span[0], t.intendedS);
      span[1] = Math.max(span[1], t.doneS);
    }
    const sec = Math.max(0, Math.floor(t.doneS));
    while (this.timeline.length <= sec)
      this.timeline.push({ second: this.timeline.length, ops: 0, writes: 0, reads: 0, errors: 0 });
    const row = this.timeline[sec]!;
    row.ops++;
    if (isWrite(verb)) row.writes++;
    else row.reads++;
    if (outcome.errorCode !== undefined) row.errors++;
  }

  /** phaseSeconds is how long a phase lasted (first intended send → last completion), at least 1 ms. */
  phaseSeconds(phase: string): number {
    const span = this.phaseSpan.get(phase);
    return span === undefined ? 0 : Math.max(0.001, span[1] - span[0]);
  }
}

export interface SummaryRow {
  readonly target: string;
  readonly phase: string;
  readonly verb: string;
  readonly resource: string;
  readonly count: number;
  readonly errors: number;
  readonly conflicts: number;
  readonly bytes: number;
  readonly throughput_per_s: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly p999_ms: number;
  readonly max_ms: number;
  readonly p99_service_ms: number;
  readonly errors_by_code: string;
}

const ms = (us: number): number => Math.round(us) / 1000;

/** summarise turns a recorder's cells into summary rows, sorted by phase, verb, resource. */
export function summarise(rec: Recorder, phaseSeconds?: (phase: string) => number): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const c of rec.cells.values()) {
    const secs = phaseSeconds?.(c.phase) ?? rec.phaseSeconds(c.phase);
    rows.push({
      target: rec.target,
      phase: c.phase,
      verb: c.verb,
      resource: c.resource,
      count: c.count,
      errors: c.errors,
      conflicts: c.conflicts,
      bytes: c.bytes,
      throughput_per_s: secs > 0 ? Math.round((c.count / secs) * 100) / 100 : 0,
      p50_ms: ms(c.latency.getValueAtPercentile(50)),
      p90_ms: ms(c.latency.getValueAtPercentile(90)),
      p99_ms: ms(c.latency.getValueAtPercentile(99)),
      p999_ms: ms(c.latency.getValueAtPercentile(99.9)),
      max_ms: ms(c.latency.maxValue),
      p99_service_ms: ms(c.service.getValueAtPercentile(99)),
      errors_by_code: [...c.errorsByCode].map(([k, v]) => `${k}:${v}`).join(" "),
    });
  }
  return rows.sort(
    (a, b) => a.phase.localeCompare(b.phase) || a.verb.localeCompare(b.verb) || a.resource.localeCompare(b.resource),
  );
}

/** cdfRows are a cell's latency CDF points (percentile, ms) for its histogram CSV. */
export function cdfRows(c: OpCell): { percentile: number; latency_ms: number; service_ms: number }[] {
  return CDF_PERCENTILES.map((p) => ({
    percentile: p,
    latency_ms: ms(c.latency.getValueAtPercentile(p)),
    service_ms: ms(c.service.getValueAtPercentile(p)),
  }));
}

/**
 * samplesFor is how many samples percentile `p` needs before it differs from the largest one: the top
 * (100 − p)% must hold at least one sample, so P99 needs 100 and P99.9 needs 1,000.
 */
export function samplesFor(p: number): number {
  if (!(p >= 0 && p < 100)) throw new Error(`percentile must be in [0, 100), got ${p}`);
  return Math.ceil(100 / (100 - p) - 1e-9);
}

/** Tail: the P99 when the count supports one, else the maximum, always with its sample count. */
export interface Tail {
  readonly label: "p99" | "max";
  readonly ms: number;
  readonly n: number;
}

/** tailOf picks P99 or max for a summary row by the sample-count rule. */
export function tailOf(r: { count: number | string; p99_ms: number | string; max_ms: number | string }): Tail {
  const n = Number(r.count);
  const p99 = Number(r.p99_ms);
  // A source that reports no P99 (perfkit's LIST latencies) falls back to its max as well.
  return n >= samplesFor(99) && Number.isFinite(p99)
    ? { label: "p99", ms: p99, n }
    : { label: "max", ms: Number(r.max_ms), n };
}

/** formatTail prints a tail as "p99 12.3 ms (n=1200)" or "max 146.3 ms (n=30)". */
export function formatTail(t: Tail): string {
  return `${t.label} ${t.ms} ms (n=${t.n})`;
}
