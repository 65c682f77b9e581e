// The server benchmark's result rows: one measured value per target, metric and client (the Go generator or the
// Node one), the ratios to real etcd from the same run, the CSV columns, the printed tables and report.md.

/** The target every ratio divides by. */
export const BASELINE = "etcd";
/** A Node load setting whose busiest generator thread was busier than this is flagged generator-bound. */
export const GENERATOR_BOUND_BUSY = 0.85;

/** Which load generator measured a row: perfkit (Go clientv3) or the bench's own Node worker threads. */
export type ClientKind = "go" | "node";

/** One measured value of one target (server.csv). */
export interface MetricRow {
  client: ClientKind;
  target: string;
  metric: string;
  clients: number | "";
  value: number;
  unit: string;
  /** "higher" or "lower" is better. */
  better: "higher" | "lower";
  p50_ms: number | "";
  p99_ms: number | "";
  errors: number;
  errors_by_code: string;
  generator_cores: number | "";
  generator_us_per_op: number | "";
  generator_max_thread_busy: number | "";
  server_cores: number | "";
  server_us_per_op: number | "";
}

export const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

export function plainRow(
  client: ClientKind,
  target: string,
  metric: string,
  value: number,
  unit: string,
  better: "higher" | "lower",
): MetricRow {
  return {
    client,
    target,
    metric,
    clients: "",
    value,
    unit,
    better,
    p50_ms: "",
    p99_ms: "",
    errors: 0,
    errors_by_code: "",
    generator_cores: "",
    generator_us_per_op: "",
    generator_max_thread_busy: "",
    server_cores: "",
    server_us_per_op: "",
  };
}

export interface RatioRow {
  client: ClientKind;
  metric: string;
  unit: string;
  better: string;
  target: string;
  value: number;
  etcd_value: number | "";
  /** target / etcd; "" when etcd was not measured. */
  ratio: number | "";
}

const keyOf = (r: { client: string; metric: string }): string => `${r.client} ${r.metric}`;

export function ratioRows(rows: readonly MetricRow[]): RatioRow[] {
  const base = new Map(rows.filter((r) => r.target === BASELINE).map((r) => [keyOf(r), r.value]));
  return rows
    .filter((r) => r.target !== BASELINE)
    .map((r) => {
      const e = base.get(keyOf(r));
      return {
        client: r.client,
        metric: r.metric,
        unit: r.unit,
        better: r.better,
        target: r.target,
        value: r.value,
        etcd_value: e ?? "",
        ratio: e !== undefined && e > 0 ? round(r.value / e, 3) : "",
      };
    });
}

/** The side-by-side table: one line per client and metric, each target's value, then each target / etcd. */
function mainTable(rows: readonly MetricRow[], ratios: readonly RatioRow[]): string[][] {
  const targets = [...new Set(rows.map((r) => r.target))];
  const others = targets.filter((t) => t !== BASELINE);
  const keys = [...new Set(rows.map(keyOf))];
  const find = (t: string, k: string): MetricRow | undefined => rows.find((r) => r.target === t && keyOf(r) === k);
  const ratio = (t: string, k: string): string =>
    String(ratios.find((r) => r.target === t && keyOf(r) === k)?.ratio ?? "") || "–";
  const head = ["client", "metric", "unit", ...targets, ...others.map((t) => `${t}/${BASELINE}`)];
  const body = keys.map((k) => {
    const any = rows.find((r) => keyOf(r) === k)!;
    return [
      any.client,
      any.metric,
      any.unit,
      ...targets.map((t) => String(find(t, k)?.value ?? "–")),
      ...others.map((t) => ratio(t, k)),
    ];
  });
  return [head, ...body];
}

function loadTable(rows: readonly MetricRow[]): string[][] {
  const load = rows.filter((r) => r.metric.includes("_throughput"));
  return [
    [
      "client",
      "target",
      "load",
      "errors",
      "generator cores",
      "generator µs/op",
      "busiest generator thread",
      "server cores",
      "server µs/op",
      "",
    ],
    ...load.map((r) => [
      r.client,
      r.target,
      r.metric.replace("_throughput", ""),
      String(r.errors),
      String(r.generator_cores),
      String(r.generator_us_per_op),
      String(r.generator_max_thread_busy),
      String(r.server_cores),
      String(r.server_us_per_op),
      r.client === "node" && Number(r.generator_max_thread_busy) >= GENERATOR_BOUND_BUSY ? "generator-bound" : "",
    ]),
  ];
}

const NOTE =
  `generator-bound: a Node load thread was busy ≥ ${GENERATOR_BOUND_BUSY * 100}% of the window, so that ops/s is the client's ` +
  "limit (or the machine's), not the server's; compare server µs/op there. The go rows come from perfkit (etcd's clientv3), " +
  "whose own CPU is small.";

export function printTables(rows: readonly MetricRow[], ratios: readonly RatioRow[]): void {
  printAligned(mainTable(rows, ratios));
  console.log("");
  printAligned(loadTable(rows));
  console.log(NOTE);
}

function printAligned(cells: readonly (readonly string[])[]): void {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
  for (const row of cells) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}

function markdown(cells: readonly (readonly string[])[]): string {
  const [head = [], ...body] = cells;
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...body.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** report.md: the run's conditions and both tables. */
export function reportMarkdown(
  rows: readonly MetricRow[],
  ratios: readonly RatioRow[],
  conditions: readonly string[],
): string {
  return [
    "# Server benchmark: etcd-ts beside etcd 3.4.23, same run",
    "",
    ...conditions.map((c) => `- ${c}`),
    "",
    markdown(mainTable(rows, ratios)),
    "",
    "## Load settings: generator and server CPU",
    "",
    markdown(loadTable(rows)),
    "",
    NOTE,
    "",
  ].join("\n");
}

export const METRIC_COLUMNS: readonly (keyof MetricRow)[] = [
  "client",
  "target",
  "metric",
  "clients",
  "value",
  "unit",
  "better",
  "p50_ms",
  "p99_ms",
  "errors",
  "errors_by_code",
  "generator_cores",
  "generator_us_per_op",
  "generator_max_thread_busy",
  "server_cores",
  "server_us_per_op",
];
export const RATIO_COLUMNS: readonly (keyof RatioRow)[] = [
  "client",
  "metric",
  "unit",
  "better",
  "target",
  "value",
  "etcd_value",
  "ratio",
];
