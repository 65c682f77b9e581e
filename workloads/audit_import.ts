// Kubernetes audit logs (audit.k8s.io/v1 and v1beta1 Event JSON lines) → trace. One op per auditID, preferring
// the ResponseComplete stage; timing from requestReceivedTimestamp (v1beta1: timestamp), relative to the first
// request. Requests that never reach etcd are dropped and counted: non-resource URLs, virtual resources
// (tokenreviews, *accessreviews), 401/403/429/422 and 304 responses, and reads served by the watch cache
// (resourceVersion=0). Subresources map to their parent object (status/binding/scale → update of the parent).
// Bad lines and unknown stages are counted, never thrown (kube-workload.md §4).
import { sizeOf } from "./kube_facts.js";
import { TRACE_FORMAT, VERBS, type Trace, type TraceOp, type Verb } from "./trace.js";

export interface ImportStats {
  lines: number;
  badLines: number;
  /** Events per stage as read (RequestReceived, ResponseStarted, ResponseComplete, Panic, other). */
  stages: Record<string, number>;
  requests: number;
  imported: number;
  /** Objects created in the preload because the log touches them before creating them. */
  preloaded: number;
  /** Requests dropped, by reason. */
  skipped: Record<string, number>;
  /** First bad line numbers with why (at most 20 kept). */
  badLineSamples: { line: number; message: string }[];
}

const VIRTUAL = new Set([
  "tokenreviews",
  "subjectaccessreviews",
  "selfsubjectaccessreviews",
  "localsubjectaccessreviews",
  "selfsubjectrulesreviews",
]);
const NO_STORAGE_CODES = new Set([401, 403, 422, 429, 304]);
const STREAM_SUBRESOURCES = new Set(["log", "exec", "attach", "portforward", "proxy"]);
const VERB_SET: ReadonlySet<string> = new Set(VERBS);

interface AuditEvent {
  auditID?: string;
  stage?: string;
  verb?: string;
  requestURI?: string;
  objectRef?: {
    resource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    subresource?: string;
    resourceVersion?: string;
  };
  responseStatus?: { code?: number };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
  timestamp?: string;
  apiVersion?: string;
  kind?: string;
}

const STAGE_RANK: Record<string, number> = { ResponseComplete: 3, Panic: 2, ResponseStarted: 1, RequestReceived: 0 };

function bump(rec: Record<string, number>, key: string): void {
  rec[key] = (rec[key] ?? 0) + 1;
}

function parseLine(line: string): AuditEvent | string {
  let ev: unknown;
  try {
    ev = JSON.parse(line);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof ev !== "object" || ev === null || Array.isArray(ev)) return "not a JSON object";
  const e = ev as AuditEvent;
  if (e.kind !== "Event") return `kind must be Event, got ${JSON.stringify(e.kind)}`;
  if (e.apiVersion !== "audit.k8s.io/v1" && e.apiVersion !== "audit.k8s.io/v1beta1")
    return `unsupported apiVersion ${JSON.stringify(e.apiVersion)}`;
  if (typeof e.auditID !== "string" || typeof e.stage !== "string") return "auditID and stage are required";
  if (startOf(e) === undefined) return "no usable timestamp";
  return e;
}

function startOf(e: AuditEvent): number | undefined {
  const s = e.requestReceivedTimestamp ?? e.timestamp;
  const ms = s === undefined ? NaN : Date.parse(s);
  return Number.isFinite(ms) ? ms : undefined;
}

function uriParam(uri: string | undefined, name: string): string | undefined {
  if (uri === undefined) return undefined;
  const q = uri.indexOf("?");
  return q < 0 ? undefined : (new URLSearchParams(uri.slice(q + 1)).get(name) ?? undefined);
}

/** toOp maps one request to a trace op, or returns the reason it makes no etcd call. */
function toOp(e: AuditEvent, t0: number): TraceOp | string {
  const ref = e.objectRef;
  if (ref === undefined || ref.resource === undefined) return "non-resource";
  const code = e.responseStatus?.code;
  if (code !== undefined && NO_STORAGE_CODES.has(code)) return `code-${code}`;
  if (VIRTUAL.has(ref.resource)) return "virtual-resource";
  if (e.verb === undefined || !VERB_SET.has(e.verb)) return "unknown-verb";
  let verb = e.verb as Verb;
  if (ref.subresource !== undefined && STREAM_SUBRESOURCES.has(ref.subresource)) verb = "get";
  else if (ref.subresource !== undefined && (verb === "create" || verb === "patch")) verb = "update";
  const rv = uriParam(e.requestURI, "resourceVersion");
  if ((verb === "list" || verb === "get") && rv === "0") return "watch-cache";
  const t = Math.max(0, (startOf(e)! - t0) / 1000);
  const op: { -readonly [K in keyof TraceOp]: TraceOp[K] } = {
    t: Math.round(t * 1e6) / 1e6,
    verb,
    resource: ref.resource,
  };
  if (ref.apiGroup !== undefined && ref.apiGroup !== "") op.group = ref.apiGroup;
  if (ref.namespace !== undefined && ref.namespace !== "") op.ns = ref.namespace;
  if (ref.name !== undefined && ref.name !== "") op.name = ref.name;
  if (
    (verb === "get" || verb === "update" || verb === "patch" || verb === "delete" || verb === "create") &&
    op.name === undefined
  )
    return "no-name";
  if (verb === "create" || verb === "update" || verb === "patch") op.size = sizeOf(ref.resource);
  if (verb === "create" && ref.resource === "events") op.ttl = 3600;
  const limit = Number(uriParam(e.requestURI, "limit"));
  if (verb === "list" && Number.isInteger(limit) && limit > 0) op.limit = limit;
  if (verb === "watch") {
    const end = Date.parse(e.stageTimestamp ?? "");
    op.duration = Number.isFinite(end) ? Math.max(0, (end - startOf(e)!) / 1000) : 0;
  }
  if (verb === "update" && ref.resourceVersion !== undefined && ref.resourceVersion !== "") op.pinned = true;
  return op;
}

/** importAuditLog converts audit-log text to a trace plus counts of what was read, kept and dropped. */
export function importAuditLog(text: string): { trace: Trace; stats: ImportStats } {
  const stats: ImportStats = {
    lines: 0,
    badLines: 0,
    stages: {},
    requests: 0,
    imported: 0,
    preloaded: 0,
    skipped: {},
    badLineSamples: [],
  };
  const best = new Map<string, AuditEvent>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0) continue;
    stats.lines++;
    const ev = parseLine(line);
    if (typeof ev === "string") {
      stats.badLines++;
      if (stats.badLineSamples.length < 20) stats.badLineSamples.push({ line: i + 1, message: ev });
      continue;
    }
    bump(stats.stages, ev.stage! in STAGE_RANK ? ev.stage! : "other");
    const prev = best.get(ev.auditID!);
    if (prev === undefined || (STAGE_RANK[ev.stage!] ?? -1) > (STAGE_RANK[prev.stage!] ?? -1))
      best.set(ev.auditID!, ev);
  }
  stats.requests = best.size;
  const events = [...best.values()].sort((a, b) => startOf(a)! - startOf(b)!);
  const t0 = events.length > 0 ? startOf(events[0]!)! : 0;
  const ops: TraceOp[] = [];
  const notFound = new Set<TraceOp>();
  for (const e of events) {
    if (e.stage === "RequestReceived") {
      bump(stats.skipped, "no-response");
      continue;
    }
    const op = toOp(e, t0);
    if (typeof op === "string") bump(stats.skipped, op);
    else {
      ops.push(op);
      if (e.responseStatus?.code === 404) notFound.add(op);
    }
  }
  stats.imported = ops.length;
  const preload = preloadFor(ops, notFound);
  stats.preloaded = preload.length;
  return {
    trace: { header: { kind: "header", format: TRACE_FORMAT, generator: "audit-import" }, ops: [...preload, ...ops] },
    stats,
  };
}

/**
 * preloadFor creates, before the replay, every named object the log reads, updates or deletes before (or
 * without) creating it: those objects existed when the log started, and replaying against an empty store
 * would turn their reads into misses and their updates into NotFound. An object first seen in a 404 did not exist.
 */
function preloadFor(ops: readonly TraceOp[], notFound: ReadonlySet<TraceOp>): TraceOp[] {
  const created = new Set<string>();
  const out: TraceOp[] = [];
  for (const op of ops) {
    if (op.name === undefined || op.verb === "watch" || op.verb === "list") continue;
    const id = `${op.group ?? ""}/${op.resource}/${op.ns ?? ""}/${op.name}`;
    if (created.has(id)) continue;
    created.add(id);
    if (op.verb === "create" || notFound.has(op)) continue;
    out.push({
      t: 0,
      verb: "create",
      resource: op.resource,
      ...(op.group === undefined ? {} : { group: op.group }),
      ...(op.ns === undefined ? {} : { ns: op.ns }),
      name: op.name,
      size: sizeOf(op.resource),
      phase: "preload",
    });
  }
  return out;
}
