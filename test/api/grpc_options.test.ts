// Proves the client port applies etcd's gRPC connection flags: --max-concurrent-streams is the HTTP/2 setting a
// client sees, and with --grpc-keepalive-interval/--grpc-keepalive-timeout the server pings an idle connection and
// sends GOAWAY on it when the pings go unanswered (a frozen client), while a live client stays connected.
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type ClientHttp2Session } from "node:http2";
import { connect as netConnect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveGrpc, type GrpcHandle } from "../../core/api/grpc_server.js";
import { EtcdServer } from "../../core/server/etcd_server.js";

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-grpc-opts-"));
let server: EtcdServer;
let handle: GrpcHandle;

beforeAll(async () => {
  server = await EtcdServer.start({ name: "n1", dataDir: dir, memberId: 1n, clusterId: 2n });
  await server.whenLeader();
  handle = await serveGrpc(server, {
    address: "127.0.0.1:0",
    maxConcurrentStreams: 7,
    keepaliveIntervalMs: 100,
    keepaliveTimeoutMs: 100,
  });
});
afterAll(async () => {
  await handle.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

function open(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(`http://127.0.0.1:${handle.port}`);
    s.once("remoteSettings", () => resolve(s));
    s.once("error", reject);
  });
}

describe("gRPC connection flags", () => {
  it("advertises --max-concurrent-streams", async () => {
    const s = await open();
    expect(s.remoteSettings.maxConcurrentStreams).toBe(7);
    s.close();
  });

  it("sends GOAWAY to a client that stops answering keepalive pings, and keeps a live one", async () => {
    const live = await open();
    // A frozen client: a TCP relay in front of the server stops passing the client's bytes (so the server's pings
    // are never acknowledged) but still passes the server's, so the client sees what the server decides.
    const upstreamClosed = new Promise<void>((resolve) => {
      const relay = createServer((down) => {
        const up = netConnect(handle.port, "127.0.0.1");
        down.pipe(up);
        up.pipe(down);
        down.once("data", () => setTimeout(() => down.unpipe(up), 50));
        down.once("close", () => {
          up.destroy();
          relay.close();
        });
      });
      relay.listen(0, "127.0.0.1", () => {
        const port = (relay.address() as { port: number }).port;
        const frozen = connect(`http://127.0.0.1:${port}`);
        frozen.on("error", () => undefined);
        // grpc-js ends a keepalive failure with GOAWAY (a graceful close; the Go server also drops the socket).
        frozen.once("goaway", () => {
          frozen.destroy();
          resolve();
        });
      });
    });
    await upstreamClosed;
    expect(live.closed || live.destroyed, "the live connection answered every ping").toBe(false);
    live.close();
  }, 15_000);
});
