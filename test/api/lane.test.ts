// Proves the lane (core/api/http2/lane.ts) shares one client connection between its own answers and grpc-js's
// without breaking HTTP/2: with small client windows, large answers from both sides (lent Range buffers on the
// lane, a server stream through grpc-js) arrive intact and interleaved on one connection; header blocks the client
// compresses against its dynamic table decode right whether the stream was claimed or not; a stream the client
// resets mid-request leaves the connection serving, and an answer it resets while waiting for window is dropped; grpc-js's GOAWAY names the lane's streams as processed. Raw
// node:http2 client sessions on loopback.
import http2 from "node:http2";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { prefixed } from "../../core/api/grpc_send.js";
import { connect as netConnect } from "node:net";
import { serveHttp2 } from "../../core/api/http2/authority_fix.js";
import { CLIENT_PREFACE, Flag, FrameType, frame, headerFrames } from "../../core/api/http2/frames.js";
import { HpackDecoder, encodeLiterals } from "../../core/api/http2/hpack.js";
import type { LanePipe } from "../../core/api/http2/lane.js";
import { installLeanUnary, leanLaneServer } from "../../core/api/lean_unary.js";
import { loadEtcdProto } from "../../core/api/proto/load.js";

const MAX_BYTES = 4 * 1024 * 1024;
const PUT = "/etcdserverpb.KV/Put";
const RANGE = "/etcdserverpb.KV/Range";
const STREAM = "/test.Big/Stream";

interface Served {
  readonly port: number;
  readonly puts: { key: string; user: unknown; grpcJs: boolean }[];
  readonly server: grpc.Server;
  readonly pipes: LanePipe[];
  close(): void;
}

const open: Served[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

function framed(msg: Buffer): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

/** A varint-encoded RangeRequest{limit: n}: the test's Range answers n bytes of a pattern. */
function rangeLimit(n: number): Buffer {
  const bytes = [0x18];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** n bytes, different at every offset modulo 251, so a misplaced or lost chunk shows. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i + seed) % 251;
  return b;
}

async function serve(): Promise<Served> {
  const kv = loadEtcdProto().services.KV.service;
  const raw = (m: grpc.MethodDefinition<unknown, unknown> | undefined) => ({
    ...m!,
    responseSerialize: (b: unknown) => b as Buffer,
  });
  const def = { ...kv, Put: raw(kv.Put), Range: raw(kv.Range) } as grpc.ServiceDefinition;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_BYTES,
    "grpc.max_send_message_length": MAX_BYTES,
  });
  const puts: Served["puts"] = [];
  server.addService(def, {
    Put: (call: grpc.ServerUnaryCall<{ key: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      puts.push({
        key: call.request.key.toString(),
        user: call.metadata.get("x-user")[0],
        grpcJs: typeof (call as unknown as { sendMetadata?: unknown }).sendMetadata === "function",
      });
      cb(null, Buffer.from([0x0a, 0x02, 0x18, 0x07]));
    },
    Range: (call: grpc.ServerUnaryCall<{ limit: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const n = Number(call.request.limit);
      const whole = Buffer.alloc(5 + n);
      pattern(n, 1).copy(whole, 5);
      cb(null, prefixed(whole.subarray(5)));
    },
  });
  const id = (b: Buffer): Buffer => b;
  server.addService(
    {
      Stream: {
        path: STREAM,
        requestStream: false,
        responseStream: true,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    {
      Stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const n = call.request.readUInt32BE(0);
        for (let at = 0; at < n; at += 50_000) call.write(pattern(Math.min(50_000, n - at), at + 2));
        call.end();
      },
    },
  );
  await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const lean = installLeanUnary(server, MAX_BYTES, MAX_BYTES);
  if (lean === undefined) throw new Error("lean path not installed");
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const lane = leanLaneServer(lean);
  const pipes: LanePipe[] = [];
  const listener: NetServer = createNetServer((socket) =>
    serveHttp2(socket, injector, { lane, onLane: (p) => pipes.push(p) }),
  );
  const port = await new Promise<number>((resolve) =>
    listener.listen(0, "127.0.0.1", () => resolve((listener.address() as AddressInfo).port)),
  );
  const served: Served = {
    port,
    puts,
    server,
    pipes,
    close: () => {
      listener.close();
      injector.destroy();
      server.forceShutdown();
    },
  };
  open.push(served);
  return served;
}

interface Reply {
  status: number;
  messages: Buffer[];
  body: Buffer;
}

/** One gRPC call on `session`; resolves with grpc-status and the response body. */
function call(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
  extra: http2.OutgoingHttpHeaders = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...extra,
    });
    let status = Number.NaN;
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
    });
    req.on("trailers", (t) => {
      status = Number(t["grpc-status"]);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const all = Buffer.concat(chunks);
      const messages: Buffer[] = [];
      for (let at = 0; at + 5 <= all.length; ) {
        const n = all.readUInt32BE(at + 1);
        messages.push(all.subarray(at + 5, at + 5 + n));
        at += 5 + n;
      }
      resolve({ status, messages, body: Buffer.concat(messages) });
    });
    req.on("error", reject);
    req.end(framed(body));
  });
}

/** What the strict client saw: each stream's body and grpc-status, and every flow-control violation. */
interface StrictResult {
  bodies: Map<number, Buffer>;
  status: Map<number, number>;
  violations: string[];
}

/**
 * A raw HTTP/2 client that enforces flow control as Go's does (node's client is lenient about it): it grants 16 KiB
 * per stream and HTTP/2's 64 KiB for the connection, returns credit only some time after data arrives, and records
 * any DATA beyond what it granted.
 */
function strictCalls(port: number, calls: { path: string; body: Buffer }[]): Promise<StrictResult> {
  const STREAM_WINDOW = 16_384;
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1");
    const decoder = new HpackDecoder();
    const result: StrictResult = { bodies: new Map(), status: new Map(), violations: [] };
    const windows = new Map<number, number>();
    let conn = 65_535;
    let open = calls.length;
    let buffered = Buffer.alloc(0);
    const update = (id: number, n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n, 0);
      return frame(FrameType.WINDOW_UPDATE, 0, id, b);
    };
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const len = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + len) break;
        const type = buffered[3];
        const flags = buffered[4] ?? 0;
        const id = buffered.readUInt32BE(5) & 0x7fffffff;
        const payload = buffered.subarray(9, 9 + len);
        buffered = buffered.subarray(9 + len);
        if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0)
          socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0)));
        if (type === FrameType.HEADERS) {
          for (const [name, value] of decoder.decode(payload))
            if (name === "grpc-status") result.status.set(id, Number(value));
        }
        if (type === FrameType.DATA) {
          conn -= len;
          const w = (windows.get(id) ?? STREAM_WINDOW) - len;
          windows.set(id, w);
          if (conn < 0 || w < 0) result.violations.push(`stream ${id}: window ${w}, connection ${conn}`);
          result.bodies.set(id, Buffer.concat([result.bodies.get(id) ?? Buffer.alloc(0), payload]));
          // Credit back a little later, so the server runs its windows down.
          setTimeout(() => {
            if (socket.destroyed) return;
            conn += len;
            windows.set(id, (windows.get(id) ?? 0) + len);
            socket.write(Buffer.concat([update(0, len), update(id, len)]));
          }, 2);
        }
        if ((type === FrameType.HEADERS || type === FrameType.DATA) && (flags & Flag.END_STREAM) !== 0) {
          open--;
          if (open === 0) {
            socket.destroy();
            resolve(result);
          }
        }
      }
    });
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH 0
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(STREAM_WINDOW, 8);
    const out = [CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, settings)];
    for (const [i, c] of calls.entries()) {
      const id = 2 * i + 1;
      const block = encodeLiterals([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", c.path],
        [":authority", `127.0.0.1:${port}`],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ]);
      out.push(
        ...headerFrames(id, false, undefined, block),
        frame(FrameType.DATA, Flag.END_STREAM, id, framed(c.body)),
      );
    }
    socket.write(Buffer.concat(out));
  });
}

function connect(port: number, settings: http2.Settings = {}): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
  session.on("error", () => undefined);
  return session;
}

describe("the lane", () => {
  it("keeps both sides within a strict client's windows, lane and grpc-js sharing the connection's", async () => {
    const s = await serve();
    const streamBytes = Buffer.alloc(4);
    streamBytes.writeUInt32BE(200_000, 0);
    // Eight streams of 16 KiB windows want twice the connection's 64 KiB: the connection window binds.
    const ranges = [150_000, 90_000, 120_000, 60_000];
    const calls = ranges.flatMap((n) => [
      { path: RANGE, body: rangeLimit(n) },
      { path: STREAM, body: streamBytes },
    ]);
    const r = await strictCalls(s.port, calls);
    expect(r.violations).toEqual([]);
    expect([...r.status.values()]).toEqual(calls.map(() => 0));
    for (const [i, n] of ranges.entries())
      expect(r.bodies.get(4 * i + 1)?.equals(framed(pattern(n, 1))), `range ${n}`).toBe(true);
    for (const id of [3, 7, 11, 15]) {
      const body = r.bodies.get(id) as Buffer;
      expect(body.length).toBe(4 * 50_005);
      for (let m = 0; m < 4; m++)
        expect(body.subarray(m * 50_005 + 5, (m + 1) * 50_005).equals(pattern(50_000, m * 50_000 + 2))).toBe(true);
    }
  });

  it("keeps both sides within small client windows: large answers from the lane and grpc-js arrive intact", async () => {
    const s = await serve();
    // 4 KiB per stream and 64 KiB for the connection: every answer below needs many WINDOW_UPDATEs.
    const session = connect(s.port, { initialWindowSize: 4096 });
    const sizes = [300_000, 70_000, 1_000_000, 5];
    const streamBytes = Buffer.alloc(4);
    streamBytes.writeUInt32BE(400_000, 0);
    const calls = [
      ...sizes.map((n) => call(session, RANGE, rangeLimit(n))),
      call(session, STREAM, streamBytes),
      call(session, STREAM, streamBytes),
    ];
    const replies = await Promise.all(calls);
    for (const [i, n] of sizes.entries()) {
      expect(replies[i]?.status).toBe(0);
      expect(replies[i]?.body.equals(pattern(n, 1)), `range ${n}`).toBe(true);
    }
    for (const r of replies.slice(sizes.length)) {
      expect(r.status).toBe(0);
      expect(r.messages.length).toBe(8);
      expect(r.messages.every((m, i) => m.equals(pattern(50_000, i * 50_000 + 2)))).toBe(true);
    }
    session.close();
  });

  it("decodes header blocks compressed against the client's table alike on claimed and unclaimed streams", async () => {
    const s = await serve();
    const session = connect(s.port);
    const replies: Reply[] = [];
    for (let i = 0; i < 40; i++) {
      // The same x-user value repeats (an indexed reference after its first use); gzip sends it to grpc-js.
      const extra: http2.OutgoingHttpHeaders = { "x-user": `user-${i % 3}` };
      if (i % 4 === 1) extra["grpc-encoding"] = "gzip";
      const body = Buffer.concat([Buffer.from([0x0a, 3]), Buffer.from(`k${String(i).padStart(2, "0")}`)]);
      replies.push(await call(session, PUT, i % 4 === 1 ? Buffer.alloc(0) : body, extra));
    }
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 0));
    const lane = s.puts.filter((p) => !p.grpcJs);
    expect(lane.length).toBe(30);
    for (const p of lane) expect(p.user).toBe(`user-${Number(p.key.slice(1)) % 3}`);
    expect(s.puts.filter((p) => p.grpcJs).map((p) => p.user)).toEqual(
      Array.from({ length: 10 }, (_, j) => `user-${(4 * j + 1) % 3}`),
    );
    session.close();
  });

  it("keeps serving a connection after the client resets a claimed stream mid-request", async () => {
    const s = await serve();
    const session = connect(s.port);
    const req = session.request({
      ":method": "POST",
      ":path": PUT,
      "content-type": "application/grpc",
      te: "trailers",
    });
    req.on("error", () => undefined);
    req.write(Buffer.from([0, 0, 0, 0, 10, 0x0a])); // 6 of the message's 15 bytes
    await new Promise((r) => setTimeout(r, 20));
    req.close(http2.constants.NGHTTP2_CANCEL);
    const after = await call(session, PUT, Buffer.concat([Buffer.from([0x0a, 5]), Buffer.from("after")]));
    expect(after.status).toBe(0);
    expect(s.puts.map((p) => p.key)).toEqual(["after"]);
    session.close();
  });

  it("drops an answer still waiting for window when the client resets its stream", async () => {
    const s = await serve();
    const socket = netConnect(s.port, "127.0.0.1");
    socket.on("error", () => undefined);
    const frames: { type: number; flags: number; id: number; payload: Buffer }[] = [];
    let buffered = Buffer.alloc(0);
    let notify = (): void => undefined;
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9 && buffered.length >= 9 + buffered.readUIntBE(0, 3)) {
        const len = buffered.readUIntBE(0, 3);
        frames.push({
          type: buffered[3] ?? 0,
          flags: buffered[4] ?? 0,
          id: buffered.readUInt32BE(5) & 0x7fffffff,
          payload: buffered.subarray(9, 9 + len),
        });
        buffered = buffered.subarray(9 + len);
      }
      notify();
    });
    const until = (ok: () => boolean): Promise<void> =>
      new Promise((resolve) => {
        notify = () => {
          if (ok()) resolve();
        };
        notify();
      });
    const headers = (id: number, path: string): Buffer[] =>
      headerFrames(
        id,
        false,
        undefined,
        encodeLiterals([
          [":method", "POST"],
          [":scheme", "http"],
          [":path", path],
          [":authority", "x"],
          ["content-type", "application/grpc"],
        ]),
      );
    // The connection's and each stream's window stay at 64 KiB: the client never credits anything back.
    socket.write(
      Buffer.concat([
        CLIENT_PREFACE,
        frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)),
        ...headers(1, RANGE),
        frame(FrameType.DATA, Flag.END_STREAM, 1, framed(rangeLimit(1_000_000))),
      ]),
    );
    const dataOn = (id: number): number =>
      frames.filter((f) => f.type === FrameType.DATA && f.id === id).reduce((n, f) => n + f.payload.length, 0);
    await until(() => dataOn(1) === 65_535);
    expect(s.pipes[0]?.queuedAnswers).toBe(1);
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL, 0);
    const credit = Buffer.alloc(4);
    credit.writeUInt32BE(1 << 20, 0);
    socket.write(
      Buffer.concat([
        frame(FrameType.RST_STREAM, 0, 1, cancel),
        frame(FrameType.WINDOW_UPDATE, 0, 0, credit), // room on the connection again: only stream 3 may use it
        ...headers(3, PUT),
        frame(FrameType.DATA, Flag.END_STREAM, 3, framed(Buffer.from([0x0a, 1, 0x6b]))),
      ]),
    );
    await until(() => frames.some((f) => f.id === 3 && (f.flags & Flag.END_STREAM) !== 0));
    expect(s.pipes[0]?.queuedAnswers).toBe(0);
    expect(dataOn(1)).toBe(65_535);
    socket.destroy();
  });

  it("answers the client's PINGs itself, payload echoed", async () => {
    const s = await serve();
    const session = connect(s.port);
    await call(session, PUT, Buffer.concat([Buffer.from([0x0a, 1]), Buffer.from("p")]));
    const payload = Buffer.from("lanepong");
    const echoed = await new Promise<Buffer>((resolve, reject) =>
      session.ping(payload, (err, _ms, p) => (err ? reject(err) : resolve(p))),
    );
    expect(echoed.equals(payload)).toBe(true);
    session.close();
  });

  it("has grpc-js's GOAWAY name the lane's streams as processed", async () => {
    const s = await serve();
    const session = connect(s.port);
    const put = await call(session, PUT, Buffer.concat([Buffer.from([0x0a, 1]), Buffer.from("g")]));
    expect(put.status).toBe(0);
    const goaway = new Promise<number>((resolve) =>
      session.once("goaway", (_code: number, lastStreamId: number) => resolve(lastStreamId)),
    );
    s.server.tryShutdown(() => undefined);
    // Stream 1 went to the lane only: grpc-js saw no stream and would say 0, inviting a retry of a done Put.
    expect(await goaway).toBe(1);
    session.destroy();
  });
});
