// The server's log lines as etcd 3.4 writes them: capnslog text (`2026-11-25 12:00:00.000000 I | pkg: msg`, the
// default) or zap JSON (`--logger zap`: {"level","ts","caller","msg"}), to stderr or stdout (`--log-outputs`),
// filtered by `--log-level` (`--debug` means debug). Log files are not supported (refused at start-up).
import { stderr, stdout } from "node:process";

/** capnslog's letters; C (critical) is what etcd logs just before exiting on a fatal error. */
export type Level = "D" | "I" | "N" | "W" | "E" | "C";
export type LogFn = (level: Level, pkg: string, msg: string) => void;

const RANK: Record<Level, number> = { D: 0, I: 1, N: 1, W: 2, E: 3, C: 4 };
const LEVEL_RANK: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 4 };
const ZAP_LEVEL: Record<Level, string> = { D: "debug", I: "info", N: "info", W: "warn", E: "error", C: "fatal" };

export interface LogOptions {
  readonly logger: string;
  readonly outputs: readonly string[];
  readonly level: string;
}

/** Why the options cannot be honoured (etcd-ts writes to stderr/stdout only), or undefined. */
export function logOptionsError(o: LogOptions): string | undefined {
  if (o.logger !== "capnslog" && o.logger !== "zap") return `unknown logger option ${JSON.stringify(o.logger)}`;
  const bad = o.outputs.find((x) => !["default", "stderr", "stdout"].includes(x));
  return bad === undefined
    ? undefined
    : `--log-outputs ${JSON.stringify(bad)} is not supported by etcd-ts (stderr, stdout or default)`;
}

export function createLogger(o: LogOptions): LogFn {
  const min = LEVEL_RANK[o.level] ?? 1;
  const sinks = o.outputs.map((x) => (x === "stdout" ? stdout : stderr));
  return (level, pkg, msg) => {
    if (RANK[level] < min) return;
    const line =
      o.logger === "zap"
        ? JSON.stringify({ level: ZAP_LEVEL[level], ts: new Date().toISOString(), caller: pkg, msg }) + "\n"
        : `${new Date().toISOString().replace("T", " ").replace("Z", "")} ${level} | ${pkg}: ${msg}\n`;
    for (const sink of sinks) sink.write(line);
  };
}
