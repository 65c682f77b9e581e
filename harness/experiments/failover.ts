// `npm run bench -- failover`: a 3-member cluster (real etcd; `--targets etcd,etcd-ts` adds etcd-ts), plain and TLS;
// a few workers doing steady puts (each to a key of its own) and gets, and one prefix watch, through one client;
// kill -9 of the member the client is connected to, mid-run, --kills times (the killed member is restarted before
// the next round, and the client has moved on, so the kills go round the members). The same scenario runs with etcd-ts's
// EtcdClient and with the `etcd3` npm package (`--clients EtcdClient,etcd3`; client_drivers.ts says which member
// "connected" means for etcd3), one after the other on the same cluster. Per kill: time to recover (kill → first
// successful call sent after it), time until the watch delivers a new event, the errors seen, P99 before and after.
// Per client run: puts applied twice (a key's version 2: the client sent a put again after a failure that had been
// applied) and watch events lost or duplicated against the revisions the cluster made. The target: P99
// recovery ≤ 1 election timeout (etcd's default 1000 ms) + 1 dial timeout. A cluster that does not start is
// reported as not available, with why. Before the kills (plain mode), overhead.csv compares sequential Ranges
// through EtcdClient and etcd3 with bare grpc-js calls on one channel (client_overhead.ts; --overhead-calls, 0 to
// skip).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "csv-stringify/sync";
import { EtcdClient, prefixEnd, type TlsOptions } from "../../core/client/index.js";
import { Recorder } from "../metrics.js";
import { makePki } from "../pki.js";
import { runDir, writeResults, type ClaimRow } from "../results.js";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { CLUSTER_KINDS, makeCluster, type ClusterKind } from "../targets/make.js";
import { CLIENT_KINDS, makeDriver, type ClientKind, type Driver, type SeenEvent } from "./client_drivers.js";
import { num, parseArgs, printTable } from "./common.js";
import { percentileOf } from "../stats.js";
import { type OverheadRow, overhead } from "./client_overhead.js";

/** etcd's default --election-timeout, the first half of the recovery target. */
const ELECTION_TIMEOUT_MS = 1_000;
/** How long after a kill the experiment waits for a first successful call before calling it unrecovered (-1). */
const RECOVERY_WAIT_S = 30;
/** How long, after the load stops, the watch may take to deliver the last revision before the rest counts as lost. */
const WATCH_DRAIN_MS = 10_000;
/** Keys go under /failover/<client>/: each client run has its own, so its versions start at 1. */
const PREFIX = "/failover/";

interface Settings {
  readonly kills: number;
  readonly beforeS: number;
  readonly afterS: number;
  readonly workers: number;
  readonly dialTimeoutMs: number;
  /** Sequential Ranges per path (raw grpc-js, EtcdClient, etcd3) for the overhead comparison; 0 = skip it. */
  readonly overheadCalls: number;
  readonly modes: readonly ("plain" | "tls")[];
  readonly clients: readonly ClientKind[];
}

interface KillRow {
  readonly target: string;
  readonly client: ClientKind;
  readonly mode: string;
  readonly kill: number;
  readonly victim: string;
  readonly victim_was_leader: "yes" | "no";
  readonly recover_ms: number;
  /** Victim's exit → first event only a resumed watch could bring (watchResumeMs; -1: none in the window). */
  readonly watch_resume_ms: number;
  readonly errors_after_kill: number;
  readonly errors_by_code: string;
  readonly p99_before_ms: number;
  readonly p99_after_ms: number;
}

/** RunRow is one client's whole run on one cluster and mode: what its writes and watch came to. */
interface RunRow {
  readonly target: string;
  readonly client: ClientKind;
  readonly mode: string;
  readonly kills: number;
  readonly calls_ok: number;
  readonly calls_failed: number;
  readonly errors_by_code: string;
  readonly puts_applied_twice: number;
  readonly watch_expected: number;
  readonly watch_lost: number;
  readonly watch_duplicated: number;
}

interface Call {
  readonly sentS: number;
  readonly doneS: number;
  readonly code: string | undefined;
  /** The revision a successful put made (0n for gets and failures). */
  readonly revision: bigint;
}

interface Load {
  readonly driver: Driver;
  /** PREFIX + the client's name + "/". */
  readonly prefix: string;
  readonly rec: Recorder;
  readonly t0: number;
  phase: string;
  stopAt: number;
  /** Every completed call, in completion order. */
  readonly calls: Call[];
  readonly events: SeenEvent[];
}

function nowS(load: Load): number {
  return (performance.now() - load.t0) / 1000;
}

async function worker(load: Load, w: number): Promise<void> {
  const value = Buffer.alloc(256, "f");
  for (let i = 0; nowS(load) < load.stopAt; i++) {
    // A key per put: a version above 1 at the end is a put the client sent twice and the cluster applied twice.
    const key = `${load.prefix}${w}/${i}`;
    for (const verb of ["put", "get"] as const) {
      const phase = load.phase;
      const sentS = nowS(load);
      try {
        const revision = verb === "put" ? await load.driver.put(key, value) : (await load.driver.get(key), 0n);
        const doneS = nowS(load);
        load.rec.record(phase, verb, "kv", { intendedS: sentS, sentS, doneS });
        load.calls.push({ sentS, doneS, code: undefined, revision });
      } catch (err) {
        const code = load.driver.codeOf(err);
        const doneS = nowS(load);
        load.rec.record(phase, verb, "kv", { intendedS: sentS, sentS, doneS }, { errorCode: code });
        load.calls.push({ sentS, doneS, code, revision: 0n });
        await new Promise((r) => setTimeout(r, 10)); // an error storm must not become a busy loop
      }
    }
  }
}

/** p99Ms of the calls sent in [fromS, toS), failed ones included (their wait is what a caller saw). */
function p99Ms(load: Load, fromS: number, toS: number): number {
  const ms = load.calls.filter((c) => c.sentS >= fromS && c.sentS < toS).map((c) => (c.doneS - c.sentS) * 1000);
  return Math.round(percentileOf(ms, 99) * 1000) / 1000;
}

function byCode(calls: readonly Call[]): string {
  const counts = new Map<string, number>();
  for (const c of calls) if (c.code !== undefined) counts.set(c.code, (counts.get(c.code) ?? 0) + 1);
  return [...counts].map(([c, n]) => `${c}:${n}`).join(" ");
}

/**
 * watchResumeMs: the victim's exit → first event delivered after it for a revision above every revision known by
 * then (delivered by the watch, or acknowledged to a put): an event only a resumed watch could bring.
 */
function watchResumeMs(load: Load, exitS: number): number {
  const exitMs = load.t0 + exitS * 1000;
  const acked = load.calls.filter((c) => c.doneS <= exitS).reduce((m, c) => (c.revision > m ? c.revision : m), 0n);
  const known = load.events.filter((e) => e.atMs <= exitMs).reduce((m, e) => (e.revision > m ? e.revision : m), acked);
  const e = load.events.find((ev) => ev.atMs > exitMs && ev.revision > known);
  return e === undefined ? -1 : Math.round(e.atMs - exitMs);
}

async function oneKill(
  cluster: EtcdCluster,
  load: Load,
  s: Settings,
  mode: string,
  kill: number,
  tls: TlsOptions | undefined,
): Promise<KillRow> {
  load.phase = `${mode}-before`;
  await new Promise((r) => setTimeout(r, s.beforeS * 1000));
  const victimEp = await load.driver.victim();
  const victim = cluster.endpoints().indexOf(victimEp);
  if (victim < 0) throw new Error(`connected endpoint ${victimEp} is not one of ${cluster.endpoints().join(",")}`);
  const wasLeader = await isLeader(victimEp, tls);
  load.phase = `${mode}-after`;
  const killS = nowS(load);
  await cluster.kill(victim);
  const exitS = nowS(load);
  await new Promise((r) => setTimeout(r, s.afterS * 1000));
  // A recovery slower than the window still counts: wait (up to RECOVERY_WAIT_S) for a call sent after the kill.
  const recovered = (): boolean => load.calls.some((c) => c.sentS >= killS && c.code === undefined);
  while (!recovered() && nowS(load) < killS + RECOVERY_WAIT_S) await new Promise((r) => setTimeout(r, 20));
  const endS = nowS(load);
  // Calls in flight at the kill were sent before it; the errors of a kill are those completing after it.
  const first = load.calls
    .filter((c) => c.sentS >= killS && c.code === undefined)
    .reduce((m, c) => Math.min(m, c.doneS), Infinity);
  const errs = load.calls.filter((c) => c.doneS >= killS && c.doneS < endS && c.code !== undefined);
  const row: KillRow = {
    target: load.rec.target.split("/")[0]!,
    client: load.driver.kind,
    mode,
    kill,
    victim: victimEp,
    victim_was_leader: wasLeader ? "yes" : "no",
    recover_ms: Number.isFinite(first) ? Math.round((first - killS) * 1000) : -1,
    watch_resume_ms: watchResumeMs(load, exitS),
    errors_after_kill: errs.length,
    errors_by_code: byCode(errs),
    p99_before_ms: p99Ms(load, killS - s.beforeS, killS),
    p99_after_ms: p99Ms(load, killS, endS),
  };
  load.phase = `${mode}-restart`;
  await cluster.restart(victim).catch((err: unknown) => {
    throw new Error(
      `restart of ${victimEp} after kill ${kill}: ${String(err)}; its stderr ends: ${cluster.stderrTail(victim).slice(-600)}`,
    );
  });
  return row;
}

async function isLeader(endpoint: string, tls: TlsOptions | undefined): Promise<boolean> {
  const c = new EtcdClient({ endpoints: [endpoint], callTimeoutMs: 5_000, ...(tls === undefined ? {} : { tls }) });
  try {
    const st = await c.status();
    return st.leader === st.header.memberId;
  } finally {
    c.close();
  }
}

/**
 * audit counts, after the load stopped: puts applied twice (keys under load.prefix with version > 1) and the watch's
 * lost and duplicated events against every revision made since it started (only the workers write meanwhile).
 */
async function audit(
  checker: EtcdClient,
  load: Load,
  watchStart: bigint,
): Promise<Pick<RunRow, "puts_applied_twice" | "watch_expected" | "watch_lost" | "watch_duplicated">> {
  const finalRev = (await checker.get(load.prefix, { prefix: true, countOnly: true })).header.revision;
  const deadline = performance.now() + WATCH_DRAIN_MS;
  const top = (): bigint => load.events.reduce((m, e) => (e.revision > m ? e.revision : m), 0n);
  while (top() < finalRev && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  let twice = 0;
  for (let from = load.prefix; ; ) {
    const page = await checker.get(from, { rangeEnd: prefixEnd(Buffer.from(load.prefix)), limit: 5_000 });
    for (const kv of page.kvs) if (kv.version > 1n) twice++;
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || last === undefined) break;
    from = `${Buffer.from(last.key).toString("utf8")}\0`;
  }
  const seen = new Set(load.events.map((e) => e.revision));
  const expected = Number(finalRev - watchStart + 1n);
  let lost = 0;
  for (let r = watchStart; r <= finalRev; r++) if (!seen.has(r)) lost++;
  return {
    puts_applied_twice: twice,
    watch_expected: expected,
    watch_lost: lost,
    watch_duplicated: load.events.length - seen.size,
  };
}

/** runClient drives one client through s.kills kills on a running cluster; returns its kill rows and run row. */
/** runClient: `kills` gets each kill's row as it is measured (kept when a later step throws). */
async function runClient(
  cluster: EtcdCluster,
  kind: ClientKind,
  rec: Recorder,
  s: Settings,
  mode: "plain" | "tls",
  tls: TlsOptions | undefined,
  kills: KillRow[],
): Promise<RunRow> {
  const endpoints = cluster.endpoints();
  const checker = new EtcdClient({ endpoints, callTimeoutMs: 10_000, ...(tls === undefined ? {} : { tls }) });
  const driver = makeDriver(kind, { endpoints, tls, dialTimeoutMs: s.dialTimeoutMs, callTimeoutMs: 10_000 });
  const load: Load = {
    driver,
    prefix: `${PREFIX}${kind}/`,
    rec,
    t0: performance.now(),
    phase: `${mode}-before`,
    stopAt: Infinity,
    calls: [],
    events: [],
  };
  let killed = 0;
  try {
    const watchStart = (await checker.get(load.prefix, { prefix: true, countOnly: true })).header.revision + 1n;
    await driver.watch(load.prefix, watchStart, load.events);
    const workers = Array.from({ length: s.workers }, (_, w) => worker(load, w));
    try {
      for (let k = 1; k <= s.kills; k++) {
        const row = await oneKill(cluster, load, s, mode, k, tls);
        console.error(
          `${rec.target} ${mode} kill ${k}: ${row.victim}${row.victim_was_leader === "yes" ? " (leader)" : ""} recovered in ${row.recover_ms} ms, watch in ${row.watch_resume_ms} ms, ${row.errors_after_kill} errors ${row.errors_by_code}`,
        );
        kills.push(row);
        killed++;
      }
    } finally {
      load.stopAt = 0;
      await Promise.all(workers);
    }
    const counts = await audit(checker, load, watchStart);
    const failed = load.calls.filter((c) => c.code !== undefined);
    return {
      target: rec.target.split("/")[0]!,
      client: kind,
      mode,
      kills: killed,
      calls_ok: load.calls.length - failed.length,
      calls_failed: failed.length,
      errors_by_code: byCode(failed),
      ...counts,
    };
  } finally {
    await driver.close();
    checker.close();
  }
}

/** ModeRun is one target × mode: its kill and run rows per client, or why it could not run. */
interface ModeRun {
  readonly kills: KillRow[];
  readonly runs: RunRow[];
  readonly overhead: OverheadRow[];
  readonly unavailable: string | undefined;
  /** Client runs that ended early, with why (the rows measured before are kept). */
  readonly aborted: string[];
}

async function runMode(
  kind: ClusterKind,
  mode: "plain" | "tls",
  s: Settings,
  recs: ReadonlyMap<ClientKind, Recorder>,
): Promise<ModeRun> {
  const pki = mode === "tls" ? makePki() : undefined;
  const tls: TlsOptions | undefined =
    pki === undefined ? undefined : { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
  const slot = makeCluster(
    kind,
    3,
    pki === undefined || tls === undefined
      ? {}
      : {
          clientTls: {
            certFile: pki.serverCertFile,
            keyFile: pki.serverKeyFile,
            trustedCaFile: pki.caFile,
            clientCertAuth: true,
          },
          probe: { tls },
        },
  );
  const target = { name: slot.name };
  const out: ModeRun = { kills: [], runs: [], overhead: [], unavailable: undefined, aborted: [] };
  if (slot.target === undefined) {
    pki?.cleanup();
    return { ...out, unavailable: slot.reason };
  }
  const cluster = slot.target;
  try {
    try {
      await cluster.start();
    } catch (err) {
      const tails = [0, 1, 2].map((i) => `m${i}: ${cluster.stderrTail(i).slice(-300)}`).join(" | ");
      const reason = `did not start: ${String(err).replace(/\s+/g, " ").slice(0, 300)}; stderr ends: ${tails.replace(/\s+/g, " ")}`;
      console.error(`${target.name} ${mode}: not available — ${reason}`);
      return { ...out, unavailable: reason };
    }
    if (mode === "plain" && s.overheadCalls > 0)
      out.overhead.push(...(await overhead(target.name, cluster.endpoints()[0]!, s.overheadCalls)));
    for (const kind of s.clients) {
      try {
        const run = await runClient(cluster, kind, recs.get(kind)!, s, mode, tls, out.kills);
        out.runs.push(run);
        console.error(
          `${target.name}/${kind} ${mode}: ${run.puts_applied_twice} puts applied twice, watch lost ${run.watch_lost} and repeated ${run.watch_duplicated} of ${run.watch_expected} events`,
        );
      } catch (err) {
        // The cluster is in an unknown state (a member did not come back): record why and end this mode.
        const why = `${target.name}/${kind} ${mode} aborted: ${String(err).replace(/\s+/g, " ").slice(0, 900)}`;
        console.error(why);
        out.aborted.push(why);
        break;
      }
    }
  } finally {
    await cluster.stop();
    pki?.cleanup();
  }
  return out;
}

function claims(
  kills: readonly KillRow[],
  runs: readonly RunRow[],
  s: Settings,
  unavailable: ReadonlyMap<string, string>,
  targets: readonly string[],
): ClaimRow[] {
  const out: ClaimRow[] = [];
  const budget = ELECTION_TIMEOUT_MS + s.dialTimeoutMs;
  for (const target of targets) {
    for (const client of s.clients) {
      for (const mode of s.modes) {
        const claim = `P99 failover (kill -9 → first successful call), ${mode}, ${client}`;
        const seed = `≤ ${budget} ms (1 election timeout + 1 dial timeout)`;
        const why = unavailable.get(`${target} ${mode}`);
        if (why !== undefined) {
          out.push({ claim, seed_value: seed, target, measured_value: "not yet available", note: why });
          continue;
        }
        const mine = kills.filter((r) => r.target === target && r.mode === mode && r.client === client);
        const rec = mine.filter((r) => r.recover_ms >= 0).map((r) => r.recover_ms);
        const run = runs.find((r) => r.target === target && r.mode === mode && r.client === client);
        out.push({
          claim,
          seed_value: seed,
          target,
          measured_value: `P50 ${percentileOf(rec, 50)} ms, P99 ${percentileOf(rec, 99)} ms over ${rec.length} kills`,
          note:
            `${mine.filter((r) => r.victim_was_leader === "yes").length} of the kills hit the leader; ${mine.length - rec.length} never recovered; ` +
            `puts applied twice ${run?.puts_applied_twice ?? "?"}; watch events lost ${run?.watch_lost ?? "?"}, repeated ${run?.watch_duplicated ?? "?"} of ${run?.watch_expected ?? "?"}`,
        });
      }
    }
  }
  return out;
}

/** printComparison prints one column per target/client: recovery, errors, double applies, watch losses. */
function printComparison(kills: readonly KillRow[], runs: readonly RunRow[], s: Settings): void {
  const cols = [...new Set(runs.map((r) => `${r.target}/${r.client}`))];
  const lines: string[][] = [["mode", "measure", ...cols]];
  for (const mode of s.modes) {
    const cell = (col: string, f: (k: KillRow[], r: RunRow | undefined) => string): string => {
      const [target, client] = col.split("/");
      return f(
        kills.filter((k) => k.target === target && k.client === client && k.mode === mode),
        runs.find((r) => r.target === target && r.client === client && r.mode === mode),
      );
    };
    const p = (k: KillRow[], q: number, pick: (r: KillRow) => number): string => {
      const v = k.map(pick).filter((x) => x >= 0);
      return v.length === 0 ? "-" : `${percentileOf(v, q)}`;
    };
    lines.push([
      mode,
      "recovery P50 / P99 ms",
      ...cols.map((c) => cell(c, (k) => `${p(k, 50, (r) => r.recover_ms)} / ${p(k, 99, (r) => r.recover_ms)}`)),
    ]);
    lines.push([
      mode,
      "watch resume P50 / P99 ms",
      ...cols.map((c) =>
        cell(c, (k) => `${p(k, 50, (r) => r.watch_resume_ms)} / ${p(k, 99, (r) => r.watch_resume_ms)}`),
      ),
    ]);
    lines.push([
      mode,
      "errors after the kills",
      ...cols.map((c) => cell(c, (k) => `${k.reduce((n, r) => n + r.errors_after_kill, 0)} over ${k.length}`)),
    ]);
    lines.push([
      mode,
      "puts applied twice",
      ...cols.map((c) => cell(c, (_, r) => String(r?.puts_applied_twice ?? "-"))),
    ]);
    lines.push([
      mode,
      "watch lost / repeated",
      ...cols.map((c) =>
        cell(c, (_, r) => (r === undefined ? "-" : `${r.watch_lost} / ${r.watch_duplicated} of ${r.watch_expected}`)),
      ),
    ]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  for (const l of lines) console.log(l.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const modes = (args.get("modes") ?? "plain,tls")
    .split(",")
    .filter((m): m is "plain" | "tls" => m === "plain" || m === "tls");
  const clients = (args.get("clients") ?? CLIENT_KINDS.join(",")).split(",");
  for (const c of clients)
    if (!(CLIENT_KINDS as readonly string[]).includes(c))
      throw new Error(`--clients takes ${CLIENT_KINDS.join(", ")}; got ${JSON.stringify(c)}`);
  const s: Settings = {
    kills: num(args, "kills", 3),
    beforeS: num(args, "before-s", 2),
    afterS: num(args, "after-s", 3),
    workers: num(args, "workers", 4),
    dialTimeoutMs: num(args, "dial-timeout-ms", 2_000),
    overheadCalls: num(args, "overhead-calls", 2_000),
    modes,
    clients: clients as ClientKind[],
  };
  if (modes.length === 0)
    throw new Error(`--modes must name plain and/or tls, got ${JSON.stringify(args.get("modes"))}`);
  const targets = (args.get("targets") ?? "etcd").split(",") as ClusterKind[];
  for (const t of targets)
    if (!CLUSTER_KINDS.includes(t))
      throw new Error(`--targets takes ${CLUSTER_KINDS.join(", ")}; got ${JSON.stringify(t)}`);
  const names = new Map(targets.map((t) => [t, makeCluster(t, 3).name] as const));
  const dir = runDir("failover");
  const recorders: Recorder[] = [];
  const kills: KillRow[] = [];
  const runs: RunRow[] = [];
  const unavailable = new Map<string, string>();
  const overheads: OverheadRow[] = [];
  const aborted: string[] = [];
  for (const t of targets) {
    const target = { name: names.get(t)! };
    const recs = new Map(s.clients.map((c) => [c, new Recorder(`${target.name}/${c}`)] as const));
    recorders.push(...recs.values());
    for (const mode of modes) {
      const r = await runMode(t, mode, s, recs);
      kills.push(...r.kills);
      runs.push(...r.runs);
      overheads.push(...r.overhead);
      aborted.push(...r.aborted);
      if (r.unavailable !== undefined) unavailable.set(`${target.name} ${mode}`, r.unavailable);
    }
  }
  const summary = writeResults(
    dir,
    recorders,
    claims(
      kills,
      runs,
      s,
      unavailable,
      targets.map((t) => names.get(t)!),
    ),
    {
      experiment: "failover",
      startedAt: new Date().toISOString(),
      args: argv,
      targets: targets.map((t) => {
        const name = names.get(t)!;
        const why = modes.map((m) => unavailable.get(`${name} ${m}`)).filter((w) => w !== undefined);
        return {
          name,
          describe: `${t === "etcd" ? "real etcd 3.4" : "etcd-ts"}, 3 members on loopback, ${modes.join(" and ")}; clients ${s.clients.join(", ")}`,
          version: "",
          available: why.length < modes.length,
          ...(why.length > 0 ? { reason: why.join("; ") } : {}),
        };
      }),
      settings: s,
      notes: aborted,
    },
    (target, phase) => recorders.find((r) => r.target === target)?.phaseSeconds(phase) ?? 0,
  );
  writeFileSync(
    join(dir, "failover.csv"),
    stringify(kills as KillRow[], { header: true, columns: Object.keys(kills[0] ?? { target: "" }) }),
  );
  writeFileSync(
    join(dir, "failover_runs.csv"),
    stringify(runs as RunRow[], { header: true, columns: Object.keys(runs[0] ?? { target: "" }) }),
  );
  writeFileSync(
    join(dir, "overhead.csv"),
    stringify(overheads as OverheadRow[], {
      header: true,
      columns: ["target", "path", "calls", "p50_us", "p99_us", "cpu_us_per_call"],
    }),
  );
  printTable(summary);
  for (const o of overheads)
    console.log(
      `${o.target} ${o.path.padEnd(11)}: ${o.calls} sequential Ranges, P50 ${o.p50_us} µs, P99 ${o.p99_us} µs, ${o.cpu_us_per_call} µs CPU per call`,
    );
  for (const r of kills)
    console.log(
      `${r.target}/${r.client} ${r.mode} kill ${r.kill}: ${r.recover_ms} ms${r.victim_was_leader === "yes" ? " (leader)" : ""}, watch ${r.watch_resume_ms} ms, errors ${r.errors_after_kill} ${r.errors_by_code}, P99 ${r.p99_before_ms} → ${r.p99_after_ms} ms`,
    );
  printComparison(kills, runs, s);
  for (const a of aborted) console.log(a);
  return dir;
}
