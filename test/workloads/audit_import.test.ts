// Proves the audit-log importer turns audit.k8s.io v1 and v1beta1 Event lines into trace ops: one op per
// auditID (ResponseComplete preferred), times relative to the first request, subresources on the parent,
// CRD groups kept, and requests that never reach etcd dropped and counted; bad lines are counted, never
// thrown. A hand-written sample pins each rule; the real logs in ../shared/data/k8s-audit are read in place.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { importAuditLog } from "../../workloads/audit_import.js";
import { parseTrace, serializeTrace } from "../../workloads/trace.js";

const ev = (o: Record<string, unknown>): string =>
  JSON.stringify({ kind: "Event", apiVersion: "audit.k8s.io/v1", level: "Metadata", ...o });
const T = (s: number): string => new Date(Date.UTC(2021, 2, 12, 15, 0, s)).toISOString();

const SAMPLE = [
  ev({
    auditID: "a",
    stage: "RequestReceived",
    verb: "create",
    objectRef: { resource: "pods", namespace: "ns", name: "p1" },
    requestReceivedTimestamp: T(0),
    stageTimestamp: T(0),
  }),
  ev({
    auditID: "a",
    stage: "ResponseComplete",
    verb: "create",
    objectRef: { resource: "pods", namespace: "ns", name: "p1" },
    responseStatus: { code: 201 },
    requestReceivedTimestamp: T(0),
    stageTimestamp: T(1),
  }),
  ev({
    auditID: "b",
    stage: "ResponseComplete",
    verb: "update",
    objectRef: { resource: "pods", namespace: "ns", name: "p1", subresource: "status" },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: T(2),
    stageTimestamp: T(2),
  }),
  "this is not json",
  ev({
    auditID: "c",
    stage: "ResponseComplete",
    verb: "get",
    requestURI: "/healthz",
    responseStatus: { code: 200 },
    requestReceivedTimestamp: T(3),
    stageTimestamp: T(3),
  }),
  ev({
    auditID: "d",
    stage: "ResponseComplete",
    verb: "list",
    requestURI: "/api/v1/pods?resourceVersion=0",
    objectRef: { resource: "pods" },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: T(4),
    stageTimestamp: T(4),
  }),
  ev({
    auditID: "e",
    stage: "ResponseComplete",
    verb: "list",
    requestURI: "/api/v1/namespaces/ns/pods?limit=500",
    objectRef: { resource: "pods", namespace: "ns" },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: T(5),
    stageTimestamp: T(5),
  }),
  ev({
    auditID: "f",
    stage: "ResponseComplete",
    verb: "create",
    objectRef: { resource: "tokenreviews", apiGroup: "authentication.k8s.io" },
    responseStatus: { code: 201 },
    requestReceivedTimestamp: T(6),
    stageTimestamp: T(6),
  }),
  ev({
    auditID: "g",
    stage: "ResponseComplete",
    verb: "delete",
    objectRef: { resource: "secrets", namespace: "ns", name: "s" },
    responseStatus: { code: 403 },
    requestReceivedTimestamp: T(7),
    stageTimestamp: T(7),
  }),
  ev({
    auditID: "h",
    stage: "ResponseStarted",
    verb: "watch",
    objectRef: { resource: "routes", apiGroup: "route.openshift.io", namespace: "ns" },
    requestReceivedTimestamp: T(8),
    stageTimestamp: T(8),
  }),
  ev({
    auditID: "h",
    stage: "ResponseComplete",
    verb: "watch",
    objectRef: { resource: "routes", apiGroup: "route.openshift.io", namespace: "ns" },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: T(8),
    stageTimestamp: T(38),
  }),
  JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1beta1",
    auditID: "i",
    stage: "ResponseComplete",
    verb: "get",
    objectRef: { resource: "clusterroles", name: "admin", apiGroup: "rbac.authorization.k8s.io" },
    responseStatus: { code: 404 },
    timestamp: T(9),
  }),
  JSON.stringify({ kind: "Event", apiVersion: "audit.k8s.io/v2", auditID: "j", stage: "ResponseComplete" }),
  ev({
    auditID: "k",
    stage: "RequestReceived",
    verb: "get",
    objectRef: { resource: "pods", namespace: "ns", name: "p2" },
    requestReceivedTimestamp: T(10),
  }),
].join("\n");

describe("audit importer on a hand-written sample", () => {
  const { trace, stats } = importAuditLog(SAMPLE);

  it("counts lines, bad lines, stages and skip reasons", () => {
    expect(stats.lines).toBe(14);
    expect(stats.badLines).toBe(2);
    expect(stats.badLineSamples.map((b) => b.line)).toEqual([4, 13]);
    expect(stats.stages).toEqual({ RequestReceived: 2, ResponseComplete: 9, ResponseStarted: 1 });
    expect(stats.requests).toBe(10);
    expect(stats.skipped).toEqual({
      "non-resource": 1,
      "watch-cache": 1,
      "virtual-resource": 1,
      "code-403": 1,
      "no-response": 1,
    });
    expect(stats.imported).toBe(5);
    expect(stats.preloaded, "p1 is created in the log; admin was a 404").toBe(0);
  });

  it("preloads an object the log updates before creating it", () => {
    const upd = ev({
      auditID: "u",
      stage: "ResponseComplete",
      verb: "update",
      objectRef: { resource: "leases", namespace: "kube-node-lease", name: "n1" },
      responseStatus: { code: 200 },
      requestReceivedTimestamp: T(0),
      stageTimestamp: T(0),
    });
    const r = importAuditLog(upd + "\n" + upd.replace('"auditID":"u"', '"auditID":"v"'));
    expect(r.trace.ops.map((o) => `${o.phase ?? "-"} ${o.verb}`)).toEqual(["preload create", "- update", "- update"]);
  });

  it("maps each request to the op kube-apiserver would send to etcd", () => {
    expect(trace.ops).toEqual([
      { t: 0, verb: "create", resource: "pods", ns: "ns", name: "p1", size: 1390 },
      { t: 2, verb: "update", resource: "pods", ns: "ns", name: "p1", size: 1390 },
      { t: 5, verb: "list", resource: "pods", ns: "ns", limit: 500 },
      { t: 8, verb: "watch", resource: "routes", group: "route.openshift.io", ns: "ns", duration: 30 },
      { t: 9, verb: "get", resource: "clusterroles", group: "rbac.authorization.k8s.io", name: "admin" },
    ]);
    expect(parseTrace(serializeTrace(trace)).errors).toEqual([]);
  });
});

// The logs live in the shared folder beside the checkout (never copied into the repo), or beside the checkout
// this one was cloned from when its origin is a local path (`git clone . /tmp/x` still reads them in place). CI
// always has them; a checkout elsewhere skips these two tests rather than fail on a missing file.
function auditDir(): string {
  const beside = resolve(import.meta.dirname, "../../../shared/data/k8s-audit");
  if (existsSync(beside)) return beside;
  try {
    const origin = execFileSync("git", ["config", "--get", "remote.origin.url"], {
      cwd: import.meta.dirname,
      encoding: "utf8",
    }).trim();
    const besideOrigin = resolve(origin, "../shared/data/k8s-audit");
    if (isAbsolute(origin) && existsSync(besideOrigin)) return besideOrigin;
  } catch {
    // not a git checkout, or no origin
  }
  return beside;
}
const AUDIT_DIR = auditDir();
const HAVE_AUDIT_LOGS = existsSync(AUDIT_DIR);
if (process.env["CI"] === "true" && !HAVE_AUDIT_LOGS)
  throw new Error(`CI must have the shared audit logs at ${AUDIT_DIR}`);

describe.runIf(HAVE_AUDIT_LOGS)("audit importer on the real logs (read in place)", () => {
  const dir = AUDIT_DIR;
  it("imports the 2017 v1beta1 demo log: 757 lines, 437 requests, 403s and non-resource GETs dropped", () => {
    const { trace, stats } = importAuditLog(readFileSync(resolve(dir, "audit2rbac-demo-2017.v1beta1.jsonl"), "utf8"));
    expect([stats.lines, stats.badLines, stats.requests]).toEqual([757, 0, 437]);
    expect(stats.stages).toEqual({ ResponseComplete: 437, RequestReceived: 320 });
    expect(stats.skipped["code-403"]).toBe(11);
    expect(stats.skipped["non-resource"]).toBe(23);
    expect(stats.imported).toBe(437 - 34);
    const pre = trace.ops.filter((o) => o.phase === "preload");
    expect(pre.length, "objects touched before being created are preloaded").toBe(stats.preloaded);
    expect(pre.every((o) => o.verb === "create")).toBe(true);
    expect(trace.ops.length).toBe(stats.imported + stats.preloaded);
  });

  it("imports the OpenShift log: ResponseStarted-only watch kept, tokenreview and 304s dropped", () => {
    const { trace, stats } = importAuditLog(readFileSync(resolve(dir, "openshift-clo-2021.v1.jsonl"), "utf8"));
    expect([stats.lines, stats.badLines, stats.requests]).toEqual([27, 0, 26]);
    expect(stats.skipped["virtual-resource"]).toBe(1);
    expect(trace.ops.filter((o) => o.verb === "watch").length, "4 watch events, 3 distinct auditIDs").toBe(3);
    expect(trace.ops.some((o) => o.group === "monitoring.coreos.com")).toBe(true);
  });
});
