// Proves a kill -9 of a member whose acknowledged puts are still in the backend's write buffer loses none of
// them: with a long --backend-batch-interval, the killed member's backend file holds none of the puts (they were
// only buffered, so the WAL alone has them), yet after a restart every put is there with its value, and the
// member's HashKV equals that of a member that applied the same puts and was never killed.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import { ServerProcess, makeDataDir, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort } from "../compat/processes.js";

const PUTS = 200;
const READY_LINE = "ready to serve client requests";
const procs: ServerProcess[] = [];

afterAll(async () => {
  for (const p of procs) await p.dispose();
});

interface Member {
  readonly proc: ServerProcess;
  readonly port: number;
  readyLines: number;
}

async function newMember(prefix: string): Promise<Member> {
  const port = await freePort();
  const m: Member = { proc: undefined as unknown as ServerProcess, port, readyLines: 0 };
  const proc = new ServerProcess({
    label: "etcd-ts",
    dataDir: makeDataDir(prefix),
    ports: [port],
    onLine: (line) => void (line.includes(READY_LINE) && m.readyLines++),
  });
  procs.push(proc);
  return Object.assign(m, { proc });
}

function dataDirOf(m: Member): string {
  return join(m.proc.dataDir ?? "", "data");
}

async function start(m: Member): Promise<EtcdClient> {
  const url = `http://127.0.0.1:${m.port}`;
  const before = m.readyLines;
  m.proc.spawn(process.execPath, [
    join(REPO, "dist/core/cli/main.js"),
    ...["--data-dir", dataDirOf(m), "--listen-client-urls", url, "--advertise-client-urls", url],
    ...["--heartbeat-interval", "10", "--election-timeout", "100"],
    // Nothing commits the buffer during the test unless something reads the backend directly.
    ...["--backend-batch-interval", "10m"],
  ]);
  await waitUntil(
    m.proc,
    "ready",
    { deadline: Date.now() + 60_000, intervalMs: 20 },
    async () => m.readyLines > before,
  );
  return new EtcdClient({ endpoints: [`127.0.0.1:${m.port}`], callTimeoutMs: 10_000 });
}

async function putAll(client: EtcdClient): Promise<void> {
  for (let i = 0; i < PUTS; i++) await client.put(`buffered/${String(i).padStart(4, "0")}`, `value-${i}`);
}

/** How many of the puts the backend file itself holds (the member is dead: the file is read directly). */
async function putsOnDisk(m: Member): Promise<number> {
  const kv = KvStore.open(join(dataDirOf(m), "member"), { readWorkers: 0 });
  try {
    const res = await kv.range({ key: Buffer.from("buffered/"), rangeEnd: Buffer.from("buffered0"), countOnly: true });
    return res.count;
  } finally {
    await kv.close();
  }
}

describe("kill -9 with acknowledged puts only in the write buffer", () => {
  it("restarts with every put (replayed from the WAL) and the HashKV of a member never killed", async () => {
    const killed = await newMember("etcd-ts-buffered-crash-");
    let client = await start(killed);
    await putAll(client);
    client.close();
    await killed.proc.kill("SIGKILL");
    expect(await putsOnDisk(killed), "the backend file held none of the acknowledged puts").toBe(0);

    client = await start(killed);
    const res = await client.get("buffered/", { prefix: true });
    expect(res.kvs).toHaveLength(PUTS);
    for (const [i, kv] of res.kvs.entries()) expect(kv.value.toString()).toBe(`value-${i}`);
    const killedHash = await client.maintenance.hashKV();

    const steady = await newMember("etcd-ts-buffered-steady-");
    const other = await start(steady);
    await putAll(other);
    const steadyHash = await other.maintenance.hashKV();
    expect(killedHash.header.revision).toBe(steadyHash.header.revision);
    expect(killedHash.hash).toBe(steadyHash.hash);
    client.close();
    other.close();
    await killed.proc.stop();
    await steady.proc.stop();
  }, 120_000);
});
