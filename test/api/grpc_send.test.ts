// core/api/grpc_send.ts: a marked response is handed to the HTTP/2 stream as the caller's own buffer (prefix
// written in front of it, no copy), an unmarked one goes through grpc-js's copy, and a client receives both
// intact over a real grpc-js connection on loopback.
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRPC_PREFIX_BYTES, noCopySendInstalled, prefixed, readWithoutSending } from "../../core/api/grpc_send.js";

const require = createRequire(import.meta.url);
const { BaseServerInterceptingCall } = require("@grpc/grpc-js/build/src/server-interceptors.js") as {
  BaseServerInterceptingCall: { prototype: { serializeMessage(this: unknown, v: unknown): Buffer } };
};

/** A buffer of n pattern bytes with `room` free bytes in front of it in the same ArrayBuffer. */
function withRoom(n: number, room: number, seed: number): Buffer {
  const whole = Buffer.alloc(room + n);
  for (let i = 0; i < n; i++) whole[room + i] = (i * 31 + seed) & 0xff;
  return whole.subarray(room);
}

describe("grpc_send", () => {
  const identity = { handler: { serialize: (b: Buffer) => b } };
  const serialize = (v: Buffer): Buffer => BaseServerInterceptingCall.prototype.serializeMessage.call(identity, v);

  it("is installed on the grpc-js version in package-lock.json", () => {
    expect(noCopySendInstalled).toBe(true);
  });

  it("sends a marked buffer as the caller's memory, prefix in front", () => {
    const body = prefixed(withRoom(1000, 64, 1));
    const out = serialize(body);
    expect(out.buffer).toBe(body.buffer);
    expect(out.byteOffset).toBe(body.byteOffset - GRPC_PREFIX_BYTES);
    expect(out.length).toBe(1000 + GRPC_PREFIX_BYTES);
    expect(out[0]).toBe(0);
    expect(out.readUInt32BE(1)).toBe(1000);
    expect(out.subarray(GRPC_PREFIX_BYTES).equals(body)).toBe(true);
  });

  it("copies an unmarked buffer, as grpc-js does", () => {
    const body = withRoom(1000, 64, 2);
    const out = serialize(body);
    expect(out.buffer).not.toBe(body.buffer);
    expect(out.readUInt32BE(1)).toBe(1000);
    expect(out.subarray(GRPC_PREFIX_BYTES).equals(body)).toBe(true);
  });

  it("readWithoutSending runs the onWritten hook once and unmarks the buffer", () => {
    let calls = 0;
    const body = prefixed(withRoom(100, 64, 3), () => calls++);
    readWithoutSending(body);
    readWithoutSending(body);
    expect(calls).toBe(1);
    expect(serialize(body).buffer, "no longer marked: copied").not.toBe(body.buffer);
  });

  it("refuses a buffer with no room for the prefix", () => {
    expect(() => prefixed(Buffer.alloc(10).subarray(2))).toThrow(/no room/);
  });

  describe("over a grpc-js connection", () => {
    const id = (b: Buffer): Buffer => b;
    const def: grpc.ServiceDefinition = {
      Get: {
        path: "/test.Big/Get",
        requestStream: false,
        responseStream: false,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
        originalName: "Get",
      },
    };
    let server: grpc.Server;
    let client: grpc.Client;
    const SIZES = [0, 1, 4096, 8 * 1024 * 1024];
    let written = 0;

    beforeAll(async () => {
      server = new grpc.Server({ "grpc.max_send_message_length": -1 });
      server.addService(def, {
        Get: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const [size, mark, scribble] = [call.request.readUInt32BE(0), call.request[4] === 1, call.request[5] === 1];
          const body = withRoom(size, 64, size & 0xff);
          // scribble: once onWritten runs, the buffer is overwritten (what reusing a Range's slab does)
          cb(null, mark ? prefixed(body, scribble ? () => (written++, body.fill(0xee)) : undefined) : body);
        },
      });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        ),
      );
      const Ctor = grpc.makeGenericClientConstructor(def, "Big");
      client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": -1,
      });
    });

    afterAll(async () => {
      client?.close();
      await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
    });

    const get = (size: number, mark: boolean, scribble = false): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const req = Buffer.alloc(6);
        req.writeUInt32BE(size, 0);
        req[4] = mark ? 1 : 0;
        req[5] = scribble ? 1 : 0;
        (client as unknown as { Get(r: Buffer, cb: (e: Error | null, b: Buffer) => void): void }).Get(req, (e, b) =>
          e ? reject(e) : resolve(b),
        );
      });

    for (const size of SIZES) {
      it(`delivers ${size} bytes intact, marked and unmarked`, async () => {
        const want = withRoom(size, 0, size & 0xff);
        const [marked, plain] = await Promise.all([get(size, true), get(size, false)]);
        expect(marked.length).toBe(size);
        expect(marked.equals(want)).toBe(true);
        expect(plain.equals(want)).toBe(true);
      });
    }

    it("calls onWritten once the message is written: overwriting the buffer then does not change what arrives", async () => {
      const size = 8 * 1024 * 1024;
      const before = written;
      const got = await Promise.all([get(size, true, true), get(size, true, true)]);
      expect(written - before, "onWritten ran for both messages").toBe(2);
      for (const b of got) expect(b.equals(withRoom(size, 0, size & 0xff)), "intact, not 0xee").toBe(true);
    });
  });
});
