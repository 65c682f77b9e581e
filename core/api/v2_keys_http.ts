// etcd 3.4's /v2/keys on the client port (--enable-v2): form parameters from the query and the url-encoded body,
// parsed and refused as etcd does; writes go through Raft (EtcdServer.v2Write), plain reads and waits use the
// member's own store. Answers carry X-Etcd-Cluster-Id, X-Etcd-Index, X-Raft-Index and X-Raft-Term, and errors
// are etcd's v2 error JSON.
import type { IncomingMessage, ServerResponse } from "node:http";
import { EtcdError } from "../errors.js";
import { parseGoBool } from "../go_values.js";
import type { EtcdServer } from "../server/etcd_server.js";
import { eventJson, isCreated, V2Code, V2Error, type V2Event, type V2Request } from "../v2store/index.js";
import { allowMethod, clusterIdHex, goJson, readBody, send } from "./v2_wire.js";

export const KEYS_PREFIX = "/v2/keys";

interface KeyRequest {
  readonly method: string;
  readonly path: string;
  readonly wait: boolean;
  readonly waitIndex: number;
  readonly recursive: boolean;
  readonly sorted: boolean;
  readonly stream: boolean;
  readonly quorum: boolean;
  readonly noValueOnSuccess: boolean;
  readonly write: V2Request;
}

type Form = Map<string, string[]>;

function formOf(query: string, body: string): Form {
  const form: Form = new Map();
  for (const src of [body, query]) {
    for (const [k, v] of new URLSearchParams(src)) {
      const list = form.get(k) ?? [];
      list.push(v);
      form.set(k, list);
    }
  }
  return form;
}

const first = (f: Form, k: string): string | undefined => f.get(k)?.[0];

function fieldError(code: number, cause: string): V2Error {
  return new V2Error(code, cause, 0);
}

function uintOf(f: Form, k: string): number {
  const v = first(f, k);
  if (v === undefined) return 0;
  if (!/^\d+$/.test(v) || BigInt(v) > 18446744073709551615n)
    throw fieldError(V2Code.IndexNaN, `invalid value for "${k}"`);
  return Number(v);
}

function boolOf(f: Form, k: string, cause = `invalid value for "${k}"`): boolean {
  const v = first(f, k);
  if (v === undefined) return false;
  const b = parseGoBool(v);
  if (b === undefined) throw fieldError(V2Code.InvalidField, cause);
  return b;
}

/** etcd's parseKeyRequest: the same checks, in the same order, with the same causes. */
function parseKeyRequest(method: string, keyPath: string, f: Form): KeyRequest {
  const prevIndex = uintOf(f, "prevIndex");
  const waitIndex = uintOf(f, "waitIndex");
  const recursive = boolOf(f, "recursive");
  const sorted = boolOf(f, "sorted");
  const wait = boolOf(f, "wait");
  const dir = boolOf(f, "dir");
  const quorum = boolOf(f, "quorum");
  const stream = boolOf(f, "stream");
  if (wait && method !== "GET") throw fieldError(V2Code.InvalidField, `"wait" can only be used with GET requests`);
  const prevValue = first(f, "prevValue");
  if (prevValue === "") throw fieldError(V2Code.PrevValueRequired, `"prevValue" cannot be empty`);
  const noValueOnSuccess = boolOf(f, "noValueOnSuccess");
  let ttl: bigint | undefined;
  const ttlText = first(f, "ttl") ?? "";
  if (ttlText.length > 0) {
    if (!/^\d+$/.test(ttlText)) throw fieldError(V2Code.TtlNaN, `invalid value for "ttl"`);
    ttl = BigInt(ttlText);
  }
  const prevExist = f.has("prevExist") ? boolOf(f, "prevExist", "invalid value for prevExist") : undefined;
  const refresh = f.has("refresh") ? boolOf(f, "refresh", "invalid value for refresh") : undefined;
  if (refresh === true) {
    if ((first(f, "value") ?? "") !== "") throw fieldError(V2Code.RefreshValue, "A value was provided on a refresh");
    if (ttl === undefined) throw fieldError(V2Code.RefreshTtlRequired, "No TTL value set");
  }
  const write: V2Request = {
    method: method as V2Request["method"],
    path: keyPath,
    value: first(f, "value") ?? "",
    dir,
    prevValue: prevValue ?? "",
    prevIndex,
    recursive,
    ...(prevExist !== undefined ? { prevExist } : {}),
    ...(refresh !== undefined ? { refresh } : {}),
    ...(ttl !== undefined ? { expireNs: BigInt(Date.now()) * 1_000_000n + ttl * 1_000_000_000n } : {}),
  };
  return { method, path: keyPath, wait, waitIndex, recursive, sorted, stream, quorum, noValueOnSuccess, write };
}

export function writeV2Error(res: ServerResponse, err: V2Error): void {
  send(
    res,
    err.status,
    { "Content-Type": "application/json", "X-Etcd-Index": String(err.index) },
    `${goJson(err.toJSON())}\n`,
  );
}

/** Anything but a store refusal (a timeout, no leader, a stopped member) is error 300 with the reason as cause. */
function asV2Error(err: unknown): V2Error {
  if (err instanceof V2Error) return err;
  return new V2Error(
    V2Code.RaftInternal,
    err instanceof EtcdError || err instanceof Error ? err.message : String(err),
    0,
  );
}

function raftHeaders(s: EtcdServer): Record<string, string> {
  return { "X-Raft-Index": String(s.committedIndex), "X-Raft-Term": String(s.term) };
}

function writeEvent(s: EtcdServer, res: ServerResponse, e: V2Event, noValueOnSuccess: boolean): void {
  const headers = { "Content-Type": "application/json", "X-Etcd-Index": String(e.etcdIndex), ...raftHeaders(s) };
  const hideNodes = noValueOnSuccess && ["set", "compareAndSwap", "create", "update"].includes(e.action);
  const body = hideNodes ? { action: e.action } : eventJson(e);
  send(res, isCreated(e) ? 201 : 200, headers, `${goJson(body)}\n`);
}

export function serveKeys(
  s: EtcdServer,
  req: IncomingMessage,
  res: ServerResponse,
  urlPath: string,
  query: string,
): void {
  const method = req.method ?? "GET";
  if (!allowMethod(res, method, ["HEAD", "GET", "PUT", "POST", "DELETE"])) return;
  let keyPath: string;
  try {
    keyPath = decodeURIComponent(urlPath.slice(KEYS_PREFIX.length)) || "/";
  } catch {
    // Go's server refuses a request line with a bad %-escape before any handler runs.
    res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8", Connection: "close" }).end("400 Bad Request");
    return;
  }
  res.setHeader("X-Etcd-Cluster-Id", clusterIdHex(s));
  const withBody = method === "POST" || method === "PUT";
  void readBody(req, withBody).then(
    async (body) => {
      let kr: KeyRequest;
      try {
        kr = parseKeyRequest(method, keyPath, formOf(query, body));
      } catch (err) {
        writeV2Error(res, asV2Error(err));
        return;
      }
      try {
        await answer(s, req, res, kr);
      } catch (err) {
        if (!res.headersSent) writeV2Error(res, asV2Error(err));
        else res.end();
      }
    },
    () => res.destroy(),
  );
}

async function answer(s: EtcdServer, req: IncomingMessage, res: ServerResponse, kr: KeyRequest): Promise<void> {
  if (kr.method === "GET" || kr.method === "HEAD") {
    if (kr.wait && kr.method === "GET") {
      watch(s, req, res, kr);
      return;
    }
    if (kr.quorum) await s.readBarrier();
    writeEvent(s, res, s.v2.store.get(kr.path, kr.recursive, kr.sorted), false);
    return;
  }
  const outcome = await s.v2Write(kr.write);
  if ("error" in outcome) throw V2Error.fromJSON(outcome.error);
  if (outcome.event === undefined) throw new Error("v2 write answered no event");
  writeEvent(s, res, outcome.event, kr.noValueOnSuccess);
}

/** wait=true: headers at once (X-Etcd-Index is the store index now), then one event, or every event with stream. */
function watch(s: EtcdServer, req: IncomingMessage, res: ServerResponse, kr: KeyRequest): void {
  const send = (e: V2Event): void => {
    res.write(`${goJson(eventJson(e))}\n`);
    if (!kr.stream) finish();
  };
  const w = s.v2.store.watch(kr.path, kr.recursive, kr.stream, kr.waitIndex, send);
  const finish = (): void => {
    w.cancel();
    res.end();
  };
  res.writeHead(200, { "Content-Type": "application/json", "X-Etcd-Index": String(w.startIndex), ...raftHeaders(s) });
  res.flushHeaders();
  req.socket.once("close", () => w.cancel());
  if (w.event !== undefined) send(w.event);
}
