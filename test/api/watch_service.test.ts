// Proves the Watch service's etcd behaviours that etcdctl cannot show: a watch created with fragment=true gets a
// large response cut into pieces of whole events (fragment set on all but the last, nothing lost or reordered),
// one without gets it whole; a watch created with progress_notify gets empty responses at the current revision;
// one stream holds more than 10,000 watches (etcd sets no per-stream bound) and a put reaches each exactly once.
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveGrpc, type GrpcHandle } from "../../core/api/grpc_server.js";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { EtcdServer } from "../../core/server/etcd_server.js";

interface WatchResp {
  header: { revision: string };
  watch_id: string;
  created: boolean;
  canceled: boolean;
  fragment: boolean;
  events: { kv: { key: Buffer } }[];
}

let dir: string;
let server: EtcdServer;
let grpcServer: GrpcHandle;
let client: grpc.Client;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "watch-service-"));
  server = await EtcdServer.start({
    name: "w",
    dataDir: dir,
    memberId: 1n,
    clusterId: 2n,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
  });
  grpcServer = await serveGrpc(server, {
    address: "127.0.0.1:0",
    maxRequestBytes: 4096,
    watchProgressNotifyIntervalMs: 50,
  });
  const Watch = loadEtcdProto().services.Watch;
  client = new Watch(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
  for (let i = 0; i < 10; i++) await server.put({ key: enc(`f/${i}`), value: new Uint8Array(1000).fill(97) });
});

afterAll(async () => {
  client.close();
  await grpcServer.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a watch and collects responses until `done` says enough. */
function collect(create: Record<string, unknown>, done: (rs: WatchResp[]) => boolean): Promise<WatchResp[]> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { Watch(): grpc.ClientDuplexStream<unknown, WatchResp> }).Watch();
    const got: WatchResp[] = [];
    call.on("data", (r: WatchResp) => {
      got.push(r);
      if (done(got)) {
        call.cancel();
        resolve(got);
      }
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
    call.write({ create_request: create });
  });
}

const eventCount = (rs: WatchResp[]): number => rs.reduce((n, r) => n + r.events.length, 0);

describe("Watch service", () => {
  it("cuts a large response into fragments of whole events when asked", async () => {
    const rs = await collect(
      { key: Buffer.from("f/"), range_end: Buffer.from("f0"), start_revision: 1, fragment: true },
      (got) => eventCount(got) >= 10,
    );
    const pieces = rs.filter((r) => r.events.length > 0);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.map((p) => p.fragment)).toEqual([...pieces.slice(1).map(() => true), false]);
    const keys = pieces.flatMap((p) => p.events.map((e) => e.kv.key.toString()));
    expect(keys).toEqual(Array.from({ length: 10 }, (_, i) => `f/${i}`));
  });

  it("sends the same events in one response without fragment", async () => {
    const rs = await collect(
      { key: Buffer.from("f/"), range_end: Buffer.from("f0"), start_revision: 1 },
      (got) => eventCount(got) >= 10,
    );
    const pieces = rs.filter((r) => r.events.length > 0);
    expect(pieces.length).toBe(1);
    expect(pieces[0]?.fragment).toBe(false);
  });

  it("sends progress notifications at the current revision to a synced watch that asked", async () => {
    const rs = await collect({ key: Buffer.from("p"), progress_notify: true }, (got) =>
      got.some((r) => !r.created && r.events.length === 0),
    );
    const progress = rs.find((r) => !r.created && r.events.length === 0);
    expect(progress?.watch_id).toBe("0");
    expect(Number(progress?.header.revision)).toBe(server.kv.revision);
  });

  it("holds 12,000 watches on one stream, none refused, and a put reaches each exactly once", async () => {
    const n = 12_000;
    const call = (client as unknown as { Watch(): grpc.ClientDuplexStream<unknown, WatchResp> }).Watch();
    let created = 0;
    let refused = 0;
    const events = new Map<string, number>();
    let check: () => void = () => undefined;
    call.on("data", (r: WatchResp) => {
      if (r.created && r.canceled) refused += 1;
      else if (r.created) created += 1;
      if (r.events.length > 0) events.set(r.watch_id, (events.get(r.watch_id) ?? 0) + r.events.length);
      check();
    });
    let failure: grpc.ServiceError | undefined;
    call.on("error", (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) failure = err;
      check();
    });
    const until = (done: () => boolean): Promise<void> =>
      new Promise((resolve, reject) => {
        check = () => (failure !== undefined ? reject(failure) : done() && resolve());
        check();
      });
    for (let i = 0; i < n; i++) {
      if (!call.write({ create_request: { key: Buffer.from("many") } }))
        await new Promise((resolve) => call.once("drain", resolve));
    }
    await until(() => created + refused >= n);
    expect([created, refused, server.watchable.watcherCount]).toEqual([n, 0, n]);
    await server.put({ key: enc("many"), value: enc("fired") });
    await until(() => events.size >= n);
    expect([...events.values()].every((count) => count === 1)).toBe(true);
    call.cancel();
  }, 60_000);
});
