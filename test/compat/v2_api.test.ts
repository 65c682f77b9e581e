// Proves etcd-ts started with --enable-v2 serves etcd 3.4's v2 API as real etcd 3.4.23 does: every step runs
// against both servers (same flags) — ETCDCTL_API=2 etcdctl commands and raw HTTP requests to /v2/keys,
// /v2/members, /v2/stats/*, /v2/machines — and the exit code and output, or the HTTP status, etcd's headers and
// body, must match after normalizing what must differ: store indexes relative to each server's first index (etcd
// also keeps its own membership records in the v2 store), member/cluster ids, ports, times. Covers set/get/create/
// update, in-order keys, CAS and CAD (error 101), not found (100), directories (sorted, recursive, hidden keys,
// delete rules), form errors, a TTL key that expires, refresh, waits answered from history and by a later write,
// and the 401 error once 1,000 newer events pushed an index out. Without the flag both answer the v2 paths 404.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveEtcd, startServer, type RunningServer } from "./processes.js";

interface Ctx {
  readonly server: RunningServer;
  /** The store index before the test's first write (etcd: its membership records; etcd-ts: 0). */
  readonly base: number;
  readonly memberId: string;
  readonly clusterId: string;
  /** Relative store indexes captured by earlier steps. */
  readonly marks: Map<string, number>;
}

interface HttpStep {
  readonly method: string;
  /** `{NAME+d}` becomes this server's index of mark NAME plus d (`{BASE+d}`: its first index plus d). */
  readonly path: string;
  readonly form?: Record<string, string>;
  readonly json?: unknown;
  /** Remember this response's X-Etcd-Index (relative) as a mark. */
  readonly mark?: string;
}

const SEP = "\n----\n";

/** The client URL (the harness gives host:port). */
function url(s: RunningServer): string {
  return s.endpoint.startsWith("http") ? s.endpoint : `http://${s.endpoint}`;
}

function expand(text: string, c: Ctx): string {
  return text.replace(/\{(\w+)\+(\d+)\}/g, (_, name: string, d: string) =>
    String(c.base + (name === "BASE" ? 0 : (c.marks.get(name) ?? NaN)) + Number(d)),
  );
}

/** A store index as seen relative to the server's base (0 stays 0: request errors carry index 0 on both). */
function rel(v: string, c: Ctx): string {
  const n = Number(v);
  return n === 0 ? "0" : String(n - c.base);
}

function normalize(text: string, c: Ctx): string {
  return text
    .replaceAll(c.server.endpoint, "ENDPOINT")
    .replaceAll(c.server.peerUrl, "PEER_URL")
    .replaceAll(c.memberId, "MEMBER_ID")
    .replaceAll(c.clusterId, "CLUSTER_ID")
    .replace(/"(modifiedIndex|createdIndex|index)":(\d+)/g, (_, k: string, v: string) => `"${k}":${rel(v, c)}`)
    .replace(/\/(\d{20})\b/g, (_, v: string) => `/${rel(v, c).padStart(20, "0")}`)
    .replace(/(Created-Index|Modified-Index|Index): (\d+)/g, (_, k: string, v: string) => `${k}: ${rel(v, c)}`)
    .replace(/\[(\d+)\]$/gm, (_, v: string) => `[${rel(v, c)}]`)
    .replace(/cleared \[(\d+)\/(\d+)\]/g, (_, a: string, b: string) => `cleared [${rel(a, c)}/${rel(b, c)}]`)
    .replace(/\[(\d+) != (\d+)\]/g, (_, a: string, b: string) => `[${rel(a, c)} != ${rel(b, c)}]`)
    .replace(/"(expiration|startTime)":"[^"]+"/g, '"$1":"TIME"')
    .replace(/"uptime":"[^"]+"/g, '"uptime":"D"');
}

function ctl(c: Ctx, args: readonly string[]): string {
  const r = spawnSync("etcdctl", ["--endpoints", url(c.server), ...args.map((a) => expand(a, c))], {
    env: { ...process.env, ETCDCTL_API: "2" },
    encoding: "utf8",
    timeout: args[0] === "watch" ? 5000 : 20_000,
  });
  return normalize(`exit ${r.status}\n${r.stdout}${SEP}${r.stderr}`, c);
}

async function request(c: Ctx, step: HttpStep): Promise<Response> {
  const target = `${url(c.server)}${expand(step.path, c)}`;
  if (step.json !== undefined)
    return fetch(target, {
      method: step.method,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(step.json),
    });
  const body = step.form === undefined ? undefined : new URLSearchParams(step.form);
  return fetch(target, { method: step.method, ...(body !== undefined ? { body } : {}) });
}

/** Status, etcd's own headers (raft index and term only by presence: the logs differ), and the body. */
async function render(c: Ctx, res: Response, mark?: string): Promise<string> {
  const h = res.headers;
  const etcdIndex = h.get("x-etcd-index");
  if (mark !== undefined && etcdIndex !== null) c.marks.set(mark, Number(etcdIndex) - c.base);
  const lines = [
    `${res.status}`,
    `content-type: ${h.get("content-type")}`,
    `x-etcd-index: ${etcdIndex === null ? "-" : rel(etcdIndex, c)}`,
    `x-raft-index: ${h.has("x-raft-index")}, x-raft-term: ${h.has("x-raft-term")}`,
    `x-etcd-cluster-id: ${h.get("x-etcd-cluster-id")}`,
    `allow: ${h.get("allow")}`,
    await res.text(),
  ];
  return normalize(lines.join("\n"), c);
}

async function http(c: Ctx, step: HttpStep): Promise<string> {
  return render(c, await request(c, step), step.mark);
}

const get = (path: string, mark?: string): HttpStep => ({
  method: "GET",
  path,
  ...(mark !== undefined ? { mark } : {}),
});
const put = (path: string, form: Record<string, string> = {}, mark?: string): HttpStep => ({
  method: "PUT",
  path,
  form,
  ...(mark !== undefined ? { mark } : {}),
});
const post = (path: string, form: Record<string, string> = {}): HttpStep => ({ method: "POST", path, form });
const del = (path: string): HttpStep => ({ method: "DELETE", path });

/**
 * etcd writes its own records into the v2 store at start (member, publish, and last the cluster version, which
 * can land after the member answers): the base index is read once the cluster version is decided.
 */
async function context(server: RunningServer): Promise<Ctx> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = (await (await fetch(`${url(server)}/version`)).json()) as { etcdcluster?: string };
    if (v.etcdcluster !== undefined && v.etcdcluster !== "not_decided") break;
    if (Date.now() > deadline) throw new Error(`${server.kind}: cluster version never decided`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const members = (await (await fetch(`${url(server)}/v2/members`)).json()) as { members: { id: string }[] };
  const root = await fetch(`${url(server)}/v2/keys`);
  await root.text();
  return {
    server,
    base: Number(root.headers.get("x-etcd-index")),
    memberId: members.members[0]?.id ?? "none",
    clusterId: root.headers.get("x-etcd-cluster-id") ?? "none",
    marks: new Map(),
  };
}

/** Polls until a GET of `path` answers 404 (a TTL key expired through the leader's SYNC), at most 10 s. */
async function waitGone(c: Ctx, path: string): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = await fetch(`${url(c.server)}${path}`);
    await r.text();
    if (r.status === 404) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

const HTTP_SCENARIOS: Record<string, readonly HttpStep[]> = {
  "the empty root and a missing key (100)": [get("/v2/keys"), get("/v2/keys/nope"), get("/v2/keys/nope/deeper")],
  "set, get, set again with prevNode, and HEAD": [
    put("/v2/keys/k", { value: "v1" }),
    get("/v2/keys/k"),
    put("/v2/keys/k", { value: "v2" }),
    { method: "HEAD", path: "/v2/keys/k" },
  ],
  "values and keys Go's JSON encoder escapes": [
    put("/v2/keys/esc%3Cb%3E", { value: "<a href='x'>&amp;</a> \u2028 ü" }),
    get("/v2/keys/esc%3Cb%3E"),
    get("/v2/keys/nothing%26here"),
  ],
  "create with prevExist=false, update with prevExist=true": [
    put("/v2/keys/pe", { value: "a", prevExist: "false" }),
    put("/v2/keys/pe", { value: "b", prevExist: "false" }),
    put("/v2/keys/pe", { value: "c", prevExist: "true" }),
    put("/v2/keys/pe-missing", { value: "c", prevExist: "true" }),
  ],
  "compare-and-swap and compare-and-delete, failing (101) and passing": [
    put("/v2/keys/cas", { value: "a" }, "CAS"),
    put("/v2/keys/cas", { value: "x", prevValue: "b" }),
    put("/v2/keys/cas?prevIndex={CAS+7}", { value: "x" }),
    put("/v2/keys/cas?prevIndex={CAS+7}", { value: "x", prevValue: "b" }),
    put("/v2/keys/cas?prevIndex={CAS+0}", { value: "b", prevValue: "a" }),
    del("/v2/keys/cas?prevValue=zzz"),
    del("/v2/keys/cas?prevValue=b"),
    get("/v2/keys/cas"),
  ],
  "in-order keys under a queue, listed sorted": [
    post("/v2/keys/queue", { value: "job1" }),
    post("/v2/keys/queue", { value: "job2" }),
    get("/v2/keys/queue?sorted=true"),
  ],
  "directories: create, refuse a value on them, list recursively and sorted, delete rules": [
    put("/v2/keys/dir?dir=true"),
    put("/v2/keys/dir", { value: "x" }),
    put("/v2/keys/dir/b", { value: "2" }),
    put("/v2/keys/dir/a/deep", { value: "1" }),
    put("/v2/keys/dir/_hidden", { value: "h" }),
    get("/v2/keys/dir?sorted=true"),
    get("/v2/keys/dir?recursive=true&sorted=true"),
    get("/v2/keys/dir/_hidden"),
    del("/v2/keys/dir"),
    del("/v2/keys/dir?dir=true"),
    del("/v2/keys/dir/a?recursive=true"),
    put("/v2/keys/dir/b/c", { value: "under a file" }),
    del("/v2/keys/dir?recursive=true"),
    get("/v2/keys/dir"),
    put("/v2/keys/", { value: "root" }),
  ],
  "directories with a TTL, in-order directories, and what a directory refuses": [
    put("/v2/keys/tdir?dir=true&ttl=300"),
    get("/v2/keys/tdir"),
    put("/v2/keys/tdir?dir=true&prevExist=true&ttl=400"),
    put("/v2/keys/tdir?prevExist=true", { value: "x" }),
    put("/v2/keys/tdir?dir=true"),
    put("/v2/keys/tdir?prevValue=a", { value: "b" }),
    del("/v2/keys/tdir?prevValue=a"),
    { method: "POST", path: "/v2/keys/jobs?dir=true" },
    get("/v2/keys/jobs?recursive=true"),
    put("/v2/keys/tdir?dir=true&prevExist=true"),
    get("/v2/keys/tdir"),
  ],
  "form errors, a wrong method and noValueOnSuccess": [
    put("/v2/keys/f?ttl=abc", { value: "1" }),
    put("/v2/keys/f?wait=true", { value: "1" }),
    put("/v2/keys/f?prevValue=", { value: "1" }),
    put("/v2/keys/f?prevIndex=abc", { value: "1" }),
    put("/v2/keys/f?refresh=true", {}),
    put("/v2/keys/f?refresh=true&ttl=5", { value: "v" }),
    get("/v2/keys/f?recursive=maybe"),
    get("/v2/keys/f%zz"),
    get("/v2/keys/f?waitIndex=-1"),
    { method: "PATCH", path: "/v2/keys/f" },
    put("/v2/keys/f?noValueOnSuccess=true", { value: "1" }),
  ],
  "TTL: reported, refreshed without an event, made permanent by an update": [
    put("/v2/keys/tt", { value: "v", ttl: "100" }),
    get("/v2/keys/tt"),
    put("/v2/keys/tt", { refresh: "true", ttl: "200", prevExist: "true" }),
    get("/v2/keys/tt"),
    put("/v2/keys/tt", { value: "w", prevExist: "true" }),
    get("/v2/keys/tt"),
  ],
  "a wait answered from history at a waitIndex": [
    put("/v2/keys/wh", { value: "1" }, "WH"),
    put("/v2/keys/wh", { value: "2" }),
    get("/v2/keys/wh?wait=true&waitIndex={WH+0}"),
    get("/v2/keys/wh?wait=true&waitIndex={WH+1}"),
    get("/v2/keys?wait=true&recursive=true&waitIndex={WH+1}"),
  ],
  "members, machines and stats": [
    get("/v2/members"),
    get("/v2/members/leader"),
    get("/v2/members/nothex"),
    get("/v2/machines"),
    get("/v2/stats/self"),
    get("/v2/stats/leader"),
    // (A successful add is left out: a second, never-started voter would cost this one-member cluster its quorum.)
    { method: "PUT", path: "/v2/members", json: {} },
    { method: "POST", path: "/v2/members", form: { peerURLs: "x" } },
    { method: "PUT", path: "/v2/members/abcdef", json: { peerURLs: ["http://127.0.0.1:1"] } },
    del("/v2/members/abcdef"),
    del("/v2/members/xyz"),
  ],
};

const CTL_SCENARIOS: Record<string, readonly (readonly string[])[]> = {
  "set, get, mk, update, mkdir, ls and rm": [
    ["set", "/c/x", "1"],
    ["get", "/c/x"],
    ["mk", "/c/x", "2"],
    ["update", "/c/x", "3"],
    ["update", "/c/missing", "1"],
    ["mkdir", "/c/d"],
    ["mkdir", "/c/d"],
    ["ls", "--sort", "--recursive", "/c"],
    ["ls", "-p", "--sort", "/c"],
    ["rm", "--dir", "/c/d"],
    ["rm", "/c"],
    ["rm", "--recursive", "/c"],
    ["get", "/c/x"],
  ],
  "outputs: extended and json, a TTL, and a failing swap": [
    ["set", "--ttl", "300", "/o/t", "v"],
    ["get", "-o", "json", "/o/t"],
    ["set", "/o/p", "plain"],
    ["get", "-o", "extended", "/o/p"],
    ["set", "--swap-with-value", "nope", "/o/p", "q"],
    ["set", "--swap-with-value", "plain", "/o/p", "q"],
    ["rm", "--with-value", "zz", "/o/p"],
    ["get", "/o/missing"],
    ["ls", "--sort", "-p", "/o"],
  ],
  "member list and watch --after-index": [
    ["member", "list"],
    ["set", "/wa/k", "one"],
    ["set", "/wa/k", "two"],
    ["watch", "--after-index", "{BASE+1}", "/wa/k"],
    ["watch", "--recursive", "--after-index", "{BASE+1}", "/wa"],
  ],
};

describe.skipIf(!haveEtcd())("the v2 API (--enable-v2): etcd-ts and real etcd 3.4 answer alike", () => {
  let etcd: Ctx;
  let ts: Ctx;

  beforeAll(async () => {
    const [a, b] = await Promise.all([startServer("etcd", ["--enable-v2"]), startServer("etcd-ts", ["--enable-v2"])]);
    etcd = await context(a);
    ts = await context(b);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([etcd?.server.stop(), ts?.server.stop()]);
  });

  for (const [name, steps] of Object.entries(HTTP_SCENARIOS)) {
    it(`HTTP: ${name}`, async () => {
      for (const step of steps) {
        const [want, got] = [await http(etcd, step), await http(ts, step)];
        expect(got, `${step.method} ${step.path}`).toBe(want);
      }
    }, 30_000);
  }

  for (const [name, steps] of Object.entries(CTL_SCENARIOS)) {
    it(`etcdctl v2: ${name}`, () => {
      for (const args of steps) {
        const want = ctl(etcd, args);
        expect(ctl(ts, args), args.join(" ")).toBe(want);
        // A watch answered from history exits by itself with the event's value (not cut off by the time limit).
        if (args[0] === "watch") expect(want, args.join(" ")).toMatch(/^exit 0\n(\[set\] \/wa\/k\n)?(one|two)\n/);
      }
    }, 60_000);
  }

  it("a wait for a future event is answered by the next matching write, recursive waits by a key below", async () => {
    for (const [path, write] of [
      ["/v2/keys/wf?wait=true", "/v2/keys/wf"],
      ["/v2/keys/wr?wait=true&recursive=true", "/v2/keys/wr/a/b"],
    ] as const) {
      const outs: string[] = [];
      for (const c of [etcd, ts]) {
        const waiting = fetch(`${url(c.server)}${path}`);
        const res = await waiting; // headers come at once, before any event
        const body = res.text();
        await http(c, put(write, { value: "now" }));
        outs.push(await render(c, new Response(await body, { status: res.status, headers: res.headers })));
      }
      expect(outs[1]).toBe(outs[0]);
      expect(outs[0]).toContain('"action":"set"');
    }
  }, 30_000);

  it("a stream wait reports every matching write until the client hangs up", async () => {
    const outs: string[] = [];
    for (const c of [etcd, ts]) {
      const abort = new AbortController();
      const res = await fetch(`${url(c.server)}/v2/keys/st?wait=true&stream=true&recursive=true`, {
        signal: abort.signal,
      });
      const reader = res.body?.getReader();
      if (reader === undefined) throw new Error("no body");
      await http(c, put("/v2/keys/st/a", { value: "1" }));
      await http(c, put("/v2/keys/other", { value: "not watched" }));
      await http(c, put("/v2/keys/st/b", { value: "2" }));
      let text = "";
      while (text.split("\n").length < 3) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      abort.abort();
      outs.push(normalize(`${res.status} ${rel(res.headers.get("x-etcd-index") ?? "-", c)}\n${text}`, c));
    }
    expect(outs[1]).toBe(outs[0]);
    expect(outs[0]).toContain('"key":"/st/b"');
  }, 30_000);

  it("a TTL key expires through the leader, and the expiry is an event", async () => {
    const outs: string[] = [];
    for (const c of [etcd, ts]) {
      const set = await http(c, put("/v2/keys/expiring", { value: "soon", ttl: "1" }, "EXP"));
      expect(await waitGone(c, "/v2/keys/expiring")).toBe(true);
      outs.push(
        [
          set,
          await http(c, get("/v2/keys/expiring")),
          await http(c, get("/v2/keys/expiring?wait=true&waitIndex={EXP+1}")),
        ].join(SEP),
      );
    }
    expect(outs[1]).toBe(outs[0]);
    expect(outs[0]).toContain('"action":"expire"');
  }, 30_000);

  it("after 1,000 newer events an old waitIndex is error 401", async () => {
    const outs: string[] = [];
    for (const c of [etcd, ts]) {
      const first = await http(c, put("/v2/keys/hist", { value: "0" }, "H0"));
      for (let i = 1; i <= 1005; i++) {
        const r = await request(c, put("/v2/keys/hist", { value: String(i) }));
        await r.text();
        if (r.status !== 200) throw new Error(`${c.server.kind}: write ${i} answered ${r.status}`);
      }
      outs.push(
        [
          first,
          await http(c, get("/v2/keys/hist?wait=true&waitIndex={H0+0}")),
          await http(c, get("/v2/keys/hist?wait=true&waitIndex={H0+1000}")),
        ].join(SEP),
      );
    }
    expect(outs[1]).toBe(outs[0]);
    expect(outs[0]).toContain('"errorCode":401');
  }, 120_000);

  it("the store stats name the same counters", async () => {
    const keys = async (c: Ctx): Promise<string[]> =>
      Object.keys((await (await fetch(`${url(c.server)}/v2/stats/store`)).json()) as object);
    expect(await keys(ts)).toEqual(await keys(etcd));
  });
});

describe.skipIf(!haveEtcd())("without --enable-v2 both answer the v2 paths 404", () => {
  let etcd: RunningServer;
  let ts: RunningServer;

  beforeAll(async () => {
    [etcd, ts] = await Promise.all([startServer("etcd"), startServer("etcd-ts")]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([etcd?.stop(), ts?.stop()]);
  });

  it("keys, members, stats and machines", async () => {
    for (const step of [
      get("/v2/keys"),
      get("/v2/keys/foo"),
      put("/v2/keys/foo", { value: "1" }),
      get("/v2/members"),
      get("/v2/stats/self"),
      get("/v2/stats/store"),
      get("/v2/machines"),
    ]) {
      const show = async (s: RunningServer): Promise<string> => {
        const r = await fetch(`${url(s)}${step.path}`, {
          method: step.method,
          ...(step.form !== undefined ? { body: new URLSearchParams(step.form) } : {}),
        });
        return `${r.status} ${r.headers.get("content-type")} ${await r.text()}`;
      };
      const want = await show(etcd);
      expect(await show(ts), step.path).toBe(want);
      expect(want).toBe("404 text/plain; charset=utf-8 404 page not found\n");
    }
  });
});
