// Proves a member stops as real etcd 3.4 does while a client holds its --max-concurrent-streams worth of watch
// streams (and queues one more): after SIGTERM both its client and peer ports are free within a second (etcd's
// within about a tenth), SIGKILL follows if it is still running, and a member started next on the same ports
// serves. Run for real etcd and etcd-ts alike.
import { createServer } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { waitFor } from "../support/wait_for.js";
import { ServerProcess, makeDataDir, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, etcdctl, freePort, haveEtcd } from "./processes.js";

const HAVE = haveEtcd();
const STREAMS = 4;

const procs: ServerProcess[] = [];

/** Starts `kind` on these ports (kept by the caller: the next member reuses them) in a fresh data dir. */
function startMember(kind: "etcd" | "etcd-ts", client: number, peer: number): ServerProcess {
  const dir = makeDataDir(`etcd-ts-stop-${kind}-`);
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
  const proc = new ServerProcess({ label: `${kind} on ${client}`, dataDir: dir });
  procs.push(proc);
  if (kind === "etcd") proc.spawn("etcd", args);
  else proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args]);
  return proc;
}

async function serving(proc: ServerProcess, client: number): Promise<void> {
  const opts = { deadline: Date.now() + 20_000, intervalMs: 100 };
  await waitUntil(
    proc,
    `serving on ${client}`,
    opts,
    async () => etcdctl(`127.0.0.1:${client}`, ["endpoint", "health"]).status === 0,
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
  await serving(first, client);
  const conn = await holdStreams(client, STREAMS);
  const t0 = Date.now();
  const exited = first.exited();
  first.signal("SIGTERM");
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
  first.signal("SIGKILL");
  await exited;
  const second = startMember(kind, client, peer);
  const next = await serving(second, client).then(
    () => true,
    () => false,
  );
  conn.close();
  return { freeMs, next };
}

describe.runIf(HAVE)("stopping a member that holds its maximum of streams", () => {
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.dispose()));
  });

  it("frees the ports at once after SIGTERM, and a member started next on them serves (etcd and etcd-ts)", async () => {
    for (const kind of ["etcd", "etcd-ts"] as const) {
      const r = await stopHeld(kind);
      expect({ kind, next: r.next }).toEqual({ kind, next: true });
      expect(r.freeMs, `${kind}: ports free ${r.freeMs} ms after SIGTERM`).toBeLessThan(1000);
    }
  }, 90_000);
});
