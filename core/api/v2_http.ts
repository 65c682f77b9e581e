// etcd 3.4's v2 routes on the client port with --enable-v2: /v2/keys (v2_keys_http.ts), /v2/members (list, the
// leader, add, remove, update over the member-change path), /v2/stats/{self,leader,store} and /v2/machines.
// Without the flag the client port answers these paths 404, as etcd does.
import type { IncomingMessage, ServerResponse } from "node:http";
import { EtcdError } from "../errors.js";
import type { Member } from "../membership/cluster.js";
import type { EtcdServer } from "../server/etcd_server.js";
import { formatNs, STAT_NAMES } from "../v2store/index.js";
import { KEYS_PREFIX, serveKeys } from "./v2_keys_http.js";
import { allowMethod, clusterIdHex, goJson, readBody, send } from "./v2_wire.js";

const MEMBERS_PREFIX = "/v2/members";

/** Whether `path` is a v2 route etcd serves (other /v2/… paths answer 404). */
export function isV2Route(path: string): boolean {
  return (
    path === KEYS_PREFIX ||
    path.startsWith(`${KEYS_PREFIX}/`) ||
    path === MEMBERS_PREFIX ||
    path.startsWith(`${MEMBERS_PREFIX}/`) ||
    path === "/v2/machines" ||
    path === "/v2/stats/self" ||
    path === "/v2/stats/leader" ||
    path === "/v2/stats/store"
  );
}

export function serveV2(s: EtcdServer, req: IncomingMessage, res: ServerResponse, path: string, query: string): void {
  if (path === KEYS_PREFIX || path.startsWith(`${KEYS_PREFIX}/`)) serveKeys(s, req, res, path, query);
  else if (path === MEMBERS_PREFIX || path.startsWith(`${MEMBERS_PREFIX}/`)) serveMembers(s, req, res, path);
  else if (path === "/v2/machines") serveMachines(s, req, res);
  else serveStats(s, req, res, path);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, { "Content-Type": "application/json", ...headers }, `${goJson(body)}\n`);
}

/** etcd's HTTPError: {"message": …} with its status (no trailing newline). */
function httpError(res: ServerResponse, status: number, message: string): void {
  send(res, status, { "Content-Type": "application/json" }, goJson({ message }));
}

function memberJson(m: Member): Record<string, unknown> {
  return { id: m.id.toString(16), name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls] };
}

function serveMachines(s: EtcdServer, req: IncomingMessage, res: ServerResponse): void {
  if (!allowMethod(res, req.method ?? "GET", ["GET", "HEAD"])) return;
  const urls = s
    .members()
    .flatMap((m) => m.clientUrls)
    .sort();
  send(res, 200, { "Content-Type": "text/plain; charset=utf-8" }, urls.join(", "));
}

function serveMembers(s: EtcdServer, req: IncomingMessage, res: ServerResponse, path: string): void {
  const method = req.method ?? "GET";
  if (!allowMethod(res, method, ["GET", "POST", "DELETE", "PUT"])) return;
  res.setHeader("X-Etcd-Cluster-Id", clusterIdHex(s));
  const rest = path.slice(MEMBERS_PREFIX.length).replace(/^\//, "");
  void readBody(req, method === "POST" || method === "PUT").then(
    async (body) => {
      try {
        await memberRequest(s, req, res, method, rest, body);
      } catch (err) {
        memberError(res, err, rest);
      }
    },
    () => res.destroy(),
  );
}

async function memberRequest(
  s: EtcdServer,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  rest: string,
  body: string,
): Promise<void> {
  if (method === "GET") {
    if (rest === "") json(res, 200, { members: s.members().map(memberJson) });
    else if (rest === "leader") {
      const leader = s.members().find((m) => m.id === s.leader);
      if (s.leader === 0n || leader === undefined) httpError(res, 503, "During election");
      else json(res, 200, memberJson(leader));
    } else httpError(res, 404, "Not found");
    return;
  }
  if (method === "POST") {
    const urls = peerUrlsOf(req, res, body);
    if (urls === undefined) return;
    const { member } = await s.memberAdd(urls, false);
    json(res, 201, memberJson(member));
    return;
  }
  if (rest === "") {
    send(
      res,
      405,
      { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
      "Method Not Allowed\n",
    );
    return;
  }
  if (!/^[0-9a-fA-F]{1,16}$/.test(rest)) {
    httpError(res, 404, `No such member: ${rest}`);
    return;
  }
  const id = BigInt(`0x${rest}`);
  if (method === "DELETE") await s.memberRemove(id);
  else {
    const urls = peerUrlsOf(req, res, body);
    if (urls === undefined) return;
    await s.memberUpdate(id, urls);
  }
  res.writeHead(204).end();
}

/** {"peerURLs": [...]} with Content-Type application/json, as etcd's MemberCreateRequest/MemberUpdateRequest. */
function peerUrlsOf(req: IncomingMessage, res: ServerResponse, body: string): string[] | undefined {
  const ctype = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (ctype !== "application/json") {
    httpError(res, 415, `Bad Content-Type ${ctype}, accept application/json`);
    return undefined;
  }
  try {
    const urls = (JSON.parse(body) as { peerURLs?: unknown }).peerURLs;
    if (!Array.isArray(urls) || urls.some((u) => typeof u !== "string" || !/^https?:\/\/[^/]+$/.test(u)))
      throw new Error("URL must be scheme://host:port");
    return urls as string[];
  } catch (err) {
    httpError(res, 400, err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

function memberError(res: ServerResponse, err: unknown, id: string): void {
  if (res.headersSent) return void res.end();
  const code = err instanceof EtcdError ? err.code : undefined;
  if (code === "MEMBER_EXIST" || code === "PEER_URL_EXIST")
    httpError(res, 409, err instanceof Error ? err.message : "");
  else if (code === "MEMBER_NOT_FOUND") httpError(res, 404, `No such member: ${id}`);
  else httpError(res, 500, "Internal Server Error");
}

function serveStats(s: EtcdServer, req: IncomingMessage, res: ServerResponse, path: string): void {
  if (!allowMethod(res, req.method ?? "GET", ["GET"])) return;
  if (path === "/v2/stats/store") {
    const st = s.v2.store.stats;
    send(
      res,
      200,
      { "Content-Type": "application/json" },
      JSON.stringify({ ...Object.fromEntries(STAT_NAMES.map((n) => [n, st[n]])), watchers: s.v2.store.watcherCount }),
    );
  } else if (path === "/v2/stats/self") {
    send(res, 200, { "Content-Type": "application/json" }, JSON.stringify(selfStats(s)));
  } else if (!s.isLeader) {
    httpError(res, 403, "not current leader");
  } else {
    send(res, 200, { "Content-Type": "application/json" }, JSON.stringify(leaderStats(s)));
  }
}

function timeOf(ms: number): string {
  return formatNs(BigInt(ms) * 1_000_000n);
}

/** Go's time.Duration.String() for a span in milliseconds. */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${trim(ms.toFixed(3))}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = trim(((ms % 60_000) / 1000).toFixed(3));
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${sec}s`;
}

function trim(n: string): string {
  return n.includes(".") ? n.replace(/0+$/, "").replace(/\.$/, "") : n;
}

function selfStats(s: EtcdServer): Record<string, unknown> {
  const m = s.metrics;
  const self = s.members().find((x) => x.id === s.config.memberId);
  const since = m.leaderSinceMs;
  return {
    name: self?.name ?? s.config.name,
    id: s.config.memberId.toString(16),
    state: s.raftState,
    startTime: timeOf(m.startedMs),
    leaderInfo: {
      leader: s.leader === 0n ? "" : s.leader.toString(16),
      uptime: goDuration(since === 0 ? 0 : Date.now() - since),
      startTime: timeOf(since === 0 ? m.startedMs : since),
    },
    recvAppendRequestCnt: m.appendsReceived,
    sendAppendRequestCnt: m.appendsSent,
  };
}

/** The leader's view of its followers: append latency in milliseconds and counts (follower_stats.ts). */
function leaderStats(s: EtcdServer): Record<string, unknown> {
  const ids = s
    .members()
    .map((m) => m.id)
    .filter((id) => id !== s.config.memberId);
  const followers: Record<string, unknown> = {};
  for (const [id, st] of s.metrics.followers.of(ids)) followers[id.toString(16)] = st;
  return { leader: s.config.memberId.toString(16), followers };
}
