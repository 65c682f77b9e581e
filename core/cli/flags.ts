// etcd 3.4's command-line flags, parsed the way etcd's Go `flag` package and its ETCD_* environment binding do:
// `-name v`, `--name v`, `--name=v`; a bare boolean flag means true; an environment variable ETCD_NAME fills a flag
// the command line did not set. Each flag is honoured by etcd-ts or, when set to anything but its default,
// refused with a clear "not supported" error — never silently ignored. --config-file reads etcd's YAML instead.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { parseGoBool, parseGoDurationMs } from "../go_values.js";

export const FlagKind = {
  String: "string",
  Bool: "bool",
  Uint: "uint",
  Duration: "duration",
} as const;
export type FlagKind = (typeof FlagKind)[keyof typeof FlagKind];

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** The default as etcd prints it in `etcd --help`. */
  readonly defaultValue: string;
  /** false: etcd-ts rejects any value other than the default. */
  readonly supported: boolean;
}

const s = (name: string, defaultValue: string, supported = true): FlagSpec => ({
  name,
  kind: FlagKind.String,
  defaultValue,
  supported,
});
const b = (name: string, defaultValue: boolean, supported = true): FlagSpec => ({
  name,
  kind: FlagKind.Bool,
  defaultValue: String(defaultValue),
  supported,
});
const u = (name: string, defaultValue: number, supported = true): FlagSpec => ({
  name,
  kind: FlagKind.Uint,
  defaultValue: String(defaultValue),
  supported,
});
const d = (name: string, defaultValue: string, supported = true): FlagSpec => ({
  name,
  kind: FlagKind.Duration,
  defaultValue,
  supported,
});

/**
 * etcd 3.4.23's flags (as `etcd --help` lists them), plus etcd-ts's own at the end. A flag marked unsupported is
 * accepted at its default value and refused with a clear error otherwise: etcd-ts never silently ignores one.
 */
export const FLAGS: readonly FlagSpec[] = [
  // Member
  s("name", "default"),
  s("data-dir", ""),
  s("wal-dir", "", false),
  u("snapshot-count", 100000),
  u("heartbeat-interval", 100),
  u("election-timeout", 1000),
  b("initial-election-tick-advance", true),
  s("listen-peer-urls", "http://localhost:2380"),
  s("listen-client-urls", "http://localhost:2379"),
  u("max-snapshots", 5, false),
  u("max-wals", 5, false),
  u("quota-backend-bytes", 0),
  d("backend-batch-interval", ""),
  u("backend-batch-limit", 0),
  u("max-txn-ops", 128),
  u("max-request-bytes", 1572864),
  u("max-concurrent-streams", 4294967295),
  d("grpc-keepalive-min-time", "5s", false),
  d("grpc-keepalive-interval", "2h"),
  d("grpc-keepalive-timeout", "20s"),
  // Clustering
  s("initial-advertise-peer-urls", "http://localhost:2380"),
  s("initial-cluster", "default=http://localhost:2380"),
  s("initial-cluster-state", "new"),
  s("initial-cluster-token", "etcd-cluster"),
  s("advertise-client-urls", "http://localhost:2379"),
  s("discovery", "", false),
  s("discovery-fallback", "proxy", false),
  s("discovery-proxy", "", false),
  s("discovery-srv", "", false),
  s("discovery-srv-name", "", false),
  b("strict-reconfig-check", true),
  b("pre-vote", false),
  s("auto-compaction-retention", "0"),
  s("auto-compaction-mode", "periodic"),
  b("enable-v2", false),
  // Security
  s("cert-file", ""),
  s("key-file", ""),
  b("client-cert-auth", false),
  s("client-crl-file", ""),
  s("client-cert-allowed-hostname", ""),
  s("trusted-ca-file", ""),
  b("auto-tls", false),
  s("peer-cert-file", ""),
  s("peer-key-file", ""),
  b("peer-client-cert-auth", false),
  s("peer-trusted-ca-file", ""),
  s("peer-cert-allowed-cn", ""),
  s("peer-cert-allowed-hostname", ""),
  b("peer-auto-tls", false),
  s("peer-crl-file", ""),
  s("cipher-suites", ""),
  s("cors", "*", false),
  s("host-whitelist", "*", false),
  // Auth
  s("auth-token", "simple"),
  u("bcrypt-cost", 10),
  u("auth-token-ttl", 300),
  // Profiling and monitoring
  b("enable-pprof", false, false),
  s("metrics", "basic", false),
  s("listen-metrics-urls", ""),
  // Logging
  s("logger", "capnslog"),
  s("log-outputs", "default"),
  s("log-level", "info"),
  // v2 proxy: etcd-ts serves the v2 API (--enable-v2) but is no v2 proxy
  s("proxy", "off", false),
  u("proxy-failure-wait", 5000, false),
  u("proxy-refresh-interval", 30000, false),
  u("proxy-dial-timeout", 1000, false),
  u("proxy-write-timeout", 5000, false),
  u("proxy-read-timeout", 0, false),
  // Experimental
  b("experimental-initial-corrupt-check", false),
  d("experimental-corrupt-check-time", "0s"),
  s("experimental-enable-v2v3", "", false),
  s("experimental-backend-bbolt-freelist-type", "array", false),
  b("experimental-enable-lease-checkpoint", false),
  u("experimental-compaction-batch-limit", 1000, false),
  b("experimental-peer-skip-client-san-verification", false),
  d("experimental-watch-progress-notify-interval", "10m"),
  d("experimental-warning-apply-duration", "100ms", false),
  // Unsafe and deprecated
  b("force-new-cluster", false, false),
  b("debug", false),
  s("log-package-levels", "", false),
  s("config-file", ""),
  // etcd-ts's own
  s("backend-read-mode", "concurrent"),
  // Serves PUT /debug/peer-faults on the client port: {"isolate":true|false} drops every raft message to and from
  // this member (the cluster experiments' partition, without iptables). Off by default; never in production.
  b("experimental-peer-fault-injection", false),
  // etcd 3.5's flag: log entries kept behind a snapshot for slow followers (tests shrink it to force snapshots).
  u("experimental-snapshot-catchup-entries", 5000),
  // Serves GET/PUT /debug/failpoints on the client port (loopback only) to arm the storage failpoints
  // (core/failpoints.ts; ETCD_TS_FAILPOINTS arms them at start-up). Off by default; never in production.
  b("experimental-failpoints", false),
  // WAL segment size in bytes (default 64 MiB, as etcd): tests shrink it so segments are cut and released.
  u("experimental-wal-segment-bytes", 64 * 1024 * 1024),
];

const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

export function flagSpec(name: string): FlagSpec | undefined {
  return BY_NAME.get(name);
}

/** The error etcd's flag parsing reports; `exitCode` is what etcd exits with (2 for usage errors). */
export class FlagError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "FlagError";
    this.exitCode = exitCode;
  }
}

export interface ParsedFlags {
  /** Every flag's value as text: set on the command line, from the environment, or the default. */
  readonly values: ReadonlyMap<string, string>;
  /** Where each non-default value came from. */
  readonly sources: ReadonlyMap<string, "flag" | "env" | "file">;
  readonly help: boolean;
  readonly version: boolean;
  /** Environment variables starting ETCD_ that name no flag (etcd warns about them). */
  readonly unknownEnv: readonly string[];
  /** Keys of the --config-file that name no flag (etcd ignores them; etcd-ts warns). */
  readonly unknownConfigKeys: readonly string[];
}

export function envNameOf(flag: string): string {
  return "ETCD_" + flag.toUpperCase().replaceAll("-", "_");
}

/** Enumerated string flags: etcd rejects other values while parsing (exit 2). */
const CHOICES: Readonly<Record<string, readonly string[]>> = {
  "initial-cluster-state": ["new", "existing"],
  "backend-read-mode": ["concurrent", "blocking"],
  "log-level": ["debug", "info", "warn", "error", "panic", "fatal"],
};

/**
 * A duration flag's value in milliseconds: Go's time.ParseDuration, except that an unset flag ("") is 0 and a
 * negative duration is refused (no etcd duration flag has a meaning below zero).
 */
export function parseDurationMs(text: string): number | undefined {
  if (text === "") return 0;
  const ms = parseGoDurationMs(text);
  return ms === undefined || ms < 0 ? undefined : ms;
}

/** Why `value` is not a valid value of `spec`, phrased as etcd's flag package does, or undefined. */
function invalidReason(spec: FlagSpec, value: string): string | undefined {
  switch (spec.kind) {
    case FlagKind.Bool:
      return parseGoBool(value) === undefined ? "parse error" : undefined;
    case FlagKind.Uint:
      return /^\d+$/.test(value) && Number(value) <= 2 ** 64 - 1 ? undefined : "parse error";
    case FlagKind.Duration:
      return parseDurationMs(value) === undefined ? "parse error" : undefined;
    case FlagKind.String: {
      const choices = CHOICES[spec.name];
      return choices === undefined || choices.includes(value) ? undefined : "invalid value";
    }
  }
}

function flagValueError(spec: FlagSpec, value: string, reason: string): FlagError {
  if (spec.kind === FlagKind.Bool)
    return new FlagError(`invalid boolean value "${value}" for -${spec.name}: ${reason}`);
  return new FlagError(`invalid value "${value}" for flag -${spec.name}: ${reason}`);
}

/** Parses argv (without node and script) and the environment as etcd 3.4 does. Throws FlagError. */
export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv = {}): ParsedFlags {
  const fromFlags = parseArgv(argv);
  const values = new Map<string, string>();
  const sources = new Map<string, "flag" | "env" | "file">();
  for (const spec of FLAGS) values.set(spec.name, spec.defaultValue);
  for (const [name, value] of fromFlags.set) {
    values.set(name, value);
    sources.set(name, "flag");
  }
  const unknownEnv: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    // ETCD_TS_* is etcd-ts's own namespace (the test-only failpoint and power-loss variables), not a flag.
    if (!key.startsWith("ETCD_") || key.startsWith("ETCD_TS_") || value === undefined) continue;
    const spec = FLAGS.find((f) => envNameOf(f.name) === key);
    if (spec === undefined) {
      unknownEnv.push(key);
      continue;
    }
    if (sources.has(spec.name)) continue; // the command line shadows the environment, as in etcd
    if (invalidReason(spec, value) !== undefined) {
      throw new FlagError(
        `error verifying flags, invalid value "${value}" for ${key}: parse error. See 'etcd --help'.`,
        1,
      );
    }
    values.set(spec.name, value);
    sources.set(spec.name, "env");
  }
  const configFile = values.get("config-file") ?? "";
  const unknownConfigKeys: string[] = [];
  if (configFile !== "" && !fromFlags.help && !fromFlags.version) {
    // As etcd: a config file replaces every other flag and environment variable.
    values.clear();
    sources.clear();
    for (const spec of FLAGS) values.set(spec.name, spec.defaultValue);
    const file = readConfigFile(configFile);
    unknownConfigKeys.push(...file.unknown);
    for (const [name, value] of file.values) {
      values.set(name, value);
      sources.set(name, "file");
    }
    values.set("config-file", configFile);
  }
  rejectUnsupported(values);
  return { values, sources, help: fromFlags.help, version: fromFlags.version, unknownEnv, unknownConfigKeys };
}

function parseArgv(argv: readonly string[]): { set: Map<string, string>; help: boolean; version: boolean } {
  const set = new Map<string, string>();
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      if (arg === "--") break;
      throw new FlagError(`'${arg}' is not a valid flag`);
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    if (name === "h" || name === "help") {
      help = true;
      continue;
    }
    if (name === "version") {
      version = true;
      continue;
    }
    const spec = BY_NAME.get(name);
    if (spec === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (spec.kind === FlagKind.Bool) value = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new FlagError(`flag needs an argument: -${name}`);
      value = next;
      i++;
    }
    const reason = invalidReason(spec, value);
    if (reason !== undefined) throw flagValueError(spec, value, reason);
    set.set(name, value);
  }
  return { set, help, version };
}

/** etcd's YAML nests the TLS settings: client-transport-security.cert-file is --cert-file, peer-… is --peer-…. */
const NESTED: Readonly<Record<string, string>> = {
  "client-transport-security": "",
  "peer-transport-security": "peer-",
};

/**
 * Reads etcd's YAML configuration file into flag values (keys are the flag names; lists such as log-outputs may be
 * YAML lists). A bad value or a YAML error is a FlagError naming the file, exit code 1; keys naming no flag are
 * returned apart (etcd ignores them).
 */
export function readConfigFile(path: string): { values: Map<string, string>; unknown: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new FlagError(
      `error verifying flags, error loading config file ${JSON.stringify(path)}: ${(err as Error).message}`,
      1,
    );
  }
  const out = new Map<string, string>();
  const unknown: string[] = [];
  const put = (name: string, raw: unknown): void => {
    const spec = BY_NAME.get(name);
    if (spec === undefined) {
      unknown.push(name);
      return;
    }
    const value = Array.isArray(raw) ? raw.map(String).join(",") : raw === null ? "" : String(raw);
    const reason = invalidReason(spec, value);
    if (reason !== undefined)
      throw new FlagError(
        `error verifying flags, config file ${JSON.stringify(path)}: invalid value "${value}" for ${name}: ${reason}`,
        1,
      );
    out.set(name, value);
  };
  if (doc === null || doc === undefined) return { values: out, unknown };
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new FlagError(`error verifying flags, config file ${JSON.stringify(path)} is not a YAML mapping`, 1);
  for (const [key, raw] of Object.entries(doc)) {
    const prefix = NESTED[key];
    if (prefix !== undefined && raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
      for (const [sub, v] of Object.entries(raw)) put(prefix + sub, v);
    } else put(key, raw);
  }
  return { values: out, unknown };
}

function rejectUnsupported(values: ReadonlyMap<string, string>): void {
  for (const spec of FLAGS) {
    if (spec.supported) continue;
    const value = values.get(spec.name) ?? spec.defaultValue;
    if (!sameValue(spec, value)) {
      throw new FlagError(
        `error verifying flags, --${spec.name} is not supported by etcd-ts (got "${value}"). See 'etcd-ts --help'.`,
        1,
      );
    }
  }
}

function sameValue(spec: FlagSpec, value: string): boolean {
  if (spec.kind === FlagKind.Bool) return parseGoBool(value) === parseGoBool(spec.defaultValue);
  return value === spec.defaultValue;
}
