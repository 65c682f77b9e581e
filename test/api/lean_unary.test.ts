// Proves the lean unary path (core/api/lean_unary.ts) answers as grpc-js does and hands over what it does not
// serve: a Put gets grpc-js's headers, message and OK trailers; a handler error its status in trailers only;
// grpc-timeout a DEADLINE_EXCEEDED; a bad grpc-timeout INTERNAL; no message or two messages UNIMPLEMENTED; an
// oversized message RESOURCE_EXHAUSTED; the request metadata reaches the handler without the transport headers;
// Txn is served the same way; a Range's lent buffer goes out without a copy and is reported written, and one over
// the send limit is refused; a gzip-encoded call and methods not served here go to grpc-js itself. Each on node:http2
// and on the lane (http2/lane.ts), from raw node:http2 client requests on loopback.
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prefixed } from "../../core/api/grpc_send.js";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from "node:net";
import { serveHttp2 } from "../../core/api/http2/authority_fix.js";
import { installLeanUnary, leanLaneServer } from "../../core/api/lean_unary.js";
import { loadEtcdProto } from "../../core/api/proto/load.js";

const MAX_BYTES = 1024;
const MAX_SEND_BYTES = 4096;
const ANSWER = Buffer.from([0x0a, 0x02, 0x18, 0x07]); // PutResponse{header{revision: 7}}

interface Seen {
  key: string;
  token: unknown;
  timeoutInMetadata: number;
  grpcJsCall: boolean;
}

let server: grpc.Server;
let port = 0;
let grpcPort = 0;
let lanePort = 0;
let laneListener: NetServer | undefined;
let injector: ReturnType<grpc.Server["createConnectionInjector"]> | undefined;
let installed = false;
const seen: Seen[] = [];
const txnByGrpcJs: boolean[] = [];
let rangeWritten = 0;

/** What the client got: response headers, body bytes and trailers. */
interface Reply {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

function framed(msg: Buffer): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

function putBytes(key: string): Buffer {
  const k = Buffer.from(key);
  return Buffer.concat([Buffer.from([0x0a, k.length]), k]);
}

function request(path: string, extra: http2.OutgoingHttpHeaders, body: Buffer[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on("error", reject);
    const req = client.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...extra,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      headers = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      client.close();
      resolve({ headers, body: Buffer.concat(chunks), trailers });
    });
    req.on("error", reject);
    for (const b of body) req.write(b);
    req.end();
  });
}

/** grpc-status and grpc-message, from the trailers or (trailers-only response) the headers. */
function statusOf(r: Reply): { code: number; message: string } {
  const src = r.trailers["grpc-status"] !== undefined ? r.trailers : r.headers;
  return { code: Number(src["grpc-status"]), message: decodeURI(String(src["grpc-message"] ?? "")) };
}

beforeAll(async () => {
  const kv = loadEtcdProto().services.KV.service;
  const raw = (m: grpc.MethodDefinition<unknown, unknown> | undefined) => ({
    ...m!,
    responseSerialize: (b: unknown) => b as Buffer,
  });
  const def = { ...kv, Put: raw(kv.Put), Txn: raw(kv.Txn), Range: raw(kv.Range) } as grpc.ServiceDefinition;
  server = new grpc.Server({ "grpc.max_receive_message_length": MAX_BYTES });
  server.addService(def, {
    Put: (call: grpc.ServerUnaryCall<{ key: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const key = call.request.key.toString();
      seen.push({
        key,
        token: call.metadata.get("token")[0],
        timeoutInMetadata: call.metadata.get("grpc-timeout").length,
        grpcJsCall: typeof (call as unknown as { sendMetadata?: unknown }).sendMetadata === "function",
      });
      if (key === "hang") return; // never answered: the deadline answers
      if (key === "refuse") cb({ code: grpc.status.INVALID_ARGUMENT, details: "etcdserver: refused, 100%" });
      else cb(null, ANSWER);
    },
    Range: (call: grpc.ServerUnaryCall<{ limit: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      // A framed response in a buffer with room in front, as the range task lends them; `limit` sets its size.
      const n = Number(call.request.limit);
      const whole = Buffer.alloc(5 + n, 0x61);
      cb(
        null,
        prefixed(whole.subarray(5), () => rangeWritten++),
      );
    },
    Txn: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      txnByGrpcJs.push(typeof (call as unknown as { sendMetadata?: unknown }).sendMetadata === "function");
      cb(null, Buffer.from([0x10, 0x01])); // TxnResponse{succeeded: true}
    },
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const lean = installLeanUnary(server, MAX_BYTES, MAX_SEND_BYTES);
  installed = lean !== undefined;
  grpcPort = port;
  // The same server behind the lane (http2/lane.ts): the lean paths answered by the lane's own framing.
  const inj = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  injector = inj;
  const lane = lean === undefined ? undefined : leanLaneServer(lean);
  const listener = createNetServer((socket) => serveHttp2(socket, inj, { lane }));
  laneListener = listener;
  lanePort = await new Promise<number>((resolve) =>
    listener.listen(0, "127.0.0.1", () => resolve((listener.address() as AddressInfo).port)),
  );
});

afterAll(() => {
  laneListener?.close();
  injector?.destroy();
  server.forceShutdown();
});

const PUT = "/etcdserverpb.KV/Put";

describe.each(["node:http2", "lane"])("lean unary path on %s", (via) => {
  beforeAll(() => {
    port = via === "lane" ? lanePort : grpcPort;
  });

  it("is installed on the grpc-js version in package-lock.json", () => {
    expect(installed).toBe(true);
  });

  it("answers a Put with grpc-js's headers, the message and OK trailers, metadata passed on", async () => {
    const r = await request(PUT, { token: "abc", "grpc-timeout": "10S" }, [framed(putBytes("k1"))]);
    expect(r.headers[":status"]).toBe(200);
    expect(r.headers["content-type"]).toBe("application/grpc+proto");
    expect(r.headers["grpc-encoding"]).toBe("identity");
    expect(r.body.equals(framed(ANSWER))).toBe(true);
    expect(statusOf(r)).toEqual({ code: 0, message: "OK" });
    expect(seen.at(-1)).toEqual({ key: "k1", token: "abc", timeoutInMetadata: 0, grpcJsCall: false });
  });

  it("sends a handler's error as trailers only, message URI-encoded", async () => {
    const r = await request(PUT, {}, [framed(putBytes("refuse"))]);
    expect(r.body.length).toBe(0);
    expect(r.trailers["grpc-status"]).toBeUndefined();
    expect(statusOf(r)).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: "etcdserver: refused, 100%" });
  });

  it("answers DEADLINE_EXCEEDED when grpc-timeout passes, INTERNAL for a bad grpc-timeout", async () => {
    expect(statusOf(await request(PUT, { "grpc-timeout": "100m" }, [framed(putBytes("hang"))]))).toEqual({
      code: grpc.status.DEADLINE_EXCEEDED,
      message: "Deadline exceeded",
    });
    expect(statusOf(await request(PUT, { "grpc-timeout": "soon" }, [framed(putBytes("k2"))])).code).toBe(
      grpc.status.INTERNAL,
    );
  });

  it("refuses no message, two messages and an oversized one as grpc-js does", async () => {
    expect(statusOf(await request(PUT, {}, [])).code).toBe(grpc.status.UNIMPLEMENTED);
    const two = await request(PUT, {}, [framed(putBytes("a")), framed(putBytes("b"))]);
    expect(statusOf(two).code).toBe(grpc.status.UNIMPLEMENTED);
    const big = await request(PUT, {}, [framed(Buffer.alloc(MAX_BYTES + 1))]);
    expect(statusOf(big)).toEqual({
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: `Received message larger than max (${MAX_BYTES + 1} vs ${MAX_BYTES})`,
    });
  });

  it("reads a request split over DATA frames and one that comes whole alike", async () => {
    const whole = framed(putBytes("split"));
    for (const body of [
      [whole],
      [whole.subarray(0, 3), whole.subarray(3)],
      [whole.subarray(0, 9), whole.subarray(9)],
    ]) {
      const r = await request(PUT, {}, body);
      expect(statusOf(r).code).toBe(grpc.status.OK);
      expect(r.body.subarray(5)).toEqual(ANSWER);
    }
  });

  it("serves Txn too", async () => {
    const before = txnByGrpcJs.length;
    const r = await request("/etcdserverpb.KV/Txn", {}, [framed(Buffer.alloc(0))]);
    expect(statusOf(r).code).toBe(0);
    expect(r.body.equals(framed(Buffer.from([0x10, 0x01])))).toBe(true);
    expect(txnByGrpcJs.slice(before)).toEqual([false]);
  });

  it("sends a Range's lent buffer as it is and reports it written; refuses one over the send limit", async () => {
    const limit = (n: number): Buffer => Buffer.from([0x18, (n & 0x7f) | 0x80, n >> 7]); // RangeRequest{limit: n}
    const written = rangeWritten;
    const r = await request("/etcdserverpb.KV/Range", {}, [framed(limit(300))]);
    expect(statusOf(r).code).toBe(0);
    expect(r.body.equals(framed(Buffer.alloc(300, 0x61)))).toBe(true);
    expect(rangeWritten).toBe(written + 1);
    const big = await request("/etcdserverpb.KV/Range", {}, [framed(limit(MAX_SEND_BYTES + 1))]);
    expect(statusOf(big)).toEqual({
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: `Sent message larger than max (${MAX_SEND_BYTES + 6} vs. ${MAX_SEND_BYTES})`,
    });
    expect(rangeWritten).toBe(written + 1);
  });

  it("leaves a gzip-encoded Put and other methods to grpc-js", async () => {
    const before = seen.length;
    const r = await request(PUT, { "grpc-encoding": "gzip" }, [framed(putBytes("k3"))]);
    expect(statusOf(r).code).toBe(0);
    expect(seen.slice(before)).toEqual([{ key: "k3", token: undefined, timeoutInMetadata: 0, grpcJsCall: true }]);
    const unknown = await request("/etcdserverpb.KV/Nope", {}, [framed(Buffer.alloc(0))]);
    expect(statusOf(unknown)).toEqual({
      code: grpc.status.UNIMPLEMENTED,
      message: "The server does not implement the method /etcdserverpb.KV/Nope",
    });
  });
});
