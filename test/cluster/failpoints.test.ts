// Proves a member killed (as by kill -9) at each storage failpoint — before/after a WAL save, before/after a
// snapshot save, after WAL segments are released, before/after a backend commit, in the middle of a snapshot
// install, before a defrag's rename — on the leader and on a follower of a 3-member cluster, restarts, rejoins,
// has the same HashKV as the others at the same revision, and keeps every acknowledged write. (A snapshot is only
// installed by a follower, so that failpoint runs on a follower only.) An injected I/O error (EIO, ENOSPC) instead
// of a kill makes the member stop itself with status 1 and a clear line, and it too comes back whole. Hit counts
// come from a seeded RNG
// (SEED=n to replay). CI runs each case once; SOAK=1 runs FAILPOINT_ROUNDS (default 20) rounds of every case.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { LocalCluster, status } from "./local_cluster.js";
import { armFailpoint, checkConverged, exited, writeUntil } from "./durability_checks.js";

const SOAK = process.env["SOAK"] === "1";
const ROUNDS = SOAK ? Number(process.env["FAILPOINT_ROUNDS"] ?? 20) : 1;
const SEED = Number(process.env["SEED"] ?? 1207);

type Role = "leader" | "follower";
/** Failpoint → the highest hit count drawn (a kill at a random hit up to it), and the roles it runs on. */
const CASES: readonly { point: string; maxHit: number; roles: readonly Role[] }[] = [
  { point: "wal-before-save", maxHit: 30, roles: ["leader", "follower"] },
  { point: "wal-after-save", maxHit: 30, roles: ["leader", "follower"] },
  { point: "snap-before-save", maxHit: 2, roles: ["leader", "follower"] },
  { point: "snap-after-save", maxHit: 2, roles: ["leader", "follower"] },
  { point: "wal-after-release", maxHit: 2, roles: ["leader", "follower"] },
  { point: "backend-before-commit", maxHit: 30, roles: ["leader", "follower"] },
  { point: "backend-after-commit", maxHit: 30, roles: ["leader", "follower"] },
  { point: "snap-install-mid", maxHit: 1, roles: ["follower"] },
  { point: "defrag-before-rename", maxHit: 1, roles: ["leader", "follower"] },
];

let seed = SEED >>> 0 || 1;
function rand(n: number): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % n;
}

const cluster = new LocalCluster("etcd-ts", {
  flags: ["--heartbeat-interval", "25", "--election-timeout", "250"],
  etcdTsFlags: [
    "--experimental-failpoints",
    "--snapshot-count",
    "40",
    "--experimental-snapshot-catchup-entries",
    "10",
    "--experimental-wal-segment-bytes",
    "16384",
  ],
});

beforeAll(async () => {
  await cluster.start(3);
}, 60_000);
afterAll(async () => {
  await cluster.stop();
});

function leaderIndex(): number {
  for (let i = 0; i < cluster.members.length; i++) {
    const st = status(cluster.endpoint(i));
    if (st.leader === st.memberId) return i;
  }
  throw new Error("no leader");
}

async function runCase(point: string, maxHit: number, role: Role, round: number): Promise<number> {
  const lead = leaderIndex();
  const victim = role === "leader" ? lead : (lead + 1 + rand(2)) % 3;
  const others = [0, 1, 2].filter((i) => i !== victim).map((i) => cluster.endpoint(i));
  const prefix = `fp/${point}/${role}/${round}/`;
  const m = cluster.member(victim);
  const dead = exited(cluster, victim);
  const isDead = (): boolean => !m.running;
  let acked: Map<string, string>;
  if (point === "snap-install-mid") {
    // The follower misses enough entries that the leader's log no longer has them: it must get a snapshot.
    await cluster.kill(victim);
    acked = (await writeN(others, prefix, 120)).acked;
    cluster.restart(victim, { ETCD_TS_FAILPOINTS: "snap-install-mid=kill" });
    await exitedWithin(victim, 30_000);
  } else if (point === "defrag-before-rename") {
    acked = (await writeN(others, prefix, 20)).acked;
    await armFailpoint(m.clientPort, `${point}=kill`);
    const c = new EtcdClient({ endpoints: [cluster.endpoint(victim)], callTimeoutMs: 10_000 });
    await c.maintenance.defragment().catch(() => undefined);
    c.close();
    await exitedWithin(victim, 10_000);
  } else {
    await armFailpoint(m.clientPort, `${point}=kill@${1 + rand(maxHit)}`);
    const r = await writeUntil(others, prefix, isDead, { maxMs: 40_000 });
    if (r.timedOut) throw new Error(`${point} never fired on ${role} ${m.name}: ${m.log.slice(-1000)}`);
    acked = r.acked;
  }
  await dead;
  expect(m.signal, `${m.name} should have been killed at ${point}: ${m.log.slice(-1500)}`).toBe("SIGKILL");
  cluster.restart(victim);
  await cluster.waitServing(victim, 40_000);
  await checkConverged(cluster, acked);
  return acked.size;
}

async function writeN(
  endpoints: readonly string[],
  prefix: string,
  n: number,
): Promise<{ acked: Map<string, string> }> {
  const r = await writeUntil(endpoints, prefix, (acks) => acks >= n, { workers: 1, maxMs: 30_000 });
  if (r.timedOut) throw new Error(`only ${r.acked.size} of ${n} writes acknowledged in time`);
  return r;
}

async function exitedWithin(i: number, ms: number): Promise<void> {
  const m = cluster.member(i);
  const deadline = Date.now() + ms;
  while (m.running) {
    if (Date.now() > deadline) throw new Error(`${m.name} did not reach its failpoint: ${m.log.slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function errorCase(point: string, action: "error" | "enospc", role: Role, line: RegExp): Promise<void> {
  const lead = leaderIndex();
  const victim = role === "leader" ? lead : (lead + 1) % 3;
  const others = [0, 1, 2].filter((i) => i !== victim).map((i) => cluster.endpoint(i));
  const m = cluster.member(victim);
  const dead = exited(cluster, victim);
  await armFailpoint(m.clientPort, `${point}=${action}@${1 + rand(10)}`);
  const r = await writeUntil(others, `fperr/${point}/${role}/`, () => !m.running, { maxMs: 40_000 });
  if (r.timedOut) throw new Error(`${point} never fired on ${role} ${m.name}`);
  await dead;
  expect(m.exitCode).toBe(1);
  expect(m.log).toMatch(line);
  cluster.restart(victim);
  await cluster.waitServing(victim, 40_000);
  await checkConverged(cluster, r.acked);
}

describe.sequential("an injected storage error stops the member (fail-stop), which restarts whole", () => {
  it("EIO at wal-before-save on a follower", async () => {
    await errorCase(
      "wal-before-save",
      "error",
      "follower",
      /E \| etcdserver: fatal: stopping the member: storage i\/o error \(EIO/,
    );
  }, 120_000);
  it("ENOSPC in the middle of a snapshot install on a follower", async () => {
    const victim = (leaderIndex() + 1) % 3;
    const m = cluster.member(victim);
    const others = [0, 1, 2].filter((i) => i !== victim).map((i) => cluster.endpoint(i));
    await cluster.kill(victim);
    const { acked } = await writeN(others, "fperr/snap-install-mid/", 120);
    cluster.restart(victim, { ETCD_TS_FAILPOINTS: "snap-install-mid=enospc" });
    await exitedWithin(victim, 30_000);
    expect(m.exitCode).toBe(1);
    expect(m.log).toMatch(/E \| etcdserver: fatal: stopping the member: no space left on device/);
    cluster.restart(victim);
    await cluster.waitServing(victim, 40_000);
    await checkConverged(cluster, acked);
  }, 120_000);
  it("ENOSPC at backend-after-commit on the leader", async () => {
    await errorCase(
      "backend-after-commit",
      "enospc",
      "leader",
      /E \| etcdserver: fatal: stopping the member: no space left on device/,
    );
  }, 120_000);
});

describe.sequential(`kill -9 at each storage failpoint, 3 members (${ROUNDS} round(s), seed=${SEED})`, () => {
  for (const { point, maxHit, roles } of CASES) {
    for (const role of roles) {
      it(
        `${point} on the ${role}`,
        async () => {
          let acks = 0;
          for (let round = 0; round < ROUNDS; round++) acks += await runCase(point, maxHit, role, round);
          console.log(`failpoint ${point} on the ${role}: ${ROUNDS} kill(s), ${acks} acknowledged writes checked`);
          expect(acks).toBeGreaterThan(0);
        },
        120_000 * ROUNDS,
      );
    }
  }
});
