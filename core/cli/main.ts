// `etcd-ts`: the server entry point, with etcd 3.4's flags (core/cli/flags.ts). It starts one member (alone, or
// one of the --initial-cluster members, or joining a running cluster), serves its client and peer URLs, and logs
// etcd's key start-up lines, which tooling waits for. core/cli holds the process side: flags, logging, TLS flags.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { argv, env, exit, stderr, stdout } from "node:process";
import { ETCD_CLUSTER_VERSION, ETCD_VERSION, serveGrpc } from "../api/grpc_server.js";
import { clientHttpHandler, serveMetrics, type HttpHandle } from "../api/http_server.js";
import { TlsConfigError, serverTlsOptions, type TlsInfo } from "../api/tls_options.js";
import { allowedCertCheck, type SecureListenerOptions } from "../api/tls_verify.js";
import { selfCert, urlHosts } from "../api/tls_cert.js";
import { peerTlsFromFlags } from "./tls_flags.js";
import type { TransportTls } from "../transport/index.js";
import { authFromFlags, type AuthFlags } from "../server/auth_apply.js";
import { Cluster, type Member } from "../membership/cluster.js";
import { idToHex } from "../membership/ids.js";
import { InitialClusterError, parseUrlsMap } from "../membership/initial_cluster.js";
import { ClusterFetchError, fetchMembers } from "../server/peer_link.js";
import type { CompactionPolicy } from "../server/compactor.js";
import { parseCompactionFlags } from "./compaction_flags.js";
import { DataDirLockedError } from "../server/dir_lock.js";
import { DataInconsistencyError } from "../server/corrupt_check.js";
import { CORRUPT_CHECK_INTERVAL_MS } from "../limits.js";
import { EtcdServer } from "../server/etcd_server.js";
import { importEtcdDataDir, isEtcdDataDir, type EtcdImport } from "../server/etcd_data_import.js";
import { FlagError, parseDurationMs, parseFlags, type ParsedFlags } from "./flags.js";
import { parseGoBool } from "../go_values.js";
import { POWERLOSS_ENV, armFailpointsFromEnv, armedFailpoints, startPowerLossModel } from "../failpoints.js";
import { createLogger, logOptionsError, type LogFn } from "./log.js";
import { readIdentity, writeIdentity } from "./member_identity.js";

const ETCD_TS_VERSION = "0.1.0";

/** capnslog to stderr until the flags say otherwise (run() replaces it). */
let log: LogFn = createLogger({ logger: "capnslog", outputs: ["stderr"], level: "info" });

function list(v: string | undefined): string[] {
  return (v ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

/**
 * host:port of the first client URL (http:// or https://), or unix:<path> for unix:// and unixs:// (as etcd, the
 * socket path is host and path: unixs://localhost:2379 listens on ./localhost:2379).
 */
function bindAddress(urls: readonly string[]): string {
  const first = urls[0];
  if (first === undefined) throw new FlagError("error verifying flags, --listen-client-urls is empty", 1);
  const u = new URL(first);
  if (u.protocol === "unix:" || u.protocol === "unixs:") return `unix:${decodeURIComponent(u.host + u.pathname)}`;
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new FlagError(`error verifying flags, ${u.protocol} client URLs are not supported yet by etcd-ts`, 1);
  return `${u.hostname}:${u.port === "" ? "2379" : u.port}`;
}

type ClientTls = Omit<SecureListenerOptions, "alpn">;

/**
 * The client listener's TLS (also the https:// metrics listener's), as etcd's ClientTLSInfo: --cert-file and
 * --key-file, or with --auto-tls and no certificate given, a self-signed one in <data-dir>/fixtures/client.
 * Undefined when no listen URL is https://. Errors carry etcd's text.
 */
function clientTls(f: ParsedFlags, dataDir: string, urls: readonly string[]): ClientTls | undefined {
  const v = (k: string): string => f.values.get(k) ?? "";
  const secure = urls.find((u) => u.startsWith("https://") || u.startsWith("unixs://"));
  if (secure === undefined) return undefined;
  let info: TlsInfo = {
    certFile: v("cert-file"),
    keyFile: v("key-file"),
    trustedCaFile: v("trusted-ca-file"),
    clientCertAuth: parseGoBool(v("client-cert-auth")) === true,
    crlFile: v("client-crl-file"),
    allowedHostname: v("client-cert-allowed-hostname"),
  };
  if (parseGoBool(v("auto-tls")) === true) {
    if (info.certFile === "" && info.keyFile === "")
      info = { ...info, ...selfCert(join(dataDir, "fixtures", "client"), urlHosts(urls)) };
    else log("W", "embed", "ignoring client auto TLS since certs given");
  }
  if (info.certFile === "" || info.keyFile === "") {
    throw new FlagError(
      `TLS key/cert (--cert-file, --key-file) must be provided for client url ${secure} with HTTPS scheme`,
      1,
    );
  }
  const cipherSuites = list(v("cipher-suites"));
  try {
    const tls = serverTlsOptions(info, cipherSuites);
    log(
      "I",
      "embed",
      `ClientTLS: cert = ${info.certFile}, key = ${info.keyFile}, trusted-ca = ${info.trustedCaFile}, client-cert-auth = ${info.clientCertAuth}, crl-file = ${info.crlFile}`,
    );
    const check = allowedCertCheck(info);
    return {
      tls,
      crlFile: info.crlFile,
      onRejected: (line) => log("W", "embed", line),
      ...(check !== undefined ? { check } : {}),
    };
  } catch (err) {
    if (err instanceof TlsConfigError) throw new FlagError(err.message, 1);
    throw err;
  }
}

/** --auth-token, --auth-token-ttl and --bcrypt-cost (see authFromFlags); a bad value stops start-up as etcd does. */
function authFlags(token: string, ttlSeconds: number, bcryptCost: number): AuthFlags {
  try {
    return authFromFlags(token, ttlSeconds, bcryptCost);
  } catch (err) {
    throw new FlagError(`error verifying flags, ${(err as Error).message}. See 'etcd-ts --help'.`, 1);
  }
}

/** A data dir `etcdctl snapshot restore` made is imported on the first start (core/server/etcd_data_import.ts). */
async function takeOverEtcdDataDir(dataDir: string): Promise<void> {
  if (!isEtcdDataDir(dataDir)) return;
  let got: EtcdImport | undefined;
  try {
    got = await importEtcdDataDir(dataDir, (memberId, clusterId) => writeIdentity(dataDir, { memberId, clusterId }));
  } catch (err) {
    if (err instanceof DataDirLockedError) throw err;
    throw new FlagError(`cannot take over the etcd data dir ${dataDir}: ${(err as Error).message}`, 1);
  }
  if (got === undefined) return;
  log(
    "I",
    "etcdserver",
    `imported etcd data dir ${dataDir} (moved etcd's files to member/etcd-import): member ${idToHex(got.memberId)} of cluster ${idToHex(got.clusterId)} with ${got.members.length} member(s), revision ${got.revision}, ${got.keys} key revisions, ${got.leases} leases`,
  );
}

async function run(f: ParsedFlags): Promise<void> {
  const v = (k: string): string => f.values.get(k) ?? "";
  const bool = (k: string): boolean => parseGoBool(v(k)) === true;
  const name = v("name");
  const dataDir = v("data-dir") === "" ? `${name}.etcd` : v("data-dir");
  mkdirSync(dataDir, { recursive: true });
  const shadow = process.env[POWERLOSS_ENV];
  if (shadow !== undefined && shadow !== "") startPowerLossModel(dataDir, shadow);
  const logOpts = {
    logger: v("logger"),
    outputs: list(v("log-outputs")),
    level: bool("debug") ? "debug" : v("log-level"),
  };
  const logError = logOptionsError(logOpts);
  if (logError !== undefined) throw new FlagError(`error verifying flags, ${logError}. See 'etcd-ts --help'.`, 1);
  log = createLogger(logOpts);
  log(
    "I",
    "etcdmain",
    `etcd-ts Version: ${ETCD_TS_VERSION} (etcd API ${ETCD_VERSION}), Node Version: ${process.version}`,
  );
  try {
    armFailpointsFromEnv();
  } catch (err) {
    throw new FlagError((err as Error).message, 1);
  }
  if (armedFailpoints() !== "") log("W", "etcdmain", `failpoints armed: ${armedFailpoints()}`);
  // TLS settings are checked (and --auto-tls certificates made) before the member starts, as etcd does.
  const tls = clientTls(f, dataDir, list(v("listen-client-urls")));
  let compaction: CompactionPolicy | undefined;
  try {
    compaction = parseCompactionFlags(v("auto-compaction-mode"), v("auto-compaction-retention"));
  } catch (err) {
    throw new FlagError((err as Error).message, 1);
  }
  const auth = authFlags(v("auth-token"), Number(v("auth-token-ttl")), Number(v("bcrypt-cost")));
  if (auth.warning !== undefined) log("W", "auth", auth.warning);
  if (bool("experimental-initial-corrupt-check"))
    log(
      "W",
      "etcdmain",
      "--experimental-initial-corrupt-check is accepted, but this build does not compare its data with its peers at start-up",
    );
  const peerTls = peerTlsOf(f, dataDir);
  const batchIntervalMs = parseDurationMs(v("backend-batch-interval")) ?? 0;
  await takeOverEtcdDataDir(dataDir);
  const identity = await memberIdentity(f, name, dataDir, peerTls);
  const { memberId, clusterId } = identity;
  const clientUrls = list(v("advertise-client-urls"));
  // A peer listener when there are peers, or when --listen-peer-urls was asked for (a lone member started with
  // the defaults listens on no peer port, so two can run side by side on one host).
  const peerListen =
    identity.members.length > 1 || identity.join || f.sources.has("listen-peer-urls")
      ? list(v("listen-peer-urls"))
      : undefined;
  const server = await EtcdServer.start({
    initialMembers: identity.members,
    joinExisting: identity.join,
    clientUrls,
    strictReconfigCheck: bool("strict-reconfig-check"),
    ...(peerListen !== undefined
      ? { peer: { listenUrls: peerListen, ...(peerTls !== undefined ? { tls: peerTls } : {}) } }
      : {}),
    onRemoved: () => {
      log("N", "etcdserver", "the member has been permanently removed from the cluster; exiting");
      exit(0);
    },
    authTokenProvider: auth.tokenProvider,
    bcryptCost: auth.bcryptCost,
    name,
    dataDir,
    memberId,
    clusterId,
    heartbeatIntervalMs: Number(v("heartbeat-interval")),
    electionTimeoutMs: Number(v("election-timeout")),
    readMode: v("backend-read-mode") === "blocking" ? "blocking" : "concurrent",
    // etcd 3.4 defaults to false; etcd-ts to true (a rejoining member cannot depose a healthy leader).
    preVote: !f.sources.has("pre-vote") || bool("pre-vote"),
    snapshotCount: Number(v("snapshot-count")),
    snapshotCatchUpEntries: Number(v("experimental-snapshot-catchup-entries")),
    walSegmentBytes: Number(v("experimental-wal-segment-bytes")),
    quotaBackendBytes: Number(v("quota-backend-bytes")),
    // As etcd: 0 (or unset) keeps the default interval and limit.
    ...(batchIntervalMs > 0 ? { backendBatchIntervalMs: batchIntervalMs } : {}),
    ...(Number(v("backend-batch-limit")) > 0 ? { backendBatchLimit: Number(v("backend-batch-limit")) } : {}),
    maxTxnOps: Number(v("max-txn-ops")),
    maxRequestBytes: Number(v("max-request-bytes")),
    initialElectionTickAdvance: bool("initial-election-tick-advance"),
    // etcd's default is off; etcd-ts checkpoints (and persists them) unless the flag is given as false.
    leaseCheckpoint:
      !f.sources.has("experimental-enable-lease-checkpoint") || bool("experimental-enable-lease-checkpoint"),
    ...(compaction !== undefined ? { autoCompaction: compaction } : {}),
    // etcd's default is off; etcd-ts checks unless the flag is given (0s turns it off).
    corruptCheckIntervalMs: f.sources.has("experimental-corrupt-check-time")
      ? (parseDurationMs(v("experimental-corrupt-check-time")) ?? 0)
      : CORRUPT_CHECK_INTERVAL_MS,
    log,
  });
  log("I", "etcdserver", `starting member ${idToHex(memberId)} in cluster ${idToHex(clusterId)}`);
  for (const u of server.peerUrls) log("I", "embed", `listening for peers on ${u}`);
  await server.whenLeader();
  await server.whenPublished();
  // etcd's default is off; etcd-ts compares its data with its peers' before serving unless told not to.
  if (!f.sources.has("experimental-initial-corrupt-check") || bool("experimental-initial-corrupt-check")) {
    try {
      await server.checkInitialHashKV();
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
  const grpcServer = await serveGrpc(server, {
    address: bindAddress(list(v("listen-client-urls"))),
    maxRequestBytes: Number(v("max-request-bytes")),
    maxTxnOps: Number(v("max-txn-ops")),
    maxConcurrentStreams: Number(v("max-concurrent-streams")),
    keepaliveIntervalMs: parseDurationMs(v("grpc-keepalive-interval")) ?? 2 * 3_600_000,
    keepaliveTimeoutMs: parseDurationMs(v("grpc-keepalive-timeout")) ?? 20_000,
    watchProgressNotifyIntervalMs: parseDurationMs(v("experimental-watch-progress-notify-interval")) ?? 600_000,
    http: clientHttpHandler(
      server,
      { server: ETCD_VERSION, cluster: ETCD_CLUSTER_VERSION },
      {
        peerFaultInjection: bool("experimental-peer-fault-injection"),
        enableV2: bool("enable-v2"),
        failpoints: bool("experimental-failpoints"),
      },
    ),
    ...(tls !== undefined ? { tls } : {}),
  });
  const metrics: HttpHandle[] = [];
  for (const raw of list(v("listen-metrics-urls"))) {
    const u = new URL(raw);
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new FlagError(`error verifying flags, ${u.protocol} metrics URLs are not supported yet by etcd-ts`, 1);
    const noCert = (v("cert-file") === "" || v("key-file") === "") && !bool("auto-tls");
    if (u.protocol === "https:" && tls === undefined && noCert)
      throw new FlagError(`cannot listen on TLS for ${u.host}: KeyFile and CertFile are not presented`, 1);
    const secure = u.protocol === "https:" ? (tls ?? clientTls(f, dataDir, [raw])) : undefined;
    metrics.push(
      await serveMetrics(
        server,
        u.hostname,
        Number(u.port === "" ? 80 : u.port),
        secure !== undefined ? { tls: secure } : {},
      ),
    );
    log("I", "embed", `serving /metrics and /health on ${raw}`);
  }
  log(
    "I",
    "etcdserver",
    `published {Name:${name} ClientURLs:[${clientUrls.join(" ")}]} to cluster ${idToHex(clusterId)}`,
  );
  log("N", "etcdserver/api", "enabled capabilities for version 3.4");
  log("I", "embed", `ready to serve client requests`);
  const served = bindAddress(list(v("listen-client-urls")))
    .replace(/^unix:/, "")
    .replace(/:0$/, ":" + grpcServer.port);
  if (tls !== undefined) log("I", "embed", `serving client requests on ${served}`);
  else log("N", "embed", `serving insecure client requests on ${served}, this is strongly discouraged!`);
  // As etcd: stop at once, then die of the same signal (exit status 128 + n, which supervisors look at). Every
  // listener closes first and the member stops beside the client side's drain, so a member started next on the
  // same ports finds them free even while clients hold streams open; their drain is bounded.
  const shutdown = (sig: string, signal: NodeJS.Signals): void => {
    log("N", "osutil", `received ${sig} signal, shutting down...`);
    const clientsClosed = Promise.all([grpcServer.close(), ...metrics.map((m) => m.close())]);
    const drained = (): Promise<unknown> =>
      Promise.race([clientsClosed, new Promise((r) => setTimeout(r, SHUTDOWN_DRAIN_MS).unref())]);
    void server
      .stop()
      .then(drained, drained)
      .then(() => process.kill(process.pid, signal));
  };
  process.once("SIGTERM", () => shutdown("terminated", "SIGTERM"));
  process.once("SIGINT", () => shutdown("interrupt", "SIGINT"));
}

/** How long a stopping member lets client calls finish after the member itself has stopped. */
const SHUTDOWN_DRAIN_MS = 500;

/** --peer-* TLS (tls_flags.ts's peerTlsFromFlags; certificates made for --peer-auto-tls); errors carry etcd's text. */
function peerTlsOf(f: ParsedFlags, dataDir: string): TransportTls | undefined {
  const values = (k: string): string => f.values.get(k) ?? "";
  try {
    const t = peerTlsFromFlags(values, dataDir, list(values("listen-peer-urls")));
    if (t !== undefined) log("I", "embed", t.summary);
    return t;
  } catch (err) {
    if (err instanceof TlsConfigError) throw new FlagError(err.message, 1);
    throw err;
  }
}

interface Identity {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** The initial members of a new cluster, or the running cluster's members when joining. */
  readonly members: Member[];
  readonly join: boolean;
}

/**
 * Who this member is. A data dir that has run before keeps the ids it was given (member/identity.json; etcd keeps
 * them in its WAL) and the --initial-cluster flags are ignored, as etcd ignores them. Otherwise, as etcd: a new
 * cluster's ids come from --initial-cluster and the token; a member joining (--initial-cluster-state=existing)
 * asks the peers in --initial-cluster for the member list and finds itself there by its peer URLs.
 */
async function memberIdentity(
  f: ParsedFlags,
  name: string,
  dataDir: string,
  peerTls: TransportTls | undefined,
): Promise<Identity> {
  const v = (k: string): string => f.values.get(k) ?? "";
  const saved = readIdentity(dataDir);
  if (saved !== undefined) return { ...saved, members: [], join: false };
  const advertise = list(v("initial-advertise-peer-urls"));
  // etcd: with --name set and --initial-cluster left at its default, the cluster is this member alone.
  const initialCluster = f.sources.has("initial-cluster")
    ? v("initial-cluster")
    : `${name}=${advertise.join(`,${name}=`)}`;
  let identity: Identity;
  try {
    if (v("initial-cluster-state") === "existing") identity = await joinIdentity(initialCluster, advertise, peerTls);
    else {
      const { members, clusterId } = Cluster.fromInitialCluster(initialCluster, v("initial-cluster-token"), {
        name,
        advertisePeerUrls: advertise,
      });
      const me = members.find((m) => m.name === name);
      if (me === undefined)
        throw new FlagError(`couldn't find local name "${name}" in the initial cluster configuration`, 1);
      identity = { memberId: me.id, clusterId, members, join: false };
    }
  } catch (err) {
    if (err instanceof InitialClusterError) throw new FlagError(err.message, 1);
    throw err;
  }
  writeIdentity(dataDir, identity);
  return identity;
}

async function joinIdentity(
  initialCluster: string,
  advertise: readonly string[],
  peerTls: TransportTls | undefined,
): Promise<Identity> {
  const mine = new Set(advertise);
  const others = [...parseUrlsMap(initialCluster).values()].flat().filter((u) => !mine.has(u));
  const { clusterId, members } = await fetchMembers(others, {
    tls: peerTls,
    timeoutMs: 5_000,
    warn: (line) => log("W", "etcdserver", line),
  });
  const sorted = [...advertise].sort().join(",");
  const me = members.find((m) => [...m.peerUrls].sort().join(",") === sorted);
  if (me === undefined) {
    throw new FlagError(
      `error validating peerURLs: no member of cluster ${idToHex(clusterId)} has peer URLs ${sorted} (add it first with etcdctl member add)`,
      1,
    );
  }
  return { memberId: me.id, clusterId, members, join: true };
}

async function main(): Promise<void> {
  let flags: ParsedFlags;
  try {
    flags = parseFlags(argv.slice(2), env);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    stderr.write(err.message + "\n");
    exit(err.exitCode);
  }
  if (flags.version) {
    stdout.write(
      `etcd-ts Version: ${ETCD_TS_VERSION}\netcd API Version: ${ETCD_VERSION}\nNode Version: ${process.version}\n`,
    );
    return;
  }
  if (flags.help) {
    stdout.write("Usage:\n\n  etcd-ts [flags]\n    Start an etcd-ts server (etcd 3.4's flags; see README).\n");
    return;
  }
  for (const key of flags.unknownEnv) log("W", "flags", `unrecognized environment variable ${key}`);
  for (const key of flags.unknownConfigKeys)
    log("W", "etcdmain", `ignoring unknown key ${JSON.stringify(key)} in --config-file`);
  await run(flags);
}

main().catch((err: unknown) => {
  if (err instanceof ClusterFetchError) {
    log("C", "etcdmain", `cannot fetch cluster info from peer urls: ${err.message}`);
    exit(1);
  }
  if (err instanceof FlagError) {
    log("E", "etcdmain", err.message);
    exit(err.exitCode);
  }
  if (err instanceof DataDirLockedError || err instanceof DataInconsistencyError) {
    log("E", "etcdmain", err.message);
    exit(1);
  }
  log("E", "etcdmain", err instanceof Error ? (err.stack ?? err.message) : String(err));
  exit(1);
});
