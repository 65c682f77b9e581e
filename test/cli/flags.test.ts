// Proves etcd-ts parses etcd 3.4's flags as real etcd does: the same flag names and defaults as `etcd --help`,
// and, for bad input, the same error text and exit code as the real binary (run side by side when installed).
import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { FLAGS, FlagError, parseDurationMs, parseFlags } from "../../core/cli/flags.js";

const HAVE_ETCD = spawnSync("etcd", ["--version"]).status === 0;
const IN_CI = process.env["CI"] === "true";

/** Flags whose `etcd --help` default is computed or shown differently from the value we store. */
const DEFAULT_EXCEPTIONS = new Set(["data-dir", "max-concurrent-streams", "backend-batch-interval"]);

function etcdHelpDefaults(): Map<string, string> {
  const res = spawnSync("etcd", ["--help"], { encoding: "utf8" });
  const text = res.stdout + res.stderr;
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^ {2}--([a-z0-9-]+) (?:'([^']*)'|(\S+))$/gm)) {
    out.set(m[1] ?? "", m[2] ?? m[3] ?? "");
  }
  return out;
}

function ourError(argv: string[], env: NodeJS.ProcessEnv = {}): { message: string; exitCode: number } {
  try {
    parseFlags(argv, env);
  } catch (err) {
    if (err instanceof FlagError) return { message: err.message, exitCode: err.exitCode };
    throw err;
  }
  throw new Error(`parseFlags accepted ${JSON.stringify(argv)}`);
}

function etcdError(argv: string[], env: NodeJS.ProcessEnv = {}): { message: string; exitCode: number } {
  const res = spawnSync("etcd", ["--data-dir", "/nonexistent-etcd-ts-flag-test", ...argv], {
    encoding: "utf8",
    env: { PATH: process.env["PATH"], ...env },
    timeout: 10_000,
  });
  const lines = (res.stderr + res.stdout).split("\n").filter((l) => l.trim() !== "");
  const first = (lines[0] ?? "").replace(/^\S+ \S+ E \| etcdmain: /, "");
  return { message: first, exitCode: res.status ?? -1 };
}

describe("flags", () => {
  it("parse etcd's spellings: -f v, --f v, --f=v, bare booleans", () => {
    const p = parseFlags(["-name", "a", "--data-dir", "/d", "--heartbeat-interval=50", "--pre-vote"]);
    expect(p.values.get("name")).toBe("a");
    expect(p.values.get("data-dir")).toBe("/d");
    expect(p.values.get("heartbeat-interval")).toBe("50");
    expect(p.values.get("pre-vote")).toBe("true");
    expect(p.values.get("election-timeout")).toBe("1000");
  });

  it("take ETCD_* environment variables, shadowed by the command line", () => {
    const p = parseFlags(["--name", "flag"], { ETCD_NAME: "env", ETCD_SNAPSHOT_COUNT: "10", ETCD_BOGUS: "1" });
    expect(p.values.get("name")).toBe("flag");
    expect(p.values.get("snapshot-count")).toBe("10");
    expect(p.sources.get("snapshot-count")).toBe("env");
    expect(p.unknownEnv).toEqual(["ETCD_BOGUS"]);
  });

  it("refuse an unsupported flag set to a non-default value, and accept its default", () => {
    expect(ourError(["--proxy", "on"]).message).toMatch(/--proxy is not supported by etcd-ts/);
    expect(parseFlags(["--enable-v2=false"]).values.get("enable-v2")).toBe("false");
  });

  it("parse Go durations", () => {
    expect(parseDurationMs("100ms")).toBe(100);
    expect(parseDurationMs("1h30m")).toBe(5_400_000);
    expect(parseDurationMs("5")).toBeUndefined();
  });

  it.runIf(HAVE_ETCD || IN_CI)("list every flag `etcd --help` lists, with its default", () => {
    const theirs = etcdHelpDefaults();
    expect(theirs.size).toBeGreaterThan(60);
    const ours = new Map(FLAGS.map((f) => [f.name, f.defaultValue]));
    const missing = [...theirs.keys()].filter((n) => !ours.has(n));
    expect(missing).toEqual([]);
    const differing = [...theirs].filter(([n, v]) => !DEFAULT_EXCEPTIONS.has(n) && ours.get(n) !== v);
    expect(differing).toEqual([]);
  });

  const badInputs: { argv: string[]; env?: NodeJS.ProcessEnv }[] = [
    { argv: ["--heartbeat-interval=abc"] },
    { argv: ["--no-such-flag"] },
    { argv: ["--pre-vote=maybe"] },
    { argv: ["--grpc-keepalive-min-time=5"] },
    { argv: ["--initial-cluster-state", "bogus"] },
    { argv: ["--snapshot-count", "-5"] },
    { argv: [], env: { ETCD_HEARTBEAT_INTERVAL: "abc" } },
  ];
  for (const { argv, env } of badInputs) {
    it.runIf(HAVE_ETCD || IN_CI)(
      `reject ${JSON.stringify(argv)} ${JSON.stringify(env ?? {})} as real etcd does`,
      () => {
        const theirs = etcdError(argv, env);
        const ours = ourError(argv, env);
        expect(ours).toEqual(theirs);
      },
    );
  }

  it("has the etcd binary in CI (the differential tests above must not be skipped there)", () => {
    if (IN_CI) expect(HAVE_ETCD).toBe(true);
    expect(execFileSync("node", ["--version"], { encoding: "utf8" })).toMatch(/^v\d+/);
  });
});
