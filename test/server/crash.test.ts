// Proves a kill -9 of an etcd-ts process at a random moment of a write load loses no acknowledged write: after
// each restart every put the client saw succeed is there with its value. Kill moments come from a seeded RNG
// (SEED=n to replay); the assertion does not depend on when the kill lands. SOAK=1 runs more rounds.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { ServerProcess, makeDataDir, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort } from "../compat/processes.js";

const SEED = Number(process.env["SEED"] ?? 20261125);
const ROUNDS = process.env["SOAK"] === "1" ? 50 : 6;
const WRITERS = 16;
/** Each round kills only after this many acknowledged puts, so no round is vacuous on a slow machine. */
const MIN_ACKS_PER_ROUND = 10;

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const READY_LINE = "ready to serve client requests";
let member: ServerProcess | undefined;
/** How many times the member has logged that it is ready, over all its runs. */
let readyLines = 0;
afterAll(async () => {
  await member?.dispose();
});

/** (Re)starts the member on its data dir and resolves once it logs that it serves clients. */
async function startMember(proc: ServerProcess, port: number): Promise<void> {
  const url = `http://127.0.0.1:${port}`;
  const before = readyLines;
  proc.spawn(process.execPath, [
    join(REPO, "dist/core/cli/main.js"),
    "--data-dir",
    join(proc.dataDir ?? "", "data"),
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
    "--heartbeat-interval",
    "10",
    "--election-timeout",
    "100",
  ]);
  await waitUntil(proc, "ready", { deadline: Date.now() + 60_000, intervalMs: 20 }, async () => readyLines > before);
}

describe("kill -9 during writes", () => {
  it(`loses no acknowledged put over ${ROUNDS} kills (seed=${SEED})`, async () => {
    const random = rng(SEED);
    const port = await freePort();
    const proc = new ServerProcess({
      label: "etcd-ts",
      dataDir: makeDataDir("etcd-ts-crash-"),
      ports: [port],
      onLine: (line) => void (line.includes(READY_LINE) && readyLines++),
    });
    member = proc;
    const acked = new Map<string, string>();
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await startMember(proc, port);
      const client = new EtcdClient({ endpoints: [`127.0.0.1:${port}`], callTimeoutMs: 5000 });
      await expectAllPresent(client, acked, `seed=${SEED} round=${round}`);
      let stop = false;
      let roundAcks = 0;
      let onTenth = (): void => undefined;
      const tenAcked = new Promise<void>((r) => (onTenth = r));
      const writer = async (): Promise<void> => {
        while (!stop) {
          const key = `crash/${String(seq++).padStart(8, "0")}`;
          const value = `v${round}-${key}`;
          try {
            await client.put(key, value);
            acked.set(key, value);
            if (++roundAcks === MIN_ACKS_PER_ROUND) onTenth();
          } catch {
            return; // the server died under us: this put's outcome is unknown, and it is not counted
          }
        }
      };
      const writers = Array.from({ length: WRITERS }, writer);
      // Kill at a random moment after the round has done some work, however slow the machine is.
      await Promise.race([tenAcked, Promise.all(writers)]);
      await new Promise((r) => setTimeout(r, Math.floor(random() * 250)));
      await proc.kill("SIGKILL");
      stop = true;
      await Promise.all(writers);
      client.close();
    }
    await startMember(proc, port);
    const client = new EtcdClient({ endpoints: [`127.0.0.1:${port}`] });
    await expectAllPresent(client, acked, `seed=${SEED} final`);
    expect(acked.size).toBeGreaterThanOrEqual(ROUNDS * MIN_ACKS_PER_ROUND);
    client.close();
    await proc.stop();
  });
});

async function expectAllPresent(client: EtcdClient, acked: ReadonlyMap<string, string>, where: string): Promise<void> {
  const res = await client.get("crash/", { prefix: true });
  const stored = new Map(res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
  const missing = [...acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k);
  expect(missing, `${where}: acknowledged puts missing after restart`).toEqual([]);
}
