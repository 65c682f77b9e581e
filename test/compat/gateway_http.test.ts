// Proves the client port's HTTP side answers as real etcd 3.4's does: the JSON gateway (/v3/kv/*, /v3/lease/*,
// /v3/maintenance/*, /v3/cluster/*, each also under /v3beta/) with the same status codes and the same JSON after
// normalizing only ids, sizes and raft indexes, including errors ({"error","message","code"} and grpc-gateway's HTTP statuses), unknown
// JSON fields ignored, /version, /health and /metrics on the client port, and gRPC still served on that same port.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdctl, haveEtcd, startServer, type RunningServer } from "./processes.js";

const HAVE = haveEtcd();
const b64 = (s: string): string => Buffer.from(s).toString("base64");

interface Call {
  readonly path: string;
  readonly body?: unknown;
  readonly method?: string;
}

/** Calls in order; both servers see the same sequence, so revisions agree. */
const CALLS: readonly Call[] = [
  { path: "/v3/kv/put", body: { key: b64("gw/a"), value: b64("1") } },
  { path: "/v3/kv/put", body: { key: b64("gw/b"), value: b64("2"), prev_kv: true } },
  { path: "/v3/kv/put", body: { key: b64("gw/b"), value: b64("3"), prev_kv: true } },
  { path: "/v3/kv/range", body: { key: b64("gw/a") } },
  { path: "/v3/kv/range", body: { key: b64("gw/"), range_end: b64("gw0"), limit: 1 } },
  { path: "/v3/kv/range", body: { key: b64("gw/"), range_end: b64("gw0"), count_only: true } },
  {
    path: "/v3/kv/range",
    body: { key: b64("gw/"), range_end: b64("gw0"), keys_only: true, sort_order: "DESCEND", sort_target: "KEY" },
  },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), bogus_field: 1 } },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), revision: 100000 } },
  { path: "/v3/kv/range", body: { key: b64("missing") } },
  {
    path: "/v3/kv/txn",
    body: {
      compare: [{ key: b64("gw/a"), target: "VALUE", result: "EQUAL", value: b64("1") }],
      success: [{ request_range: { key: b64("gw/a") } }, { request_put: { key: b64("gw/c"), value: b64("x") } }],
    },
  },
  {
    path: "/v3/kv/txn",
    body: {
      compare: [{ key: b64("gw/a"), target: "VERSION", result: "GREATER", version: 5 }],
      failure: [{ request_delete_range: { key: b64("gw/c"), prev_kv: true } }],
    },
  },
  { path: "/v3/kv/deleterange", body: { key: b64("gw/b"), prev_kv: true } },
  { path: "/v3/kv/compaction", body: { revision: 3 } },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), revision: 2 } },
  { path: "/v3/kv/compaction", body: { revision: 1 } },
  { path: "/v3/kv/put", body: { key: "", value: b64("v") } },
  { path: "/v3/lease/timetolive", body: { ID: 1234 } },
  { path: "/v3/lease/revoke", body: { ID: 1234 } },
  { path: "/v3/kv/put", body: { key: b64("gw/l"), value: b64("v"), lease: 1234 } },
  { path: "/v3/lease/leases", body: {} },
  { path: "/v3/maintenance/alarm", body: { action: "GET" } },
  { path: "/v3/maintenance/hash", body: {} },
  { path: "/v3/maintenance/status", body: {} },
  { path: "/v3/cluster/member/list", body: {} },
  { path: "/v3/kv/range", method: "GET" },
  { path: "/v3/kv/range", body: "not json" },
  { path: "/v3/kv/range", body: { key: 123 } },
  { path: "/v3/kv/put", body: { key: "Zm9v!!", value: b64("v") } },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), limit: "5" } },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), limit: 1.5 } },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), keys_only: "yes" } },
  { path: "/v3/kv/range", body: { key: b64("gw/a"), sort_order: "SIDEWAYS" } },
  { path: "/v3/kv/txn", body: { compare: { key: b64("gw/a") } } },
  { path: "/v3beta/kv/range", body: { key: b64("gw/a") } },
  { path: "/v3beta/kv/put", body: { key: b64("gw/beta"), value: b64("b") } },
  { path: "/v3beta/maintenance/alarm", body: { action: "GET" } },
  { path: "/v3beta/cluster/member/list", body: {} },
  { path: "/v3/no/such/method", body: {} },
  { path: "/v3beta/no/such/method", body: {} },
  { path: "/v3beta", method: "GET" },
];

interface Answer {
  readonly status: number;
  readonly body: string;
}

async function call(endpoint: string, c: Call): Promise<Answer> {
  const init: RequestInit = { method: c.method ?? "POST" };
  if (c.body !== undefined) init.body = typeof c.body === "string" ? c.body : JSON.stringify(c.body);
  const res = await fetch(`http://${endpoint}${c.path}`, init);
  return { status: res.status, body: await res.text() };
}

/** The first `n` lines of a streaming gateway call (fewer if 5 s pass first), then the request is aborted. */
async function readLines(endpoint: string, path: string, body: unknown, n: number): Promise<string[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 5000);
  const res = await fetch(`http://${endpoint}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: abort.signal,
  });
  const reader = res.body?.getReader();
  if (reader === undefined) throw new Error(`${path}: no body`);
  let text = "";
  const lines: string[] = [];
  while (lines.length < n) {
    const chunk = await reader.read().catch(() => ({ value: undefined, done: true }));
    const { value, done } = chunk;
    if (done || value === undefined) break;
    text += Buffer.from(value).toString("utf8");
    let i: number;
    while ((i = text.indexOf("\n")) >= 0 && lines.length < n) {
      lines.push(text.slice(0, i));
      text = text.slice(i + 1);
    }
  }
  clearTimeout(timer);
  abort.abort();
  return lines;
}

/** Ids and sizes differ between the two servers; the JSON parsers' wording for a bad body too. */
function normalize(body: string, ids: readonly string[]): string {
  let out = body;
  for (const id of ids) out = out.replaceAll(id, "ID");
  return out
    .replace(/"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex|hash)":"?\d+"?/g, '"$1":N')
    .replace(/"(peerURLs|clientURLs)":\["[^"]+"\]/g, '"$1":["URL"]')
    .replace(
      /"error":"(?:[^"\\]|\\.)*JSON(?:[^"\\]|\\.)*","message":"(?:[^"\\]|\\.)*"/,
      '"error":"BAD_JSON","message":"BAD_JSON"',
    )
    .replace(/"error":"invalid character[^"]*","message":"[^"]*"/, '"error":"BAD_JSON","message":"BAD_JSON"');
}

function idsOf(endpoint: string): string[] {
  const r = etcdctl(endpoint, ["endpoint", "status", "-w", "json"]);
  const m = /"cluster_id":(\d+),"member_id":(\d+)/.exec(r.stdout);
  return m === null ? [] : [m[1] ?? "", m[2] ?? ""];
}

describe.runIf(HAVE)("the client port's HTTP side against real etcd", () => {
  const servers: RunningServer[] = [];
  beforeAll(async () => {
    servers.push(...(await Promise.all([startServer("etcd"), startServer("etcd-ts")])));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("answers every gateway call with etcd's status and JSON", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    const [etcdIds, ourIds] = [idsOf(etcd.endpoint), idsOf(ours.endpoint)];
    expect(ourIds.length).toBe(2);
    for (const c of CALLS) {
      const theirs = await call(etcd.endpoint, c);
      const mine = await call(ours.endpoint, c);
      const what = `${c.method ?? "POST"} ${c.path} ${JSON.stringify(c.body ?? "")}`;
      expect({ what, status: mine.status, body: normalize(mine.body, ourIds) }).toEqual({
        what,
        status: theirs.status,
        body: normalize(theirs.body, etcdIds),
      });
    }
  });

  it('streams /v3/watch and /v3/lease/keepalive as etcd does, one {"result"} a line', async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    const [etcdIds, ourIds] = [idsOf(etcd.endpoint), idsOf(ours.endpoint)];
    for (const [path, body, lines] of [
      ["/v3/watch", { create_request: { key: b64("gw/a"), start_revision: 1 } }, 1],
      [
        "/v3/watch",
        { create_request: { key: b64("gw/"), range_end: b64("gw0"), start_revision: 4, prev_kv: true } },
        2,
      ],
      ["/v3/watch", { create_request: { key: b64("gw/zz"), start_revision: 0 } }, 1],
      ["/v3beta/watch", { create_request: { key: b64("gw/a"), start_revision: 1 } }, 1],
      ["/v3/lease/keepalive", { ID: 1234 }, 1],
    ] as const) {
      const [theirs, mine] = await Promise.all([
        readLines(etcd.endpoint, path, body, lines),
        readLines(ours.endpoint, path, body, lines),
      ]);
      expect({ path, lines: mine.map((l) => normalize(l, ourIds)) }).toEqual({
        path,
        lines: theirs.map((l) => normalize(l, etcdIds)),
      });
    }
  });

  it("streams /v3/maintenance/snapshot in etcd's 32 KiB chunks: bytes still to come on each, the SHA-256 last", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    // A 40 KiB value makes both databases span several chunks, whatever else the servers hold.
    const filler = {
      path: "/v3/kv/put",
      body: { key: b64("snapshot-filler"), value: Buffer.alloc(40 * 1024, "f").toString("base64") },
    };
    for (const s of [etcd, ours]) expect((await call(s.endpoint, filler)).status).toBe(200);
    const chunking = async (
      endpoint: string,
    ): Promise<{ firstShape: string[]; lastShape: string[]; sizes: number[]; remaining: number[]; shaOk: boolean }> => {
      const lines = await readLines(endpoint, "/v3/maintenance/snapshot", {}, Number.POSITIVE_INFINITY);
      const results = lines.map(
        (l) => (JSON.parse(l) as { result: { blob?: string; remaining_bytes?: string } }).result,
      );
      const blobs = results.map((r) => Buffer.from(r.blob ?? "", "base64"));
      const data = Buffer.concat(blobs.slice(0, -1));
      const sha = createHash("sha256").update(data).digest();
      return {
        firstShape: Object.keys(results[0] ?? {}).sort(),
        lastShape: Object.keys(results[results.length - 1] ?? {}).sort(),
        sizes: blobs.slice(0, -2).map((b) => b.length),
        remaining: results
          .slice(0, -1)
          .map(
            (r, i) =>
              Number(r.remaining_bytes ?? 0) - (data.length - blobs.slice(0, i + 1).reduce((n, b) => n + b.length, 0)),
          ),
        shaOk: sha.equals(blobs[blobs.length - 1] ?? Buffer.alloc(0)),
      };
    };
    const [theirs, mine] = await Promise.all([chunking(etcd.endpoint), chunking(ours.endpoint)]);
    expect(theirs.firstShape).toEqual(["blob", "remaining_bytes"]);
    expect(theirs.sizes.length).toBeGreaterThan(0);
    for (const c of [theirs, mine]) {
      expect(new Set(c.sizes), "every chunk but the last is 32 KiB").toEqual(new Set([32 * 1024]));
      expect(new Set(c.remaining), "remaining_bytes is what follows the chunk").toEqual(new Set([0]));
      expect(c.shaOk, "the last chunk is the SHA-256 of the others").toBe(true);
    }
    expect({ first: mine.firstShape, last: mine.lastShape }).toEqual({
      first: theirs.firstShape,
      last: theirs.lastShape,
    });
  });

  it("serves /version, /health and /metrics on the client port, and gRPC on the same port", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    for (const path of ["/version", "/health"]) {
      const [theirs, mine] = await Promise.all([
        call(etcd.endpoint, { path, method: "GET" }),
        call(ours.endpoint, { path, method: "GET" }),
      ]);
      expect({ path, ...mine }).toEqual({ path, ...theirs });
    }
    const metrics = await call(ours.endpoint, { path: "/metrics", method: "GET" });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^etcd_server_has_leader 1$/m);
    etcdctl(etcd.endpoint, ["put", "gw/grpc", "same-port"]); // keeps both servers' revisions in step for the next test
    const ctl = etcdctl(ours.endpoint, ["put", "gw/grpc", "same-port"]);
    expect(ctl.stdout).toBe("OK\n");
    const viaHttp = await call(ours.endpoint, { path: "/v3/kv/range", body: { key: b64("gw/grpc") } });
    expect(JSON.parse(viaHttp.body).kvs[0].value).toBe(b64("same-port"));
  });

  it("runs /v3/auth/* and passes the Authorization header on as the token (runs last: it enables auth)", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    const [etcdIds, ourIds] = [idsOf(etcd.endpoint), idsOf(ours.endpoint)];
    const steps: readonly (Call & { readonly auth?: boolean })[] = [
      { path: "/v3/auth/user/add", body: { name: "root", password: "pw" } },
      { path: "/v3/auth/role/add", body: { name: "root" } },
      { path: "/v3/auth/user/grant", body: { user: "root", role: "root" } },
      { path: "/v3/auth/user/add", body: { name: "reader", password: "rpw" } },
      { path: "/v3/auth/role/add", body: { name: "ro" } },
      {
        path: "/v3/auth/role/grant",
        body: { name: "ro", perm: { permType: "READ", key: b64("gw/"), range_end: b64("gw0") } },
      },
      { path: "/v3/auth/user/grant", body: { user: "reader", role: "ro" } },
      { path: "/v3/auth/enable", body: {} },
      { path: "/v3/kv/range", body: { key: b64("gw/a") } },
      { path: "/v3/auth/authenticate", body: { name: "reader", password: "wrong" } },
      { path: "/v3/kv/range", body: { key: b64("gw/a") }, auth: true },
      { path: "/v3/kv/put", body: { key: b64("gw/a"), value: b64("no") }, auth: true },
      { path: "/v3/auth/user/list", body: {}, auth: true },
      { path: "/v3/auth/role/get", body: { role: "ro" }, auth: true },
    ];
    const tokenOf = async (endpoint: string): Promise<string> => {
      const r = await call(endpoint, { path: "/v3/auth/authenticate", body: { name: "reader", password: "rpw" } });
      return (JSON.parse(r.body) as { token: string }).token;
    };
    const tokens = new Map<string, string>();
    for (const step of steps) {
      const answers: Answer[] = [];
      for (const [endpoint, ids] of [
        [etcd.endpoint, etcdIds],
        [ours.endpoint, ourIds],
      ] as const) {
        if (step.auth === true && !tokens.has(endpoint)) tokens.set(endpoint, await tokenOf(endpoint));
        const init: RequestInit = { method: "POST", body: JSON.stringify(step.body ?? {}) };
        if (step.auth === true) init.headers = { Authorization: tokens.get(endpoint) ?? "" };
        const res = await fetch(`http://${endpoint}${step.path}`, init);
        answers.push({ status: res.status, body: normalize(await res.text(), ids) });
      }
      const [theirs, mine] = answers;
      expect({ path: step.path, ...mine }).toEqual({ path: step.path, ...theirs });
    }
  });
});
