// The trace format: JSON lines, one Kubernetes API operation a line, optionally preceded by one header line.
//   {"kind":"header","format":"etcd-ts-trace/1","generator":"kube-5000","seed":1,"scale":0.1}
//   {"t":12.5,"verb":"create","resource":"pods","ns":"test-01","name":"pod-1","size":1400,"phase":"steady"}
// `t` is seconds from the start of the replay; ops with phase "preload" run before the clock starts and are
// not measured. parseTrace validates every line and reports errors by line number; it never throws on data.
import { createHash } from "node:crypto";

export const TRACE_FORMAT = "etcd-ts-trace/1";
export const VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"] as const;
export type Verb = (typeof VERBS)[number];
const VERB_SET: ReadonlySet<string> = new Set(VERBS);

export interface TraceOp {
  /** Seconds from the start of the replay (>= 0, non-decreasing within measured phases). */
  readonly t: number;
  readonly verb: Verb;
  /** Plural resource name as in the API path ("pods", "clusterrolebindings"). */
  readonly resource: string;
  /** API group for non-built-in resources (their etcd key carries it). */
  readonly group?: string;
  readonly ns?: string;
  readonly name?: string;
  /** Bytes of the stored object (create/update/patch). */
  readonly size?: number;
  /** Report phase ("preload", "storm", "steady", …). */
  readonly phase?: string;
  /** Ops with the same client run one after another (a sequential caller, e.g. a looping lister). */
  readonly client?: string;
  /** list: page size (kube-apiserver's limit); absent = unpaginated. */
  readonly limit?: number;
  /** list/get: resourceVersion as sent; "0" is served from the watch cache (no etcd call). */
  readonly rv?: string;
  /** list: count-only (the object-count metric). */
  readonly countOnly?: boolean;
  /** create: TTL in seconds (events: --event-ttl), stored on a shared etcd lease. */
  readonly ttl?: number;
  /** watch: how long the watch stays open, in seconds. */
  readonly duration?: number;
  /** update: the caller pinned a resourceVersion; a conflict is returned, not retried. */
  readonly pinned?: boolean;
  /** client ops: skipped (not sent, counted) if the client cannot start them before this time, in seconds. */
  readonly until?: number;
  /**
   * client ops: a paced caller instead of a sequential one. Up to this many of the client's ops overlap; each is
   * sent at its time when a slot is free, and its latency counts from its time (open loop, bounded).
   */
  readonly inFlight?: number;
}

export interface TraceHeader {
  readonly kind: "header";
  readonly format: string;
  readonly generator?: string;
  readonly seed?: number;
  readonly scale?: number;
  readonly [extra: string]: unknown;
}

export interface Trace {
  readonly header: TraceHeader | undefined;
  readonly ops: TraceOp[];
}

export interface TraceError {
  readonly line: number;
  readonly message: string;
}

const OP_FIELDS: ReadonlySet<string> = new Set([
  "t",
  "verb",
  "resource",
  "group",
  "ns",
  "name",
  "size",
  "phase",
  "client",
  "limit",
  "rv",
  "countOnly",
  "ttl",
  "duration",
  "pinned",
  "until",
  "inFlight",
]);

type Check = (o: Record<string, unknown>) => string | undefined;

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const optStr =
  (f: string): Check =>
  (o) =>
    o[f] === undefined || typeof o[f] === "string" ? undefined : `${f} must be a string, got ${JSON.stringify(o[f])}`;
const optNonNeg =
  (f: string, integer: boolean): Check =>
  (o) => {
    const v = o[f];
    if (v === undefined) return undefined;
    if (!isNum(v) || v < 0 || (integer && !Number.isInteger(v)))
      return `${f} must be a non-negative ${integer ? "integer" : "number"}, got ${JSON.stringify(v)}`;
    return undefined;
  };
const optBool =
  (f: string): Check =>
  (o) =>
    o[f] === undefined || typeof o[f] === "boolean" ? undefined : `${f} must be a boolean, got ${JSON.stringify(o[f])}`;

const CHECKS: readonly Check[] = [
  (o) => (isNum(o["t"]) && o["t"] >= 0 ? undefined : `t must be a number >= 0, got ${JSON.stringify(o["t"])}`),
  (o) =>
    typeof o["verb"] === "string" && VERB_SET.has(o["verb"])
      ? undefined
      : `verb must be one of ${VERBS.join("|")}, got ${JSON.stringify(o["verb"])}`,
  (o) =>
    typeof o["resource"] === "string" && /^[a-z0-9.-]+$/.test(o["resource"])
      ? undefined
      : `resource must be a lower-case plural name, got ${JSON.stringify(o["resource"])}`,
  optStr("group"),
  optStr("ns"),
  optStr("name"),
  optStr("phase"),
  optStr("client"),
  optStr("rv"),
  optNonNeg("size", true),
  optNonNeg("limit", true),
  optNonNeg("ttl", true),
  optNonNeg("duration", false),
  optNonNeg("until", false),
  (o) =>
    o["inFlight"] === undefined || (Number.isInteger(o["inFlight"]) && (o["inFlight"] as number) >= 1)
      ? undefined
      : `inFlight must be an integer >= 1, got ${JSON.stringify(o["inFlight"])}`,
  optBool("countOnly"),
  optBool("pinned"),
  (o) => {
    const v = o["verb"];
    const named = v === "get" || v === "create" || v === "update" || v === "patch" || v === "delete";
    return named && (typeof o["name"] !== "string" || o["name"].length === 0)
      ? `verb ${String(v)} needs a name`
      : undefined;
  },
  (o) => {
    const unknown = Object.keys(o).filter((k) => !OP_FIELDS.has(k));
    return unknown.length > 0 ? `unknown field(s) ${unknown.join(", ")}` : undefined;
  },
];

/** validateOp returns the problems of one parsed line (empty = valid). */
export function validateOp(o: unknown): string[] {
  if (typeof o !== "object" || o === null || Array.isArray(o))
    return [`an op must be a JSON object, got ${JSON.stringify(o)}`];
  const rec = o as Record<string, unknown>;
  return CHECKS.map((c) => c(rec)).filter((m): m is string => m !== undefined);
}

/** parseTrace parses JSON-lines text; valid ops are kept, every bad line is reported with its 1-based number. */
export function parseTrace(text: string): { trace: Trace; errors: TraceError[] } {
  const ops: TraceOp[] = [];
  const errors: TraceError[] = [];
  let header: TraceHeader | undefined;
  const lines = text.split("\n");
  let lastT = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      errors.push({ line: i + 1, message: `not JSON: ${(err as Error).message}` });
      continue;
    }
    if (typeof parsed === "object" && parsed !== null && (parsed as { kind?: unknown }).kind === "header") {
      const h = parsed as TraceHeader;
      if (header !== undefined || ops.length > 0)
        errors.push({ line: i + 1, message: "header must be the first line" });
      else if (h.format !== TRACE_FORMAT)
        errors.push({ line: i + 1, message: `format must be ${TRACE_FORMAT}, got ${JSON.stringify(h.format)}` });
      else header = h;
      continue;
    }
    const problems = validateOp(parsed);
    const op = parsed as TraceOp;
    if (problems.length === 0 && op.phase !== "preload" && op.t < lastT)
      problems.push(`t ${op.t} goes back in time (previous ${lastT})`);
    if (problems.length > 0) {
      errors.push({ line: i + 1, message: problems.join("; ") });
      continue;
    }
    if (op.phase !== "preload") lastT = op.t;
    ops.push(op);
  }
  return { trace: { header, ops }, errors };
}

/** serializeTrace writes the canonical JSON-lines text (header first). */
export function serializeTrace(trace: Trace): string {
  const parts: string[] = [];
  if (trace.header !== undefined) parts.push(JSON.stringify(trace.header));
  for (const op of trace.ops) parts.push(JSON.stringify(op));
  return parts.join("\n") + "\n";
}

/** traceDigest is "sha256:<hex>" of the canonical text: same trace, same digest. */
export function traceDigest(trace: Trace): string {
  return "sha256:" + createHash("sha256").update(serializeTrace(trace)).digest("hex");
}
