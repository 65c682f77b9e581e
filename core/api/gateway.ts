// etcd's JSON gateway (grpc-gateway in etcd 3.4) on the client port: POST /v3/<service>/<method> with a JSON
// body in the protobuf JSON mapping (original field names, base64 bytes, 64-bit integers as strings, enums by
// name, unknown fields ignored) runs the same handler as the gRPC call and answers its response in that mapping,
// zero values left out. Errors answer {"error","message","code"} with grpc-gateway's HTTP status for the code.
// Streaming calls (/v3/watch, /v3/lease/keepalive, /v3/maintenance/snapshot) answer one JSON object per line,
// {"result": …} per message, as grpc-gateway streams: the request body holds one JSON request (or several, one a
// line), the response stays open until the server ends it or the HTTP client goes away.
import { EventEmitter } from "node:events";
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import protobuf from "protobufjs";
import { readWithoutSending } from "./grpc_send.js";
import {
  PROTO_FILES,
  RECIPE_PROTO_FILES,
  protoDir,
  servicePackage,
  type AnyServiceName as ServiceName,
} from "./proto/load.js";

/** Each gateway path of etcd 3.4's rpc.proto (google.api.http annotations) → service and method. */
const ROUTES: Readonly<Record<string, readonly [ServiceName, string]>> = {
  "/v3/kv/range": ["KV", "Range"],
  "/v3/kv/put": ["KV", "Put"],
  "/v3/kv/deleterange": ["KV", "DeleteRange"],
  "/v3/kv/txn": ["KV", "Txn"],
  "/v3/kv/compaction": ["KV", "Compact"],
  "/v3/lease/grant": ["Lease", "LeaseGrant"],
  "/v3/lease/revoke": ["Lease", "LeaseRevoke"],
  "/v3/kv/lease/revoke": ["Lease", "LeaseRevoke"],
  "/v3/lease/timetolive": ["Lease", "LeaseTimeToLive"],
  "/v3/kv/lease/timetolive": ["Lease", "LeaseTimeToLive"],
  "/v3/lease/leases": ["Lease", "LeaseLeases"],
  "/v3/kv/lease/leases": ["Lease", "LeaseLeases"],
  "/v3/cluster/member/list": ["Cluster", "MemberList"],
  "/v3/maintenance/alarm": ["Maintenance", "Alarm"],
  "/v3/maintenance/status": ["Maintenance", "Status"],
  "/v3/maintenance/defragment": ["Maintenance", "Defragment"],
  "/v3/maintenance/hash": ["Maintenance", "Hash"],
  "/v3/maintenance/transfer-leadership": ["Maintenance", "MoveLeader"],
  "/v3/auth/enable": ["Auth", "AuthEnable"],
  "/v3/auth/disable": ["Auth", "AuthDisable"],
  "/v3/auth/authenticate": ["Auth", "Authenticate"],
  "/v3/auth/user/add": ["Auth", "UserAdd"],
  "/v3/auth/user/get": ["Auth", "UserGet"],
  "/v3/auth/user/list": ["Auth", "UserList"],
  "/v3/auth/user/delete": ["Auth", "UserDelete"],
  "/v3/auth/user/changepw": ["Auth", "UserChangePassword"],
  "/v3/auth/user/grant": ["Auth", "UserGrantRole"],
  "/v3/auth/user/revoke": ["Auth", "UserRevokeRole"],
  "/v3/auth/role/add": ["Auth", "RoleAdd"],
  "/v3/auth/role/get": ["Auth", "RoleGet"],
  "/v3/auth/role/list": ["Auth", "RoleList"],
  "/v3/auth/role/delete": ["Auth", "RoleDelete"],
  "/v3/auth/role/grant": ["Auth", "RoleGrantPermission"],
  "/v3/auth/role/revoke": ["Auth", "RoleRevokePermission"],
  "/v3/watch": ["Watch", "Watch"],
  "/v3/lease/keepalive": ["Lease", "LeaseKeepAlive"],
  "/v3/maintenance/snapshot": ["Maintenance", "Snapshot"],
  "/v3/lock/lock": ["Lock", "Lock"],
  "/v3/lock/unlock": ["Lock", "Unlock"],
  "/v3/election/campaign": ["Election", "Campaign"],
  "/v3/election/proclaim": ["Election", "Proclaim"],
  "/v3/election/leader": ["Election", "Leader"],
  "/v3/election/observe": ["Election", "Observe"],
  "/v3/election/resign": ["Election", "Resign"],
};

/** grpc-gateway's HTTP status for each gRPC code (runtime.HTTPStatusFromCode). */
const HTTP_STATUS: Readonly<Record<number, number>> = {
  0: 200,
  1: 408,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 412,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

const TO_JSON: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: false,
  json: true,
};

type Impl = Record<string, unknown>;
type UnaryImpl = (
  call: { request: unknown; metadata: Metadata; getPeer(): string },
  cb: (err: Partial<grpc.StatusObject> | null, res?: unknown) => void,
) => void;

export class Gateway {
  readonly #root: protobuf.Root;
  readonly #impls: Readonly<Partial<Record<ServiceName, Impl>>>;
  readonly #defs: Readonly<Partial<Record<ServiceName, grpc.ServiceDefinition>>>;
  readonly #maxBodyBytes: number;

  constructor(
    impls: Partial<Record<ServiceName, Impl>>,
    defs: Partial<Record<ServiceName, grpc.ServiceDefinition>>,
    maxBodyBytes: number,
  ) {
    this.#impls = impls;
    this.#defs = defs;
    this.#maxBodyBytes = maxBodyBytes;
    const dir = protoDir();
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith("/") ? target : join(dir, target));
    this.#root = root.loadSync(
      [...PROTO_FILES, ...RECIPE_PROTO_FILES].map((f) => join(dir, f)),
      { keepCase: true },
    );
  }

  /** A server-streaming or bidi call: each response message is one `{"result": …}` line. */
  #stream(
    service: ServiceName,
    method: string,
    def: grpc.MethodDefinition<unknown, unknown>,
    body: string,
    res: ServerResponse,
    metadata: Metadata,
  ): void {
    const impl = this.#impls[service]?.[method] as StreamImpl | undefined;
    if (impl === undefined) {
      sendError(res, 12, `unknown method ${service}.${method}`);
      return;
    }
    const [requestType, responseType] = this.#types(service, method);
    let requests: unknown[];
    try {
      requests = streamRequests(body).map((json) => {
        const wrong = jsonTypeError(requestType, json);
        if (wrong !== undefined) throw new Error(wrong);
        return def.requestDeserialize(def.requestSerialize(json) as Buffer);
      });
    } catch (err) {
      sendError(res, 3, err instanceof Error ? err.message : String(err));
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    let ended = false;
    const call = Object.assign(new EventEmitter(), {
      request: requests[0],
      metadata,
      cancelled: false,
      get writableEnded(): boolean {
        return ended;
      },
      getPeer: () => "gateway",
      write: (msg: unknown): boolean => {
        if (ended) return false;
        const bytes = Buffer.isBuffer(msg) ? msg : (def.responseSerialize(msg) as Buffer);
        const json = pruneDefaults(responseType, responseType.toObject(responseType.decode(bytes), TO_JSON));
        return res.write(JSON.stringify({ result: json }) + "\n");
      },
      end: (): void => {
        if (ended) return;
        ended = true;
        res.end();
      },
    }) as StreamCall;
    call.on("error", (err: { code?: number; details?: string; message?: string }) => {
      if (ended) return;
      const code = err.code ?? 2;
      const message = err.details ?? err.message ?? "unknown error";
      res.write(
        JSON.stringify({ error: { grpc_code: code, http_code: HTTP_STATUS[code] ?? 500, message, http_status: "" } }) +
          "\n",
      );
      call.end();
    });
    res.on("drain", () => call.emit("drain"));
    res.on("close", () => {
      if (ended) return;
      ended = true;
      call.cancelled = true;
      call.emit("cancelled");
    });
    impl(call);
    if (def.requestStream) for (const r of requests) call.emit("data", r);
  }

  /** A method's request and response message types. */
  #types(service: ServiceName, method: string): [protobuf.Type, protobuf.Type] {
    const m = this.#root.lookupService(`${servicePackage(service)}.${service}`).methods[method] as protobuf.Method;
    m.resolve();
    if (m.resolvedRequestType === null || m.resolvedResponseType === null)
      throw new Error(`${service}.${method}: unresolved message types`);
    return [m.resolvedRequestType, m.resolvedResponseType];
  }

  /**
   * Whether the gateway answers `path` (the HTTP handler falls through to /health etc. otherwise): etcd hands it
   * everything under /v3/, so an unknown method there gets grpc-gateway's "Not Found", not the mux's 404 page.
   */
  handles(path: string): boolean {
    return path in ROUTES || path.startsWith("/v3/");
  }

  serve(req: IncomingMessage, res: ServerResponse, path: string): void {
    const route = ROUTES[path];
    if (route === undefined) {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("Not Found\n");
      return;
    }
    if (req.method !== "POST" && req.method !== "PUT") {
      res.writeHead(405, { "Content-Type": "text/plain; charset=utf-8" }).end("Method Not Allowed\n");
      return;
    }
    // etcd's gateway passes the Authorization header on as the gRPC "token" metadata.
    const metadata = new Metadata();
    const token = req.headers.authorization;
    if (token !== undefined && token !== "") metadata.set("token", token);
    readBody(req, this.#maxBodyBytes).then(
      (body) => this.#call(route[0], route[1], body, res, metadata),
      (err: unknown) => sendError(res, 3, err instanceof Error ? err.message : String(err)),
    );
  }

  #call(service: ServiceName, method: string, body: string, res: ServerResponse, metadata: Metadata): void {
    const def = this.#defs[service]?.[method];
    if (def?.responseStream === true) {
      this.#stream(service, method, def, body, res, metadata);
      return;
    }
    const impl = this.#impls[service]?.[method] as UnaryImpl | undefined;
    if (def === undefined || impl === undefined) {
      sendError(res, 12, `unknown method ${service}.${method}`);
      return;
    }
    const [requestType, responseType] = this.#types(service, method);
    let request: unknown;
    try {
      const json = body.trim() === "" ? {} : (JSON.parse(body) as unknown);
      const wrong = jsonTypeError(requestType, json);
      if (wrong !== undefined) throw new Error(wrong);
      request = def.requestDeserialize(def.requestSerialize(json) as Buffer);
    } catch (err) {
      sendError(res, 3, err instanceof Error ? err.message : String(err));
      return;
    }
    // A caller that hangs up cancels the call, as grpc-gateway cancels its context (a waiting Lock gives up).
    const call = Object.assign(new EventEmitter(), { request, metadata, getPeer: () => "gateway" });
    res.on("close", () => {
      if (!res.writableFinished) call.emit("cancelled");
    });
    impl(call, (err, out) => {
      if (err !== null) {
        sendError(res, err.code ?? 2, err.details ?? "unknown error");
        return;
      }
      const bytes = Buffer.isBuffer(out) ? out : (def.responseSerialize(out) as Buffer);
      const json = pruneDefaults(responseType, responseType.toObject(responseType.decode(bytes), TO_JSON));
      readWithoutSending(bytes); // the JSON holds copies (base64 strings): a LIST's lent slab can be reused
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(json));
    });
  }
}

const INT_TYPES = new Set([
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
]);
const GO_INT: Record<string, string> = { int32: "int32", int64: "int64", uint32: "uint32", uint64: "uint64" };
const BASE64_CHAR = /[A-Za-z0-9+/]/;

function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v === "number" ? `number` : typeof v === "boolean" ? "bool" : typeof v;
}

/** Go's name of a protobuf enum: package.Outer_Inner. */
function goEnumName(e: protobuf.Enum): string {
  const parts = e.fullName.replace(/^\./, "").split(".");
  return `${parts[0]}.${parts.slice(1).join("_")}`;
}

/** Where Go's base64 decoder stops on `text`, or undefined when it is valid standard base64. */
function base64Error(text: string): string | undefined {
  const body = text.replace(/=+$/, "");
  for (let i = 0; i < body.length; i++)
    if (!BASE64_CHAR.test(body[i] ?? "")) return `illegal base64 data at input byte ${i}`;
  if (body.length % 4 === 1 || (text.length !== body.length && text.length % 4 !== 0))
    return `illegal base64 data at input byte ${body.length}`;
  return undefined;
}

/**
 * The gateway's type checks of a JSON request against its message, worded as etcd's grpc-gateway (Go's JSON and
 * protobuf JSON decoders) words them; unknown fields are ignored, as there. Undefined when the body is well typed.
 */
function jsonTypeError(type: protobuf.Type, obj: unknown): string | undefined {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    return `json: cannot unmarshal ${jsonKind(obj)} into Go value of type map[string]json.RawMessage`;
  for (const field of type.fieldsArray) {
    const v = (obj as Record<string, unknown>)[field.name];
    if (v === undefined || v === null) continue;
    field.resolve();
    if (field.repeated) {
      if (!Array.isArray(v)) return `json: cannot unmarshal ${jsonKind(v)} into Go value of type []json.RawMessage`;
      for (const x of v) {
        const e = fieldTypeError(field, x);
        if (e !== undefined) return e;
      }
      continue;
    }
    const e = fieldTypeError(field, v);
    if (e !== undefined) return e;
  }
  return undefined;
}

function fieldTypeError(field: protobuf.Field, v: unknown): string | undefined {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return jsonTypeError(rt, v);
  if (rt instanceof protobuf.Enum) {
    if (typeof v === "number" && Number.isInteger(v)) return undefined;
    if (typeof v === "string" && v in rt.values) return undefined;
    return typeof v === "string"
      ? `unknown value ${JSON.stringify(v)} for enum ${goEnumName(rt)}`
      : `json: cannot unmarshal ${jsonKind(v)} into Go value of type ${goEnumName(rt)}`;
  }
  if (field.type === "bytes") {
    if (typeof v !== "string") return `json: cannot unmarshal ${jsonKind(v)} into Go value of type []uint8`;
    return base64Error(v);
  }
  if (field.type === "bool")
    return typeof v === "boolean" ? undefined : `json: cannot unmarshal ${jsonKind(v)} into Go value of type bool`;
  if (field.type === "string")
    return typeof v === "string" ? undefined : `json: cannot unmarshal ${jsonKind(v)} into Go value of type string`;
  if (INT_TYPES.has(field.type)) {
    const goType = GO_INT[field.type] ?? field.type;
    if (typeof v === "number")
      return Number.isInteger(v) ? undefined : `json: cannot unmarshal number ${v} into Go value of type ${goType}`;
    if (typeof v === "string" && /^-?\d+$/.test(v)) return undefined;
    return `json: cannot unmarshal ${jsonKind(v)} into Go value of type ${goType}`;
  }
  return undefined;
}

/**
 * Leaves out fields at their zero value (jsonpb without EmitDefaults): a proto3 encoder may still write a zero
 * that was set explicitly, and the gateway's JSON never shows one.
 */
function pruneDefaults(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (v === undefined) continue;
    field.resolve();
    if (field.resolvedType instanceof protobuf.Type) {
      const sub = field.resolvedType;
      if (Array.isArray(v)) v.forEach((x) => pruneDefaults(sub, x as Record<string, unknown>));
      else if (v !== null && typeof v === "object") pruneDefaults(sub, v as Record<string, unknown>);
      continue;
    }
    if (field.repeated) {
      if (Array.isArray(v) && v.length === 0) delete obj[field.name];
      continue;
    }
    const zeroEnum = field.resolvedType instanceof protobuf.Enum ? field.resolvedType.valuesById[0] : undefined;
    if (v === false || v === "" || v === 0 || v === "0" || (zeroEnum !== undefined && v === zeroEnum))
      delete obj[field.name];
  }
  return obj;
}

interface StreamCall extends EventEmitter {
  request: unknown;
  metadata: Metadata;
  cancelled: boolean;
  readonly writableEnded: boolean;
  getPeer(): string;
  write(msg: unknown): boolean;
  end(): void;
}

type StreamImpl = (call: StreamCall) => void;

/** The body of a streaming call: one JSON request, or several, one a line. */
function streamRequests(body: string): unknown[] {
  const text = body.trim();
  if (text === "") return [{}];
  try {
    return [JSON.parse(text) as unknown];
  } catch {
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as unknown);
  }
}

function sendError(res: ServerResponse, code: number, message: string): void {
  res
    .writeHead(HTTP_STATUS[code] ?? 500, { "Content-Type": "application/json" })
    .end(JSON.stringify({ error: message, message, code }));
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error(`request body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
