// Proves core/api/http2/authority_fix.ts with grpc-js behind it, in process: a grpc-js client's connection is handed
// over raw; an HTTP/2 client sending :authority "http://127.0.0.1:PORT" is reset with PROTOCOL_ERROR by grpc-js alone
// (the bug) but answered through the fix, over a pipe, with the handler seeing the fixed authority and the client's
// real address, a 1 MiB request intact; over TLS the handler also reads the client certificate's CN (etcd's user under --client-cert-auth)
// through the pipe; an idle client's PING is answered while sniffing; a client that sends no header block before the
// sniff timeout is piped and still served.
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import {
  createServer as createNetServer,
  connect as netConnect,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FilePki } from "../../harness/pki.js";
import { serveHttp2, type AuthorityFixOptions, type Handover } from "../../core/api/http2/authority_fix.js";
import { CLIENT_PREFACE, EMPTY_SETTINGS } from "../../core/api/http2/frames.js";
import { commonNameOfCall } from "../../core/api/tls_verify.js";

const id = (b: Buffer): Buffer => b;
const ECHO: grpc.ServiceDefinition = {
  Echo: {
    path: "/test.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
    originalName: "Echo",
  },
};

interface Seen {
  peer: string;
  authority: string;
  cn: string | undefined;
  body: string;
}

let grpcServer: grpc.Server;
let injector: ReturnType<grpc.Server["createConnectionInjector"]>;
const listeners: NetServer[] = [];
const sessions: ClientHttp2Session[] = [];
let pki: FilePki;

beforeAll(() => {
  grpcServer = new grpc.Server();
  grpcServer.addService(ECHO, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const seen: Seen = {
        peer: call.getPeer(),
        authority: String(call.metadata.get(":authority")[0] ?? call.getHost()),
        cn: commonNameOfCall(call),
        body: call.request.toString(),
      };
      cb(null, Buffer.from(JSON.stringify(seen)));
    },
  });
  injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  pki = new FilePki();
  pki.ca("ca");
  pki.leaf("server", "ca", "server", "IP:127.0.0.1");
  pki.leaf("client", "ca", "alice", "IP:127.0.0.1");
});

afterEach(() => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const l of listeners.splice(0)) l.close();
});

afterAll(() => {
  injector.destroy();
  grpcServer.forceShutdown();
  pki.cleanup();
});

const file = (n: string): Buffer => pki.read(n);

/** A listener on 127.0.0.1:0 that hands each connection to serveHttp2 (or straight to grpc-js with fix=false). */
async function listen(opts: {
  fix: boolean;
  tls?: boolean;
  sniffTimeoutMs?: number;
}): Promise<{ port: number; handovers: Handover[]; next: () => Promise<Handover> }> {
  const handovers: Handover[] = [];
  let waiters: ((h: Handover) => void)[] = [];
  const fixOpts: AuthorityFixOptions = {
    onHandover: (h) => {
      handovers.push(h);
      for (const w of waiters) w(h);
      waiters = [];
    },
    ...(opts.sniffTimeoutMs !== undefined ? { sniffTimeoutMs: opts.sniffTimeoutMs } : {}),
  };
  const onSocket = (s: Socket): void => {
    s.on("error", () => s.destroy());
    if (opts.fix) serveHttp2(s, injector, fixOpts);
    else injector.injectConnection(s);
  };
  const server =
    opts.tls === true
      ? createTlsServer(
          {
            key: file("server.key"),
            cert: file("server.crt"),
            ca: file("ca.crt"),
            requestCert: true,
            rejectUnauthorized: true,
            ALPNProtocols: ["h2"],
          },
          (s: TLSSocket) => onSocket(s),
        )
      : createNetServer(onSocket);
  listeners.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : 0;
  return { port, handovers, next: () => new Promise((r) => waiters.push(r)) };
}

/** One gRPC unary call over node:http2 with the given :authority; resolves with the reply or the stream's error. */
function rawCall(session: ClientHttp2Session, authority: string, body: string): Promise<Seen | Error> {
  return new Promise((resolve) => {
    const msg = Buffer.from(body);
    const frameHeader = Buffer.alloc(5);
    frameHeader.writeUInt32BE(msg.length, 1);
    const req = session.request({
      ":method": "POST",
      ":path": "/test.Echo/Echo",
      ":authority": authority,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", (e: Error) => resolve(e));
    req.on("end", () => {
      const all = Buffer.concat(chunks);
      resolve(
        all.length > 5
          ? (JSON.parse(all.subarray(5).toString()) as Seen)
          : new Error(`empty reply, rst ${req.rstCode}`),
      );
    });
    req.end(Buffer.concat([frameHeader, msg]));
  });
}

function grpcClientCall(port: number): Promise<Seen> {
  const Client = grpc.makeGenericClientConstructor(ECHO, "Echo");
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (client as unknown as { Echo: (b: Buffer, cb: (e: Error | null, r?: Buffer) => void) => void }).Echo(
      Buffer.from("hi"),
      (e, r) => {
        client.close();
        if (e !== null || r === undefined) reject(e ?? new Error("no reply"));
        else resolve(JSON.parse(r.toString()) as Seen);
      },
    );
  });
}

describe("serveHttp2", () => {
  it("hands a grpc-js client's connection over raw", async () => {
    const srv = await listen({ fix: true });
    const seen = await grpcClientCall(srv.port);
    expect(seen.body).toBe("hi");
    expect(seen.authority).toBe(`127.0.0.1:${srv.port}`);
    expect(srv.handovers).toEqual(["raw"]);
  });

  it("without the fix, a scheme in :authority is reset with PROTOCOL_ERROR", async () => {
    const srv = await listen({ fix: false });
    const session = h2connect(`http://127.0.0.1:${srv.port}`);
    sessions.push(session);
    const out = await rawCall(session, `http://127.0.0.1:${srv.port}`, "x");
    expect(out).toBeInstanceOf(Error);
    expect(String(out)).toMatch(/PROTOCOL_ERROR|code 1/);
  });

  it("with the fix, a scheme in :authority is served through the pipe, with the client's address", async () => {
    const srv = await listen({ fix: true });
    const session = h2connect(`http://127.0.0.1:${srv.port}`);
    sessions.push(session);
    const local = await new Promise<number>((r) => session.once("connect", (_s, sock) => r(sock.localPort ?? 0)));
    const replies = await Promise.all(
      [1, 2, 3].map((i) => rawCall(session, `http://127.0.0.1:${srv.port}`, `call ${i}`)),
    );
    for (const [i, r] of replies.entries()) {
      expect(r, `call ${i + 1}`).not.toBeInstanceOf(Error);
      expect((r as Seen).body).toBe(`call ${i + 1}`);
      expect((r as Seen).authority).toBe(`127.0.0.1:${srv.port}`);
      expect((r as Seen).peer).toBe(`127.0.0.1:${local}`);
    }
    expect(srv.handovers).toEqual(["pipe"]);
    const big = "b".repeat(1 << 20);
    const r = await rawCall(session, `http://127.0.0.1:${srv.port}`, big);
    expect((r as Seen).body === big, "a 1 MiB request crosses the pipe intact (many DATA frames, flow control)").toBe(
      true,
    );
  });

  it("over TLS the handler reads the client certificate's CN through the pipe", async () => {
    const srv = await listen({ fix: true, tls: true });
    const session = h2connect(`https://127.0.0.1:${srv.port}`, {
      ca: file("ca.crt"),
      cert: file("client.crt"),
      key: file("client.key"),
    });
    sessions.push(session);
    const piped = await rawCall(session, `https://127.0.0.1:${srv.port}`, "tls");
    expect(piped).not.toBeInstanceOf(Error);
    expect((piped as Seen).cn).toBe("alice");
    expect((piped as Seen).authority).toBe(`127.0.0.1:${srv.port}`);
    const raw = h2connect(`https://127.0.0.1:${srv.port}`, {
      ca: file("ca.crt"),
      cert: file("client.crt"),
      key: file("client.key"),
    });
    sessions.push(raw);
    const direct = await rawCall(raw, `127.0.0.1:${srv.port}`, "tls raw");
    expect((direct as Seen).cn, "raw handover sees the CN as before").toBe("alice");
    expect(srv.handovers).toEqual(["pipe", "raw"]);
  });

  it("answers an idle client's PING while sniffing, then hands over raw when its request comes", async () => {
    const srv = await listen({ fix: true });
    const session = h2connect(`http://127.0.0.1:${srv.port}`);
    sessions.push(session);
    await new Promise((r) => session.once("connect", r));
    const acked = await new Promise<boolean>((r) => session.ping(Buffer.from("12345678"), (err) => r(err === null)));
    expect(acked, "PING acknowledged before any request").toBe(true);
    expect(srv.handovers, "still sniffing").toEqual([]);
    const out = await rawCall(session, `127.0.0.1:${srv.port}`, "after ping");
    expect((out as Seen).body).toBe("after ping");
    expect(srv.handovers).toEqual(["raw"]);
  });

  it("pipes a client that sends no header block before the sniff timeout, and serves it", async () => {
    const srv = await listen({ fix: true, sniffTimeoutMs: 50 });
    const sock = netConnect(srv.port, "127.0.0.1");
    sock.write(Buffer.concat([CLIENT_PREFACE, EMPTY_SETTINGS]));
    expect(await srv.next()).toBe("pipe");
    sock.destroy();
    const session = h2connect(`http://127.0.0.1:${srv.port}`);
    sessions.push(session);
    const out = await rawCall(session, `127.0.0.1:${srv.port}`, "late");
    expect((out as Seen).body).toBe("late");
  });
});
