// report.html from a results directory's CSVs and env.json only (so it can be rebuilt later): the seed's
// claims beside the measured values, P99 bars per op and phase, latency CDFs of the focus ops, throughput over
// time, the full summary table, and the environment. Self-contained: inline SVG, inline CSS, no scripts.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { samplesFor, tailOf } from "./metrics.js";
import { SPREAD_COLUMNS } from "./rounds.js";
import { CLAIM_COLUMNS, histogramFileName, readCsv, SUMMARY_COLUMNS } from "./results.js";
import { barChart, esc, lineChart, type Bar, type Series } from "./svg.js";

interface Focus {
  readonly verb: string;
  readonly resource: string;
}

function table(rows: readonly Record<string, string>[], columns: readonly string[]): string {
  const head = columns.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${columns.map((c) => `<td>${esc(r[c] ?? "")}</td>`).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function focusOf(env: Record<string, unknown>, summary: readonly Record<string, string>[]): Focus[] {
  const f = env["focus"];
  if (Array.isArray(f)) return f as Focus[];
  const writes = summary.filter((r) => ["create", "update", "delete", "put"].includes(r["verb"] ?? ""));
  const seen = new Set<string>();
  const out: Focus[] = [];
  for (const r of [...writes].sort((a, b) => Number(b["count"]) - Number(a["count"]))) {
    const k = `${r["verb"]} ${r["resource"]}`;
    if (!seen.has(k) && out.length < 3) {
      seen.add(k);
      out.push({ verb: r["verb"]!, resource: r["resource"]! });
    }
  }
  return out;
}

interface Reference {
  readonly label: string;
  readonly p99Ms: number;
}

function p99Bars(
  summary: readonly Record<string, string>[],
  focus: readonly Focus[],
  refs: readonly Reference[],
): string {
  const targets = [...new Set(summary.map((r) => r["target"]!))];
  // The seed's published numbers, drawn as grey bars beside the measured ones (group 7 = grey in svg.ts's palette order).
  const bars: Bar[] = refs.map((r) => ({ label: `seed: ${r.label}`, value: r.p99Ms, group: 7 }));
  for (const f of focus) {
    for (const r of summary.filter((x) => x["verb"] === f.verb && x["resource"] === f.resource)) {
      const t = tailOf({ count: r["count"]!, p99_ms: r["p99_ms"]!, max_ms: r["max_ms"]! });
      bars.push({
        label: `${r["target"]} · ${r["phase"]} · ${f.verb} ${f.resource} · ${t.label} n=${t.n}`,
        value: t.ms,
        group: targets.indexOf(r["target"]!),
      });
    }
  }
  return bars.length === 0 ? "" : barChart("P99 latency (ms, from intended send time; max where n < 100)", bars, "ms");
}

function cdfCharts(dir: string, summary: readonly Record<string, string>[], focus: readonly Focus[]): string {
  return focus
    .map((f) => {
      const series: Series[] = [];
      for (const r of summary.filter((x) => x["verb"] === f.verb && x["resource"] === f.resource)) {
        const rows = readCsv(
          join(
            dir,
            "histograms",
            histogramFileName({ target: r["target"]!, phase: r["phase"]!, verb: f.verb, resource: f.resource }),
          ),
        );
        series.push({
          name: `${r["target"]} ${r["phase"]}`,
          points: rows.map((p) => [Number(p["latency_ms"]), Number(p["percentile"])] as const),
        });
      }
      return lineChart(`Latency CDF: ${f.verb} ${f.resource}`, series, {
        x: "latency (ms, log)",
        y: "percentile",
        xLog: true,
      });
    })
    .join("\n");
}

function timelineChart(dir: string): string {
  const rows = readCsv(join(dir, "timeline.csv"));
  const series: Series[] = [];
  for (const target of [...new Set(rows.map((r) => r["target"]!))]) {
    const mine = rows.filter((r) => r["target"] === target);
    series.push({
      name: `${target} writes/s`,
      points: mine.map((r) => [Number(r["second"]), Number(r["writes"])] as const),
    });
    series.push({
      name: `${target} reads/s`,
      points: mine.map((r) => [Number(r["second"]), Number(r["reads"])] as const),
    });
  }
  return lineChart("Throughput over time (completed ops per second)", series, {
    x: "seconds since replay start",
    y: "ops/s",
  });
}

const CSS = `body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}.chart{display:block;margin:12px 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px}`;

/**
 * shownSummary applies the sample-count rule to the summary table: a percentile whose top share holds no
 * sample (P99 with n < 100, P99.9 with n < 1,000) is shown as the max it would equal, labelled so.
 */
export function shownSummary(rows: readonly Record<string, string>[]): Record<string, string>[] {
  return rows.map((r) => {
    const n = Number(r["count"]);
    const out = { ...r };
    if (n < samplesFor(99)) out["p99_ms"] = `max ${r["max_ms"] ?? ""}`;
    if (n < samplesFor(99.9)) out["p999_ms"] = `max ${r["max_ms"] ?? ""}`;
    return out;
  });
}

interface ReadWork {
  readonly write: Focus;
  readonly list: Focus;
}

/** readWorkTable puts, per target and cell, the writes' figures beside the LISTs served in the same cell. */
function readWorkTable(summary: readonly Record<string, string>[], rw: ReadWork | undefined): string {
  if (rw === undefined) return "";
  const find = (r: Record<string, string>, f: Focus): Record<string, string> | undefined =>
    summary.find(
      (x) =>
        x["target"] === r["target"] &&
        x["phase"] === r["phase"] &&
        x["verb"] === f.verb &&
        x["resource"] === f.resource,
    );
  const tail = (r: Record<string, string> | undefined): string => {
    if (r === undefined) return "-";
    const t = tailOf({ count: r["count"]!, p99_ms: r["p99_ms"]!, max_ms: r["max_ms"]! });
    return `${t.label} ${t.ms}`;
  };
  const rows = summary
    .filter((r) => r["verb"] === rw.write.verb && r["resource"] === rw.write.resource)
    .map((w) => {
      const l = find(w, rw.list);
      return {
        target: w["target"]!,
        phase: w["phase"]!,
        "writes n": w["count"]!,
        "writes/s": w["throughput_per_s"]!,
        "write p50 ms": w["p50_ms"]!,
        "write tail ms": tail(w),
        "LISTs n": l?.["count"] ?? "0",
        "LIST MB": l === undefined ? "0" : (Number(l["bytes"]) / 1e6).toFixed(1),
        "LIST p50 ms": l?.["p50_ms"] ?? "-",
        "LIST tail ms": tail(l),
      };
    });
  const cols = [
    "target",
    "phase",
    "writes n",
    "writes/s",
    "write p50 ms",
    "write tail ms",
    "LISTs n",
    "LIST MB",
    "LIST p50 ms",
    "LIST tail ms",
  ];
  return `<h2>Writes and read work per cell (${esc(rw.write.verb)} ${esc(rw.write.resource)} beside ${esc(rw.list.verb)} ${esc(rw.list.resource)}; tail = P99, or max when n &lt; 100)</h2>${table(rows, cols)}`;
}

function spreadSection(dir: string): string {
  const rows = readCsv(join(dir, "spread.csv"));
  if (rows.length === 0 || rows.every((r) => r["rounds"] === "1")) return "";
  return `<h2>Spread over rounds (median, min, max of each round's figure; tail = P99, or max when a round had n &lt; 100)</h2>${table(rows, SPREAD_COLUMNS as string[])}`;
}

/** Replayer event-loop delay (P99, ms) above which the report warns that the client limited the measurement. */
const LAG_WARN_MS = 20;

/** renderReport writes dir/report.html from the files in dir; returns its path. */
export function renderReport(dir: string): string {
  const env = JSON.parse(readFileSync(join(dir, "env.json"), "utf8")) as Record<string, unknown>;
  const summary = readCsv(join(dir, "summary.csv"));
  const claims = readCsv(join(dir, "claims.csv"));
  const focus = focusOf(env, summary);
  const targets =
    (env["targets"] as
      | {
          name: string;
          describe: string;
          version: string;
          available: boolean;
          reason?: string;
          eventLoopDelayP99Ms?: number;
        }[]
      | undefined) ?? [];
  const lagNotes = targets
    .filter((t) => (t.eventLoopDelayP99Ms ?? 0) > LAG_WARN_MS)
    .map(
      (t) =>
        `${t.name}: the replayer's event loop was delayed ${t.eventLoopDelayP99Ms} ms at P99 (CPU shared with the server and other work; load average ${env["loadAverage"] === undefined ? "not recorded" : JSON.stringify(env["loadAverage"])}); P99 latencies near or below that reflect the machine as much as the server.`,
    );
  const notes = [...((env["notes"] as string[] | undefined) ?? []), ...lagNotes]
    .map((n) => `<p class="note">${esc(n)}</p>`)
    .join("\n");
  const targetRows = targets.map((t) => ({
    round: String((t as { round?: number }).round ?? 1),
    target: t.name,
    available: t.available ? "yes" : "not yet available",
    version: t.version,
    detail: t.available ? t.describe : (t.reason ?? ""),
  }));
  const hists = (() => {
    try {
      return readdirSync(join(dir, "histograms")).length;
    } catch {
      return 0;
    }
  })();
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>etcd-ts bench: ${esc(String(env["experiment"] ?? ""))}</title><style>${CSS}</style></head><body>
<h1>etcd-ts bench — ${esc(String(env["experiment"] ?? ""))}</h1>
<p>Started ${esc(String(env["startedAt"] ?? ""))} · client ${esc(String(env["client"] ?? "node (core/client)"))} · git ${esc(String(env["gitCommit"] ?? ""))} · seed ${esc(String(env["seed"] ?? "-"))} · trace ${esc(String(env["traceDigest"] ?? "-"))}</p>
${notes}
<h2>Targets</h2>${table(targetRows, ["round", "target", "available", "version", "detail"])}
<h2>The seed's claims beside what was measured</h2>${claims.length === 0 ? "<p>none</p>" : table(claims, [...CLAIM_COLUMNS])}
${readWorkTable(summary, env["readWork"] as ReadWork | undefined)}
${spreadSection(dir)}
<h2>P99 per phase</h2>${p99Bars(summary, focus, (env["references"] as Reference[] | undefined) ?? [])}
<h2>Latency CDFs</h2>${cdfCharts(dir, summary, focus)}
<h2>Throughput</h2>${timelineChart(dir)}
<h2>Summary (count = n; latency from the intended send time; p99_service = from the actual send; P99 shown as max when n &lt; 100, P99.9 when n &lt; 1,000)</h2>${table(shownSummary(summary), SUMMARY_COLUMNS as string[])}
<h2>Environment</h2><pre>${esc(JSON.stringify(env, null, 2))}</pre>
<p>${hists} per-op histogram CSVs in histograms/.</p>
</body></html>
`;
  const out = join(dir, "report.html");
  writeFileSync(out, html);
  return out;
}
