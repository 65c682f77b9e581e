// `npm run bench -- failover`: a 3-member real etcd cluster, plain and TLS; a few clients doing steady puts and
// gets through one EtcdClient; kill -9 of the member the client is connected to, mid-run, --kills times (the
// killed member is restarted before the next round, and the client has moved on, so the kills go round the
// members). Per kill: time to recover (kill → first successful call sent after it), the errors seen, P99 before
// and after; summary.csv has P99 per mode × phase × verb. The target: P99 recovery ≤ 1 election
// timeout (etcd's default 1000 ms) + 1 dial timeout. `--targets etcd,etcd-ts` also starts 3 etcd-ts members
// (bin/etcd-ts, after npm run build); a cluster that does not start is reported as not available, with why.
// Before the kills (plain mode), overhead.csv compares sequential Ranges through EtcdClient with bare grpc-js
// calls on one channel (--overhead-calls, 0 to skip): the client's cost per request.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { stringify } from "csv-stringify/sync";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { EtcdClient, errorCode, type TlsOptions } from "../../core/client/index.js";
import { Recorder } from "../metrics.js";
import { runDir, writeResults, type ClaimRow } from "../results.js";
import { EtcdCluster, type EtcdClusterOptions } from "../targets/etcd_cluster.js";
import { num, parseArgs, printTable } from "./common.js";

/** etcd's default --election-timeout, the first half of the recovery target. */
const ELECTION_TIMEOUT_MS = 1_000;
/** How long after a kill the experiment waits for a first successful call before calling it unrecovered (-1). */
const RECOVERY_WAIT_S = 30;

interface Settings {
  readonly kills: number;
  readonly beforeS: number;
  readonly afterS: number;
  readonly workers: number;
  readonly dialTimeoutMs: number;
  /** Sequential Ranges per path (raw grpc-js, EtcdClient) for the overhead comparison; 0 = skip it. */
  readonly overheadCalls: number;
  readonly modes: readonly ("plain" | "tls")[];
}

interface KillRow {
  readonly target: string;
  readonly mode: string;
  readonly kill: number;
  readonly victim: string;
  readonly victim_was_leader: "yes" | "no";
  readonly recover_ms: number;
  readonly errors_after_kill: number;
  readonly errors_by_code: string;
  readonly p99_before_ms: number;
  readonly p99_after_ms: number;
}

interface Load {
  readonly client: EtcdClient;
  readonly rec: Recorder;
  readonly t0: number;
  phase: string;
  stopAt: number;
  /** Every completed call: when it was sent and done (seconds since t0), and its error code if it failed. */
  readonly calls: { sentS: number; doneS: number; code: string | undefined }[];
}

function nowS(load: Load): number {
  return (performance.now() - load.t0) / 1000;
}

async function worker(load: Load, w: number): Promise<void> {
  const value = Buffer.alloc(256, "f");
  for (let i = 0; nowS(load) < load.stopAt; i++) {
    const key = `/failover/${w}/${i % 100}`;
    for (const [verb, call] of [["put", () => load.client.put(key, value)], ["get", () => load.client.get(key)]] as const) {
      const phase = load.phase;
      const sentS = nowS(load);
      try {
        await call();
        const doneS = nowS(load);
        load.rec.record(phase, verb, "kv", { intendedS: sentS, sentS, doneS });
        load.calls.push({ sentS, doneS, code: undefined });
      } catch (err) {
        const code = errorCode(err);
        const doneS = nowS(load);
        load.rec.record(phase, verb, "kv", { intendedS: sentS, sentS, doneS }, { errorCode: code });
        load.calls.push({ sentS, doneS, code });
        await new Promise((r) => setTimeout(r, 10)); // an error storm must not become a busy loop
      }
    }
  }
}

/** p99Ms of the calls sent in [fromS, toS), failed ones included (their wait is what a caller saw). */
function p99Ms(load: Load, fromS: number, toS: number): number {
  const ms = load.calls.filter((c) => c.sentS >= fromS && c.sentS < toS).map((c) => (c.doneS - c.sentS) * 1000);
  return Math.round(percentile(ms, 99) * 1000) / 1000;
}

async function oneKill(cluster: EtcdCluster, load: Load, s: Settings, mode: string, kill: number): Promise<KillRow> {
  const before = `${mode}-before`;
  const after = `${mode}-after`;
  load.phase = before;
  await new Promise((r) => setTimeout(r, s.beforeS * 1000));
  const victimEp = load.client.connection.currentEndpoint();
  const victim = cluster.endpoints().indexOf(victimEp);
  if (victim < 0) throw new Error(`connected endpoint ${victimEp} is not one of ${cluster.endpoints().join(",")}`);
  const status = await load.client.status();
  const wasLeader = status.leader === status.header.memberId;
  load.phase = after;
  const killS = nowS(load);
  await cluster.kill(victim);
  await new Promise((r) => setTimeout(r, s.afterS * 1000));
  // A recovery slower than the window still counts: wait (up to RECOVERY_WAIT_S) for a call sent after the kill.
  const recovered = (): boolean => load.calls.some((c) => c.sentS >= killS && c.code === undefined);
  while (!recovered() && nowS(load) < killS + RECOVERY_WAIT_S) await new Promise((r) => setTimeout(r, 20));
  const endS = nowS(load);
  // Calls in flight at the kill were sent before it; the errors of a kill are those completing after it.
  const first = load.calls.filter((c) => c.sentS >= killS && c.code === undefined).reduce((m, c) => Math.min(m, c.doneS), Infinity);
  const errs = load.calls.filter((c) => c.doneS >= killS && c.doneS < endS && c.code !== undefined);
  const byCode = new Map<string, number>();
  for (const e of errs) byCode.set(e.code!, (byCode.get(e.code!) ?? 0) + 1);
  load.phase = `${mode}-restart`;
  await cluster.restart(victim);
  return {
    target: load.rec.target, mode, kill, victim: victimEp, victim_was_leader: wasLeader ? "yes" : "no",
    recover_ms: Number.isFinite(first) ? Math.round((first - killS) * 1000) : -1,
    errors_after_kill: errs.length,
    errors_by_code: [...byCode].map(([c, n]) => `${c}:${n}`).join(" "),
    p99_before_ms: p99Ms(load, killS - s.beforeS, killS), p99_after_ms: p99Ms(load, killS, endS),
  };
}

interface OverheadRow {
  readonly target: string;
  readonly path: "raw grpc-js" | "EtcdClient";
  readonly calls: number;
  readonly p50_us: number;
  readonly p99_us: number;
  readonly cpu_us_per_call: number;
}

/**
 * overhead: the client's cost per request beside a bare grpc-js Range on one channel to the same member, in
 * alternating blocks of sequential calls (so load from elsewhere on the machine hits both alike).
 */
async function overhead(target: string, endpoint: string, calls: number): Promise<OverheadRow[]> {
  const def = (loadEtcdProto().packageDefinition["etcdserverpb.KV"] as grpc.ServiceDefinition)["Range"]!;
  const raw = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  const client = new EtcdClient({ endpoints: [endpoint] });
  const req = { key: Buffer.from("/failover/overhead") };
  const paths = {
    "raw grpc-js": () => new Promise<unknown>((res, rej) => raw.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, req,
      new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, r) => (err !== null ? rej(err) : res(r)))),
    EtcdClient: () => client.get(req.key),
  } as const;
  const samples = { "raw grpc-js": [] as number[], EtcdClient: [] as number[] };
  const cpuUs = { "raw grpc-js": 0, EtcdClient: 0 };
  try {
    for (const name of ["raw grpc-js", "EtcdClient"] as const) await paths[name](); // connect both first
    const block = Math.max(1, Math.floor(calls / 10));
    for (let done = 0; done < calls; done += block) {
      for (const name of ["raw grpc-js", "EtcdClient"] as const) {
        const cpu0 = process.cpuUsage();
        for (let i = 0; i < block; i++) {
          const t = performance.now();
          await paths[name]();
          samples[name].push((performance.now() - t) * 1000);
        }
        const cpu = process.cpuUsage(cpu0);
        cpuUs[name] += cpu.user + cpu.system;
      }
    }
  } finally {
    raw.close();
    client.close();
  }
  return (["raw grpc-js", "EtcdClient"] as const).map((path) => ({
    target, path, calls: samples[path].length, p50_us: Math.round(percentile(samples[path], 50)),
    p99_us: Math.round(percentile(samples[path], 99)), cpu_us_per_call: Math.round(cpuUs[path] / samples[path].length),
  }));
}

/** TARGETS: the 3-member clusters the experiment can run; etcd-ts is started through bin/etcd-ts (needs a build). */
const TARGETS: Record<string, { readonly name: string; readonly bin: string }> = {
  etcd: { name: "etcd-3", bin: "etcd" },
  "etcd-ts": { name: "etcd-ts-3", bin: resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/etcd-ts") },
};

/** ModeRun is one target × mode: its kill rows, or why it could not run. */
interface ModeRun {
  readonly rows: KillRow[];
  readonly overhead: OverheadRow[];
  readonly unavailable: string | undefined;
}

async function runMode(target: { name: string; bin: string }, mode: "plain" | "tls", s: Settings, rec: Recorder): Promise<ModeRun> {
  const pki = mode === "tls" ? makePki() : undefined;
  const tls: TlsOptions | undefined = pki === undefined ? undefined : { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
  const opts: EtcdClusterOptions = pki === undefined || tls === undefined ? { bin: target.bin } : {
    bin: target.bin,
    clientTls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, trustedCaFile: pki.caFile, clientCertAuth: true },
    probe: { tls },
  };
  const cluster = new EtcdCluster(3, opts);
  const rows: KillRow[] = [];
  let over: OverheadRow[] = [];
  try {
    try {
      await cluster.start();
    } catch (err) {
      const reason = `did not start: ${String(err).replace(/\s+/g, " ").slice(0, 300)}`;
      console.error(`${target.name} ${mode}: not available — ${reason}`);
      return { rows, overhead: [], unavailable: reason };
    }
    over = mode === "plain" && s.overheadCalls > 0 ? await overhead(target.name, cluster.endpoints()[0]!, s.overheadCalls) : [];
    const client = new EtcdClient({ endpoints: cluster.endpoints(), dialTimeoutMs: s.dialTimeoutMs, callTimeoutMs: 10_000, ...(tls === undefined ? {} : { tls }) });
    const load: Load = { client, rec, t0: performance.now(), phase: `${mode}-before`, stopAt: Infinity, calls: [] };
    const workers = Array.from({ length: s.workers }, (_, w) => worker(load, w));
    try {
      for (let k = 1; k <= s.kills; k++) {
        const row = await oneKill(cluster, load, s, mode, k);
        console.error(`${target.name} ${mode} kill ${k}: ${row.victim}${row.victim_was_leader === "yes" ? " (leader)" : ""} recovered in ${row.recover_ms} ms, ${row.errors_after_kill} errors ${row.errors_by_code}`);
        rows.push(row);
      }
    } finally {
      load.stopAt = 0;
      await Promise.all(workers);
      client.close();
    }
  } finally {
    await cluster.stop();
    pki?.cleanup();
  }
  return { rows, overhead: over, unavailable: undefined };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function claims(rows: readonly KillRow[], s: Settings, unavailable: ReadonlyMap<string, string>): ClaimRow[] {
  const out: ClaimRow[] = [];
  const budget = ELECTION_TIMEOUT_MS + s.dialTimeoutMs;
  const targets = [...new Set([...rows.map((r) => r.target), ...[...unavailable.keys()].map((k) => k.split(" ")[0]!)])];
  for (const target of targets) {
    for (const mode of s.modes) {
      const claim = `P99 failover (kill -9 → first successful call), ${mode}`;
      const seed = `≤ ${budget} ms (1 election timeout + 1 dial timeout)`;
      const why = unavailable.get(`${target} ${mode}`);
      if (why !== undefined) {
        out.push({ claim, seed_value: seed, target, measured_value: "not yet available", note: why });
        continue;
      }
      const mine = rows.filter((r) => r.target === target && r.mode === mode);
      const rec = mine.filter((r) => r.recover_ms >= 0).map((r) => r.recover_ms);
      out.push({
        claim, seed_value: seed, target, measured_value: `P50 ${percentile(rec, 50)} ms, P99 ${percentile(rec, 99)} ms over ${rec.length} kills`,
        note: `${mine.filter((r) => r.victim_was_leader === "yes").length} of the kills hit the leader; ${mine.length - rec.length} never recovered`,
      });
    }
  }
  return out;
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const modes = (args.get("modes") ?? "plain,tls").split(",").filter((m): m is "plain" | "tls" => m === "plain" || m === "tls");
  const s: Settings = {
    kills: num(args, "kills", 3), beforeS: num(args, "before-s", 2), afterS: num(args, "after-s", 3),
    workers: num(args, "workers", 4), dialTimeoutMs: num(args, "dial-timeout-ms", 2_000),
    overheadCalls: num(args, "overhead-calls", 2_000), modes,
  };
  if (modes.length === 0) throw new Error(`--modes must name plain and/or tls, got ${JSON.stringify(args.get("modes"))}`);
  const targets = (args.get("targets") ?? "etcd").split(",");
  for (const t of targets) if (TARGETS[t] === undefined) throw new Error(`--targets takes ${Object.keys(TARGETS).join(", ")}; got ${JSON.stringify(t)}`);
  const dir = runDir("failover");
  const recorders: Recorder[] = [];
  const rows: KillRow[] = [];
  const unavailable = new Map<string, string>();
  const overheads: OverheadRow[] = [];
  for (const t of targets) {
    const target = TARGETS[t]!;
    const rec = new Recorder(target.name);
    recorders.push(rec);
    for (const mode of modes) {
      const r = await runMode(target, mode, s, rec);
      rows.push(...r.rows);
      overheads.push(...r.overhead);
      if (r.unavailable !== undefined) unavailable.set(`${target.name} ${mode}`, r.unavailable);
    }
  }
  const summary = writeResults(dir, recorders, claims(rows, s, unavailable), {
    experiment: "failover", startedAt: new Date().toISOString(), args: argv,
    targets: targets.map((t) => {
      const name = TARGETS[t]!.name;
      const why = modes.map((m) => unavailable.get(`${name} ${m}`)).filter((w) => w !== undefined);
      return { name, describe: `${t === "etcd" ? "real etcd 3.4" : "etcd-ts"}, 3 members on loopback, ${modes.join(" and ")}`, version: "",
        available: why.length < modes.length, ...(why.length > 0 ? { reason: why.join("; ") } : {}) };
    }),
    settings: s,
  }, (target, phase) => recorders.find((r) => r.target === target)?.phaseSeconds(phase) ?? 0);
  writeFileSync(join(dir, "failover.csv"), stringify(rows as KillRow[], { header: true, columns: Object.keys(rows[0] ?? { target: "" }) }));
  writeFileSync(join(dir, "overhead.csv"), stringify(overheads as OverheadRow[], { header: true, columns: ["target", "path", "calls", "p50_us", "p99_us", "cpu_us_per_call"] }));
  printTable(summary);
  for (const o of overheads) console.log(`${o.target} ${o.path.padEnd(11)}: ${o.calls} sequential Ranges, P50 ${o.p50_us} µs, P99 ${o.p99_us} µs, ${o.cpu_us_per_call} µs CPU per call`);
  for (const r of rows) console.log(`${r.target} ${r.mode} kill ${r.kill}: ${r.recover_ms} ms${r.victim_was_leader === "yes" ? " (leader)" : ""}, errors ${r.errors_after_kill} ${r.errors_by_code}, P99 ${r.p99_before_ms} → ${r.p99_after_ms} ms`);
  return dir;
}

// Test PKI made with the openssl CLI in a temp dir (also used by test/client/tls.test.ts): a CA, a server
// certificate for 127.0.0.1 and localhost (serverAuth + clientAuth, as etcd's members use one cert for both), a
// client certificate of that CA, and an unrelated CA with its own client certificate (one etcd must refuse).
// EC P-256 keys: fast to make.
export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** A server certificate (and key) of the CA naming only DNS:localhost: right for localhost, wrong for 127.0.0.1. */
  readonly localhostCert: Buffer;
  readonly localhostKey: Buffer;
  /** PEM bytes of the trusted CA, a client cert/key it signed, and a client cert/key of another CA. */
  readonly ca: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  readonly otherCa: Buffer;
  readonly otherClientCert: Buffer;
  readonly otherClientKey: Buffer;
  cleanup(): void;
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`]);
}

function makeLeaf(dir: string, ca: string, name: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
  openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial",
    "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`]);
}

/** makeTestPki writes the certificates under a fresh temp dir; call cleanup() to remove it. */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-pki-"));
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  makeLeaf(dir, "ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  makeLeaf(dir, "ca", "localhost-server", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
  makeLeaf(dir, "ca", "client", "extendedKeyUsage=clientAuth\n");
  makeLeaf(dir, "other-ca", "other-client", "extendedKeyUsage=clientAuth\n");
  const read = (f: string): Buffer => readFileSync(join(dir, f));
  return {
    dir,
    caFile: join(dir, "ca.crt"),
    serverCertFile: join(dir, "server.crt"),
    serverKeyFile: join(dir, "server.key"),
    localhostCert: read("localhost-server.crt"),
    localhostKey: read("localhost-server.key"),
    ca: read("ca.crt"),
    clientCert: read("client.crt"),
    clientKey: read("client.key"),
    otherCa: read("other-ca.crt"),
    otherClientCert: read("other-client.crt"),
    otherClientKey: read("other-client.key"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
