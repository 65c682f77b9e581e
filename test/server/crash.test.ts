// Proves a kill -9 of an etcd-ts process at a random moment of a write load loses no acknowledged write: after
// each restart every put the client saw succeed is there with its value. Kill moments come from a seeded RNG
// (SEED=n to replay); the assertion does not depend on when the kill lands. SOAK=1 runs more rounds.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
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

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function startMember(dataDir: string, port: number): Promise<ChildProcess> {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      join(REPO, "dist/core/cli/main.js"),
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--heartbeat-interval",
      "10",
      "--election-timeout",
      "100",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  children.push(child);
  let log = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.includes("ready to serve client requests")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`etcd-ts exited ${code} before ready:\n${log}`)));
  });
  return child;
}

async function killNine(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

describe("kill -9 during writes", () => {
  it(`loses no acknowledged put over ${ROUNDS} kills (seed=${SEED})`, async () => {
    const random = rng(SEED);
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-crash-"));
    dirs.push(dir);
    const port = await freePort();
    const acked = new Map<string, string>();
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const child = await startMember(join(dir, "data"), port);
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
      await killNine(child);
      stop = true;
      await Promise.all(writers);
      client.close();
    }
    const child = await startMember(join(dir, "data"), port);
    const client = new EtcdClient({ endpoints: [`127.0.0.1:${port}`] });
    await expectAllPresent(client, acked, `seed=${SEED} final`);
    expect(acked.size).toBeGreaterThanOrEqual(ROUNDS * MIN_ACKS_PER_ROUND);
    client.close();
    child.kill("SIGTERM");
  });
});

async function expectAllPresent(client: EtcdClient, acked: ReadonlyMap<string, string>, where: string): Promise<void> {
  const res = await client.get("crash/", { prefix: true });
  const stored = new Map(res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
  const missing = [...acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k);
  expect(missing, `${where}: acknowledged puts missing after restart`).toEqual([]);
}
