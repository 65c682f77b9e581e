// /metrics as etcd 3.4 exposes it (Prometheus text 0.0.4), for every series that has a meaning in etcd-ts: the
// server's gauges read at scrape time, the mvcc operation counts, the member's identity and versions (value 1, the
// version in a label), the process's file descriptors and memory from /proc, and the instruments ServerMetrics
// records. Series etcd has and etcd-ts does not are listed, with the reason, in test/compat/metrics.test.ts.
import { readdirSync, readFileSync } from "node:fs";
import type { EtcdServer } from "../server/etcd_server.js";

interface Metric {
  readonly name: string;
  readonly type: "gauge" | "counter";
  readonly help: string;
  readonly value: number;
  /** One label (etcd's version and id gauges carry their value in it; the v2 store's counters their action). */
  readonly label?: readonly [string, string];
}

/** The etcd release and cluster version etcd-ts reports (grpc_server.ts's ETCD_VERSION, as /version does). */
export interface Versions {
  readonly server: string;
  readonly cluster: string;
}

const START_SECONDS = Math.floor(Date.now() / 1000 - process.uptime());

export function metricsText(s: EtcdServer, versions: Versions): string {
  const metrics = [...serverMetrics(s), ...identityMetrics(s, versions), ...mvccMetrics(s), ...processMetrics()];
  return metrics.map(render).join("") + v2StoreText(s) + s.metrics.text();
}

function render(m: Metric): string {
  const labels = m.label === undefined ? "" : `{${m.label[0]}="${m.label[1]}"}`;
  return `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n${m.name}${labels} ${m.value}\n`;
}

function serverMetrics(s: EtcdServer): Metric[] {
  const size = s.kv.size();
  return [
    {
      name: "etcd_debugging_mvcc_compact_revision",
      type: "gauge",
      help: "The revision of the last compaction in store.",
      value: s.kv.compactRevision,
    },
    {
      name: "etcd_debugging_mvcc_current_revision",
      type: "gauge",
      help: "The current revision of store.",
      value: s.kv.revision,
    },
    {
      name: "etcd_mvcc_db_total_size_in_bytes",
      type: "gauge",
      help: "Total size of the underlying database physically allocated in bytes.",
      value: size.dbSizeBytes,
    },
    {
      name: "etcd_debugging_mvcc_db_total_size_in_bytes",
      type: "gauge",
      help: "Total size of the underlying database physically allocated in bytes.",
      value: size.dbSizeBytes,
    },
    {
      name: "etcd_mvcc_db_total_size_in_use_in_bytes",
      type: "gauge",
      help: "Total size of the underlying database logically in use in bytes.",
      value: size.dbSizeInUseBytes,
    },
    {
      name: "etcd_server_has_leader",
      type: "gauge",
      help: "Whether or not a leader exists. 1 is existence, 0 is not.",
      value: s.leader === 0n ? 0 : 1,
    },
    {
      name: "etcd_server_is_leader",
      type: "gauge",
      help: "Whether or not this member is a leader. 1 if is, 0 otherwise.",
      value: s.isLeader ? 1 : 0,
    },
    {
      name: "etcd_server_is_learner",
      type: "gauge",
      help: "Whether or not this member is a learner. 1 if is, 0 otherwise.",
      value: s.isLearner ? 1 : 0,
    },
    {
      name: "etcd_server_proposals_applied_total",
      type: "gauge",
      help: "The total number of consensus proposals applied.",
      value: s.appliedIndex,
    },
    {
      name: "etcd_server_proposals_committed_total",
      type: "gauge",
      help: "The total number of consensus proposals committed.",
      value: s.committedIndex,
    },
    {
      name: "etcd_server_proposals_pending",
      type: "gauge",
      help: "The current number of pending proposals to commit.",
      value: s.pendingProposals,
    },
    { name: "etcd_debugging_mvcc_keys_total", type: "gauge", help: "Total number of keys.", value: s.kv.keyCount },
    {
      name: "etcd_debugging_mvcc_watcher_total",
      type: "gauge",
      help: "Total number of watchers.",
      value: s.watchable.watcherCount,
    },
    {
      name: "etcd_debugging_mvcc_slow_watcher_total",
      type: "gauge",
      help: "Total number of unsynced slow watchers.",
      value: s.watchable.unsyncedCount,
    },
    {
      name: "etcd_debugging_mvcc_events_total",
      type: "counter",
      help: "Total number of events sent by this member.",
      value: s.watchable.eventsSent,
    },
    {
      name: "etcd_debugging_mvcc_watch_stream_total",
      type: "gauge",
      help: "Total number of watch streams.",
      value: s.metrics.watchStreams,
    },
    {
      name: "etcd_server_quota_backend_bytes",
      type: "gauge",
      help: "Current backend storage quota size in bytes.",
      value: Math.max(0, s.quotaBytes),
    },
    {
      name: "etcd_disk_defrag_inflight",
      type: "gauge",
      help: "Whether or not defrag is active on the member. 1 means active, 0 means not.",
      value: s.metrics.defragInflight > 0 ? 1 : 0,
    },
    {
      name: "etcd_debugging_lease_granted_total",
      type: "counter",
      help: "The total number of granted leases.",
      value: s.lessor.granted,
    },
    {
      name: "etcd_debugging_lease_revoked_total",
      type: "counter",
      help: "The total number of revoked leases.",
      value: s.lessor.revoked,
    },
    {
      name: "etcd_debugging_lease_renewed_total",
      type: "counter",
      help: "The number of renewed leases seen by the leader.",
      value: s.lessor.renewed,
    },
    {
      name: "promhttp_metric_handler_requests_in_flight",
      type: "gauge",
      help: "Current number of scrapes being served.",
      value: s.metrics.scrapesInFlight,
    },
  ];
}

function identityMetrics(s: EtcdServer, v: Versions): Metric[] {
  return [
    {
      name: "etcd_server_version",
      type: "gauge",
      help: "Which version is running. 1 for 'server_version' label with current version.",
      value: 1,
      label: ["server_version", v.server],
    },
    {
      name: "etcd_cluster_version",
      type: "gauge",
      help: "Which version is running. 1 for 'cluster_version' label with current cluster version",
      value: 1,
      label: ["cluster_version", v.cluster],
    },
    {
      name: "etcd_server_id",
      type: "gauge",
      help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      value: 1,
      label: ["server_id", s.config.memberId.toString(16)],
    },
  ];
}

/**
 * The v2 store's counters. Reads and writes are labelled by action; every action is shown, at 0 until used
 * (etcd shows those its own membership records have used, so its label sets appear without v2 traffic too).
 */
function v2StoreText(s: EtcdServer): string {
  const st = s.v2.store;
  const family = (
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: readonly (readonly [string, number])[],
  ): string =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples.map(([action, v]) => `${name}${action === "" ? "" : `{action="${action}"}`} ${v}\n`).join("")}`;
  const counts = st.stats;
  const writes = [
    ["compareAndDelete", counts.compareAndDeleteSuccess + counts.compareAndDeleteFail],
    ["compareAndSwap", counts.compareAndSwapSuccess + counts.compareAndSwapFail],
    ["create", counts.createSuccess + counts.createFail],
    ["delete", counts.deleteSuccess + counts.deleteFail],
    ["set", counts.setsSuccess + counts.setsFail],
    ["update", counts.updateSuccess + counts.updateFail],
  ] as const;
  return [
    family("etcd_debugging_store_expires_total", "counter", "Total number of expired keys.", [
      ["", counts.expireCount],
    ]),
    family(
      "etcd_debugging_store_reads_total",
      "counter",
      "Total number of reads action by (get/getRecursive), local to this member.",
      [
        ["get", st.reads.get],
        ["getRecursive", st.reads.getRecursive],
      ],
    ),
    family(
      "etcd_debugging_store_watch_requests_total",
      "counter",
      "Total number of incoming watch requests (new or reestablished).",
      [["", st.watchRequests]],
    ),
    family("etcd_debugging_store_watchers", "gauge", "Count of currently active watchers.", [["", st.watcherCount]]),
    family(
      "etcd_debugging_store_writes_total",
      "counter",
      "Total number of writes (e.g. set/compareAndDelete) seen by this member.",
      writes,
    ),
  ].join("");
}

/** etcd exposes each mvcc count twice: under etcd_mvcc_* and under its older etcd_debugging_mvcc_* name. */
function mvccMetrics(s: EtcdServer): Metric[] {
  const c = s.kv.counts;
  const out: Metric[] = [];
  for (const [op, value] of [
    ["put", c.puts],
    ["delete", c.deletes],
    ["range", c.ranges],
    ["txn", c.txns],
  ] as const) {
    const help = `Total number of ${op}s seen by this member.`;
    out.push(
      { name: `etcd_mvcc_${op}_total`, type: "counter", help, value },
      { name: `etcd_debugging_mvcc_${op}_total`, type: "counter", help, value },
    );
  }
  out.push({
    name: "etcd_debugging_mvcc_total_put_size_in_bytes",
    type: "gauge",
    help: "The total size of put kv pairs seen by this member.",
    value: c.putBytes,
  });
  return out;
}

/** What Prometheus's process collector and etcd's os_fd gauges read, from /proc (Linux). */
function processMetrics(): Metric[] {
  const fds = openFds();
  const maxFds = fdLimit();
  const u = process.cpuUsage();
  return [
    {
      name: "process_resident_memory_bytes",
      type: "gauge",
      help: "Resident memory size in bytes.",
      value: process.memoryUsage.rss(),
    },
    {
      name: "process_cpu_seconds_total",
      type: "counter",
      help: "Total user and system CPU time spent in seconds.",
      value: (u.user + u.system) / 1e6,
    },
    {
      name: "process_start_time_seconds",
      type: "gauge",
      help: "Start time of the process since unix epoch in seconds.",
      value: START_SECONDS,
    },
    { name: "process_open_fds", type: "gauge", help: "Number of open file descriptors.", value: fds },
    { name: "process_max_fds", type: "gauge", help: "Maximum number of open file descriptors.", value: maxFds },
    {
      name: "process_virtual_memory_bytes",
      type: "gauge",
      help: "Virtual memory size in bytes.",
      value: virtualMemoryBytes(),
    },
    {
      name: "process_virtual_memory_max_bytes",
      type: "gauge",
      help: "Maximum amount of virtual memory available in bytes.",
      value: addressSpaceLimit(),
    },
    { name: "os_fd_used", type: "gauge", help: "The number of used file descriptors.", value: fds },
    { name: "os_fd_limit", type: "gauge", help: "The file descriptor limit.", value: maxFds },
  ];
}

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}

/** A soft limit from /proc/self/limits ("unlimited" as Go's -1 read as an unsigned 64-bit number). */
function limit(row: string): number {
  try {
    const line =
      readFileSync("/proc/self/limits", "utf8")
        .split("\n")
        .find((l) => l.startsWith(row)) ?? "";
    const soft = line.slice(row.length).trim().split(/\s+/)[0] ?? "";
    return soft === "unlimited" ? 2 ** 64 : Number(soft);
  } catch {
    return 0;
  }
}

const fdLimit = (): number => limit("Max open files");
const addressSpaceLimit = (): number => limit("Max address space");

function virtualMemoryBytes(): number {
  try {
    // /proc/self/stat: the 23rd field is vsize; the command name (field 2) may hold spaces, so count from its ')'.
    const stat = readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[20] ?? 0);
  } catch {
    return 0;
  }
}
