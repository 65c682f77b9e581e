// `npm run bench -- storage-claim`: steady closed-loop writes with 0, 1, 2, 4 concurrent clients looping full
// LISTs over N preloaded keys; write throughput and P99 per setting, beside the seed's "+70% write throughput,
// −90% P99 write latency with long reads" (etcd-io/etcd#10523: 3.4 concurrent reads vs 3.3 blocking).
import { performance } from "node:perf_hooks";
import { errorCode, type EtcdClient } from "../../core/client/index.js";
import type { Recorder } from "../metrics.js";
import { Progress } from "../progress.js";
import { renderReport } from "../report.js";
import { runDir, writeResults, type ClaimRow } from "../results.js";
import { envTargets, forEachTarget, num, parseArgs, pct, printTable, type TargetRun } from "./common.js";

const PREFIX = "/registry/pods/bench/";

interface Settings {
  readonly keys: number;
  readonly valueBytes: number;
  readonly writers: number;
  readonly seconds: number;
  readonly lists: readonly number[];
}

async function preload(client: EtcdClient, s: Settings, label: string): Promise<void> {
  const value = Buffer.alloc(s.valueBytes, "p");
  const bar = new Progress(`preload ${label}`, s.keys);
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < s.keys) {
      const i = next++;
      await client.put(`${PREFIX}pod-${String(i).padStart(6, "0")}`, value);
      bar.increment();
    }
  }));
  bar.stop();
}

async function setting(client: EtcdClient, rec: Recorder, s: Settings, lists: number, t0: number): Promise<void> {
  const phase = `lists=${lists}`;
  const value = Buffer.alloc(256, "w");
  const now = (): number => (performance.now() - t0) / 1000;
  const end = now() + s.seconds;
  const op = async (verb: string, resource: string, fn: () => Promise<unknown>): Promise<void> => {
    const start = now();
    try {
      await fn();
      rec.record(phase, verb, resource, { intendedS: start, sentS: start, doneS: now() });
    } catch (err) {
      rec.record(phase, verb, resource, { intendedS: start, sentS: start, doneS: now() }, { errorCode: errorCode(err) });
    }
  };
  const writers = Array.from({ length: s.writers }, async (_, w) => {
    for (let i = 0; now() < end; i++) await op("put", "kv", () => client.put(`/bench/w/${w}-${i % 100}`, value));
  });
  const listers = Array.from({ length: lists }, async () => {
    while (now() < end) await op("list", "pods", () => client.rangeSummary(PREFIX, { prefix: true }));
  });
  await Promise.all([...writers, ...listers]);
}

function claims(runs: readonly TargetRun[], rows: ReturnType<typeof writeResults>, s: Settings): ClaimRow[] {
  const maxL = Math.max(...s.lists);
  const put = (t: string, l: number) => rows.find((r) => r.target === t && r.phase === `lists=${l}` && r.verb === "put");
  const out: ClaimRow[] = [];
  for (const r of runs) {
    if (!r.available) {
      out.push({ claim: "write throughput with long reads, blocking → concurrent", seed_value: "+70%", target: r.name, measured_value: "not yet available", note: r.reason ?? "" });
      out.push({ claim: "P99 write latency with long reads, blocking → concurrent", seed_value: "−90%", target: r.name, measured_value: "not yet available", note: r.reason ?? "" });
      continue;
    }
    const base = put(r.name, 0), loaded = put(r.name, maxL);
    out.push({
      claim: `write throughput, 0 → ${maxL} looping full LISTs`, seed_value: "(context: seed +70% is blocking → concurrent)", target: r.name,
      measured_value: base !== undefined && loaded !== undefined ? `${base.throughput_per_s} → ${loaded.throughput_per_s} puts/s (${pct(base.throughput_per_s, loaded.throughput_per_s)})` : "n/a",
      note: "one target alone measures the cost of long reads, not the blocking → concurrent gain",
    });
    out.push({
      claim: `P99 write latency, 0 → ${maxL} looping full LISTs`, seed_value: "(context: seed −90% is blocking → concurrent)", target: r.name,
      measured_value: base !== undefined && loaded !== undefined ? `${base.p99_ms} → ${loaded.p99_ms} ms (${pct(base.p99_ms, loaded.p99_ms)})` : "n/a",
      note: "",
    });
  }
  const b = put("etcd-ts-blocking", maxL), c = put("etcd-ts-concurrent", maxL);
  const both = b !== undefined && c !== undefined;
  out.push({
    claim: `write throughput with ${maxL} long reads, blocking → concurrent`, seed_value: "+70% (etcd-io/etcd#10523)", target: "etcd-ts blocking → concurrent",
    measured_value: both ? `${b.throughput_per_s} → ${c.throughput_per_s} puts/s (${pct(b.throughput_per_s, c.throughput_per_s)})` : "not yet available",
    note: "needs both etcd-ts read modes",
  });
  out.push({
    claim: `P99 write latency with ${maxL} long reads, blocking → concurrent`, seed_value: "−90% (etcd-io/etcd#10523)", target: "etcd-ts blocking → concurrent",
    measured_value: both ? `${b.p99_ms} → ${c.p99_ms} ms (${pct(b.p99_ms, c.p99_ms)})` : "not yet available",
    note: "needs both etcd-ts read modes",
  });
  return out;
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s: Settings = {
    keys: num(args, "keys", 20_000), valueBytes: num(args, "value-size", 2048), writers: num(args, "writers", 16),
    seconds: num(args, "seconds", 10), lists: (args.get("lists") ?? "0,1,2,4").split(",").map(Number),
  };
  const targets = (args.get("targets") ?? "etcd-ts:blocking,etcd-ts:concurrent,etcd").split(",");
  const dir = runDir("storage-claim", args.get("results"));
  const startedAt = new Date().toISOString();
  const runs = await forEachTarget(targets, async (client, rec, name) => {
    await preload(client, s, name);
    const t0 = performance.now();
    for (const l of s.lists) {
      console.error(`${name}: ${l} concurrent LIST loop(s), ${s.writers} writers, ${s.seconds} s`);
      await setting(client, rec, s, l, t0);
    }
  });
  const recorders = runs.flatMap((r) => (r.recorder === undefined ? [] : [r.recorder]));
  const env = {
    experiment: "storage-claim", startedAt, args: argv, settings: s, targets: envTargets(runs),
    focus: [{ verb: "put", resource: "kv" }, { verb: "list", resource: "pods" }],
    notes: [
      `${s.keys} keys × ${s.valueBytes} B preloaded; ${s.writers} closed-loop writers of 256 B values; each setting runs ${s.seconds} s.`,
      ...runs.filter((r) => !r.available).map((r) => `${r.name}: not yet available — ${r.reason ?? ""}`),
    ],
  };
  const phaseSeconds = (): number => s.seconds;
  const rows = writeResults(dir, recorders, [], env, phaseSeconds);
  writeResults(dir, recorders, claims(runs, rows, s), env, phaseSeconds);
  printTable(rows);
  return renderReport(dir);
}
