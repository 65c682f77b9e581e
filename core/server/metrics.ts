// The Prometheus instruments etcd-ts records itself (etcd's names and buckets): histograms of WAL fsync, backend
// commit, defragmentation and hash durations, and labelled counters (gRPC requests as go-grpc-prometheus counts
// them, leader changes, health checks, scrapes). Gauges are read from the server when /metrics is scraped.
// Text format 0.0.4.
import { FollowerStats } from "./follower_stats.js";

/** etcd's buckets for both disk histograms: prometheus.ExponentialBuckets(0.001, 2, 14), in seconds. */
export const DISK_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

export class Histogram {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = buckets.map(() => 0);
  }

  observe(seconds: number): void {
    this.#sum += seconds;
    this.#count++;
    for (let i = 0; i < this.buckets.length; i++)
      if (seconds <= (this.buckets[i] ?? Infinity)) this.#counts[i] = (this.#counts[i] ?? 0) + 1;
  }

  get count(): number {
    return this.#count;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.#counts[i] ?? 0}`));
    lines.push(
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${this.#sum}`,
      `${this.name}_count ${this.#count}`,
    );
    return lines.join("\n") + "\n";
  }
}

/** A counter with labels; each distinct label set is one series. */
export class Counter {
  readonly #series = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Readonly<Record<string, string>> = {}, by = 1): void {
    const key = seriesKey(labels);
    this.#series.set(key, (this.#series.get(key) ?? 0) + by);
  }

  /** One series, its key built once (for hot paths). */
  child(labels: Readonly<Record<string, string>>): { inc(): void } {
    const key = seriesKey(labels);
    if (!this.#series.has(key)) this.#series.set(key, 0);
    return { inc: () => this.#series.set(key, (this.#series.get(key) ?? 0) + 1) };
  }

  value(labels: Readonly<Record<string, string>> = {}): number {
    return this.#series.get(seriesKey(labels)) ?? 0;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.#series.size === 0) lines.push(`${this.name} 0`);
    for (const [key, v] of this.#series) lines.push(key === "" ? `${this.name} ${v}` : `${this.name}{${key}} ${v}`);
    return lines.join("\n") + "\n";
  }
}

function seriesKey(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`)
    .join(",");
}

/** prometheus.ExponentialBuckets(start, 2, count): etcd's buckets for its maintenance histograms. */
function doubling(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Number((start * 2 ** i).toPrecision(12)));
}

/** The instruments of one member. */
export class ServerMetrics {
  readonly defrag = new Histogram(
    "etcd_disk_backend_defrag_duration_seconds",
    "The latency distribution of backend defragmentation.",
    doubling(0.1, 13),
  );
  readonly hash = new Histogram(
    "etcd_mvcc_hash_duration_seconds",
    "The latency distribution of storage hash operation.",
    doubling(0.01, 15),
  );
  readonly hashRev = new Histogram(
    "etcd_mvcc_hash_rev_duration_seconds",
    "The latency distribution of storage hash by revision operation.",
    doubling(0.01, 15),
  );
  readonly healthSuccess = new Counter("etcd_server_health_success", "The total number of successful health checks");
  readonly healthFailures = new Counter("etcd_server_health_failures", "The total number of failed health checks");
  readonly scrapes = new Counter(
    "promhttp_metric_handler_requests_total",
    "Total number of scrapes by HTTP status code.",
  );
  /** Prometheus's handler shows its three codes from the start. */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: creating the children is the point (each code shows from 0)
  readonly #scrapeCodes = ["200", "500", "503"].map((code) => this.scrapes.child({ code }));
  /** Defragmentations running now (etcd_disk_defrag_inflight). */
  defragInflight = 0;
  /** Watch streams open now (etcd_debugging_mvcc_watch_stream_total). */
  watchStreams = 0;
  /** /metrics requests being answered now (promhttp_metric_handler_requests_in_flight). */
  scrapesInFlight = 0;
  /** etcd's v2 server stats (/v2/stats/self): MsgApp sent and received, when this member started and since when
   *  the current leader leads (ms since the epoch; 0 without a leader). */
  appendsSent = 0;
  appendsReceived = 0;
  readonly startedMs = Date.now();
  leaderSinceMs = 0;
  /** Per-follower append latency and counts while this member leads (/v2/stats/leader). */
  readonly followers = new FollowerStats();

  readonly walFsync = new Histogram(
    "etcd_disk_wal_fsync_duration_seconds",
    "The latency distributions of fsync called by WAL.",
    DISK_BUCKETS_SECONDS,
  );
  readonly backendCommit = new Histogram(
    "etcd_disk_backend_commit_duration_seconds",
    "The latency distributions of commit called by backend.",
    DISK_BUCKETS_SECONDS,
  );
  readonly leaderChanges = new Counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.");
  readonly grpcStarted = new Counter("grpc_server_started_total", "Total number of RPCs started on the server.");
  readonly grpcHandled = new Counter(
    "grpc_server_handled_total",
    "Total number of RPCs completed on the server, regardless of success or failure.",
  );

  text(): string {
    return [
      this.walFsync,
      this.backendCommit,
      this.leaderChanges,
      this.grpcStarted,
      this.grpcHandled,
      this.defrag,
      this.hash,
      this.hashRev,
      this.healthSuccess,
      this.healthFailures,
      this.scrapes,
    ]
      .map((m) => m.text())
      .join("");
  }
}
