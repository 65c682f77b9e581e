// Proves a member stops as real etcd 3.4 does while a client holds its --max-concurrent-streams worth of watch
// streams (and queues one more): after SIGTERM both its client and peer ports are free within a second (etcd's
// within about a tenth), SIGKILL follows if it is still running, and a member started next on the same ports
// serves. Run for real etcd and etcd-ts alike.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { waitFor } from "../support/wait_for.js";
import { REPO, etcdctl, freePort, haveEtcd } from "./processes.js";

const HAVE = haveEtcd();
const STREAMS = 4;

const dirs: string[] = [];
const children: ChildProcess[] = [];

function startMember(kind: "etcd" | "etcd-ts", client: number, peer: number): ChildProcess {
  const dir = mkdtempSync(join(tmpdir(), `etcd-ts-stop-${kind}-`));
  dirs.push(dir);
  const args = [
    "--name",
    "s",
    "--data-dir",
    dir,
    "--listen-client-urls",
    `http://127.0.0.1:${client}`,
    "--advertise-client-urls",
    `http://127.0.0.1:${client}`,
    "--listen-peer-urls",
    `http://127.0.0.1:${peer}`,
    "--initial-advertise-peer-urls",
    `http://127.0.0.1:${peer}`,
    "--initial-cluster",
    `s=http://127.0.0.1:${peer}`,
    "--max-concurrent-streams",
    String(STREAMS),
  ];
  const child =
    kind === "etcd"
      ? spawn("etcd", args, { stdio: "ignore" })
      : spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args], { stdio: "ignore" });
  children.push(child);
  return child;
}

async function serving(client: number): Promise<void> {
  let ok = false;
  await waitFor(
    () => {
      ok ||= etcdctl(`127.0.0.1:${client}`, ["endpoint", "health"]).status === 0;
      return ok;
    },
    `a member serving on ${client}`,
    20_000,
  );
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** Opens `n` watch streams on one connection and waits until each watch is created; one more is left queued. */
async function holdStreams(client: number, n: number): Promise<grpc.Client> {
  const Watch = loadEtcdProto().services.Watch;
  const conn = new Watch(`127.0.0.1:${client}`, grpc.credentials.createInsecure());
  let created = 0;
  for (let i = 0; i <= n; i++) {
    const s = (conn["Watch"] as () => grpc.ClientDuplexStream<object, { created?: boolean }>).call(conn);
    s.on("error", () => undefined);
    s.on("data", (r: { created?: boolean }) => void (r.created === true && created++));
    s.write({ create_request: { key: Buffer.from(`held/${i}`) } });
  }
  await waitFor(() => created >= n, `${n} watch streams created`);
  return conn;
}

async function stopHeld(kind: "etcd" | "etcd-ts"): Promise<{ freeMs: number; next: boolean }> {
  const [client, peer] = [await freePort(), await freePort()];
  const first = startMember(kind, client, peer);
  await serving(client);
  const conn = await holdStreams(client, STREAMS);
  const t0 = Date.now();
  const exited = new Promise<void>((r) => first.once("exit", () => r()));
  first.kill("SIGTERM");
  let free = false;
  await waitFor(
    () => {
      void Promise.all([canBind(client), canBind(peer)]).then(([a, b]) => (free = a && b));
      return free;
    },
    `${kind}'s ports free after SIGTERM`,
    5_000,
  ).catch(() => undefined);
  const freeMs = Date.now() - t0;
  if (first.exitCode === null && first.signalCode === null) first.kill("SIGKILL");
  await exited;
  startMember(kind, client, peer);
  const next = await serving(client).then(
    () => true,
    () => false,
  );
  conn.close();
  return { freeMs, next };
}

describe.runIf(HAVE)("stopping a member that holds its maximum of streams", () => {
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("frees the ports at once after SIGTERM, and a member started next on them serves (etcd and etcd-ts)", async () => {
    for (const kind of ["etcd", "etcd-ts"] as const) {
      const r = await stopHeld(kind);
      expect({ kind, next: r.next }).toEqual({ kind, next: true });
      expect(r.freeMs, `${kind}: ports free ${r.freeMs} ms after SIGTERM`).toBeLessThan(1000);
    }
  }, 90_000);
});
