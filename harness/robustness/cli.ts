// npm run robustness -- [--target etcd-ts|etcd] [--members 1|3] [--seed N] [--seeds N] [--duration 60s]
//   [--faults all|none|failpoints|kill-leader,...] [--mix kube|kv] [--clients N] [--watches N] [--check FILE]
// Runs the robustness suite (one run per seed, from --seed on) and checks each history; --check re-checks a
// recorded history file offline. Exits 1 when any check finds a violation.
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve, join } from "node:path";
import { checkHistory, formatReport } from "./check.js";
import { ALL_FAULTS, parseFaults } from "./faults.js";
import { readHistory, type History } from "./history.js";
import { runOnce } from "./run.js";
import { MIXES, type Mix } from "./workload.js";
import { CLUSTER_KINDS, type ClusterKind } from "../targets/make.js";

interface Args {
  target: ClusterKind;
  members: number;
  seed: number;
  seeds: number;
  durationMs: number;
  faults: string;
  mix: Mix;
  clients: number;
  watches: number;
  check: string | undefined;
}

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (m === null) throw new Error(`bad duration ${JSON.stringify(s)} (use 60s, 500ms, 2m)`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    target: "etcd-ts",
    members: 3,
    seed: 1,
    seeds: 1,
    durationMs: 60_000,
    faults: "all",
    mix: "kube",
    clients: 4,
    watches: 3,
    check: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${flag} needs a value`);
      return x;
    };
    switch (flag) {
      case "--target": {
        const t = v();
        if (!(CLUSTER_KINDS as readonly string[]).includes(t))
          throw new Error(`--target is one of ${CLUSTER_KINDS.join(", ")}`);
        a.target = t as ClusterKind;
        break;
      }
      case "--members":
        a.members = Number(v());
        break;
      case "--seed":
        a.seed = Number(v());
        break;
      case "--seeds":
        a.seeds = Number(v());
        break;
      case "--duration":
        a.durationMs = parseDuration(v());
        break;
      case "--faults":
        a.faults = v();
        break;
      case "--mix": {
        const m = v();
        if (!(MIXES as readonly string[]).includes(m)) throw new Error(`--mix is one of ${MIXES.join(", ")}`);
        a.mix = m as Mix;
        break;
      }
      case "--clients":
        a.clients = Number(v());
        break;
      case "--watches":
        a.watches = Number(v());
        break;
      case "--check":
        a.check = v();
        break;
      default:
        throw new Error(`unknown flag ${flag}; faults: all, none, failpoints or ${ALL_FAULTS.join(",")}`);
    }
  }
  for (const [k, n] of [
    ["--members", a.members],
    ["--seed", a.seed],
    ["--seeds", a.seeds],
    ["--clients", a.clients],
    ["--watches", a.watches],
  ] as const) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`${k} must be a non-negative integer`);
  }
  return a;
}

/** failpointSummary: ", failpoints fired 2 of 3 (wal-after-save@4 m1, …)" when the run had failpoint faults. */
export function failpointSummary(h: History): string {
  const fps = h.faults.filter((f) => f.failpoint !== undefined);
  if (fps.length === 0) return "";
  const fired = fps.filter((f) => f.failpoint?.exit === "SIGKILL");
  const each = fps.map((f) => {
    const fp = f.failpoint!;
    return `${fp.point}@${fp.hit} m${f.members.join(",")}${fp.exit === "SIGKILL" ? "" : " not fired"}`;
  });
  return `, failpoints fired ${fired.length} of ${fps.length} (${each.join("; ")})`;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  if (a.check !== undefined) {
    const report = checkHistory(readHistory(a.check));
    console.log(formatReport(report));
    return report.ok ? 0 : 1;
  }
  const faults = parseFaults(a.faults, a.target);
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, "-")
    .replace(/-\d{3}Z$/, "Z");
  const dir = resolve("results", `robustness-${stamp}`);
  mkdirSync(dir, { recursive: true });
  const summary: string[] = [];
  let failed = 0;
  let harnessErrors = 0;
  for (let seed = a.seed; seed < a.seed + a.seeds; seed++) {
    let path: string;
    try {
      path = await runOnce(
        {
          target: a.target,
          members: a.members,
          seed,
          durationMs: a.durationMs,
          faults,
          mix: a.mix,
          clients: a.clients,
          watches: a.watches,
          dir,
        },
        (s) => console.log(s),
      );
    } catch (err) {
      // A run that could not be carried out (a member that would not start, say) checked nothing: it is
      // reported and counted apart from violations, and the remaining seeds still run.
      harnessErrors++;
      const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
      console.log(`seed ${seed}: not run to the end: ${msg}`);
      summary.push(`seed ${seed}: not run to the end (harness): ${msg}`);
      continue;
    }
    const history = readHistory(path);
    const report = checkHistory(history);
    const text = formatReport(report);
    writeFileSync(path.replace(/\.jsonl$/, ".report.txt"), text + "\n");
    console.log(`seed ${seed}: ${text}\nhistory: ${path}`);
    if (!report.ok) failed++;
    summary.push(
      `seed ${seed}: ${report.ok ? "ok" : `${report.violations.length} violation(s)`}, ${report.counts.ops} ops, ${report.counts.watchEvents} watch events, ${report.counts.faults} faults${failpointSummary(history)}, check ${report.linearization.ms.toFixed(0)} ms`,
    );
  }
  writeFileSync(
    join(dir, "summary.txt"),
    [
      `${a.target} ${a.members} members, ${a.mix} mix, faults ${a.faults}, ${a.durationMs / 1000} s per seed`,
      ...summary,
    ].join("\n") + "\n",
  );
  console.log(summary.join("\n"));
  if (harnessErrors > 0) console.log(`${harnessErrors} seed(s) not run to the end`);
  return failed === 0 && harnessErrors === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(2);
    },
  );
}
