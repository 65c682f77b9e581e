// Proves the membership library against real etcd 3.4 on loopback: (1) for bad --initial-cluster /
// --initial-advertise-peer-urls values, the text etcd logs after "etcdmain: " before exiting equals our
// InitialClusterError message; (2) the member ids and cluster id etcd logs for a 3-name --initial-cluster (one
// name with two URLs; only that member started) equal fromInitialCluster's; (3) the same sequence of etcdctl member
// add/promote/remove/update calls against a 1-member etcd and against our Cluster (mirroring each success) fails
// with the same messages, and the id etcd gives a runtime-added member is ours for the second it was added in.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerProcess, freePort, waitUntil } from "../../harness/targets/launcher.js";
import { ERRORS, EtcdError } from "../../core/errors.js";
import { Cluster, newMemberForAdd, type ReconfigOptions } from "../../core/membership/cluster.js";
import { computeMemberId, idToHex } from "../../core/membership/ids.js";
import { InitialClusterError } from "../../core/membership/initial_cluster.js";
import { isLearnerInSync } from "../../core/membership/learner.js";
import { MemoryView } from "./helpers.js";

const haveEtcd =
  spawnSync("etcd", ["--version"]).status === 0 &&
  spawnSync("etcdctl", ["version"], { env: { ...process.env, ETCDCTL_API: "3" } }).status === 0;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "membership-etcd-"));
  dirs.push(d);
  return d;
}

/** Runs etcd with flags that make it refuse to start; returns the text after "etcdmain: " on its fatal line. */
async function etcdStartupError(name: string, advertise: string, initialCluster: string): Promise<string> {
  const [client, peer] = [await freePort(), await freePort()];
  const r = spawnSync(
    "etcd",
    [
      "--name",
      name,
      "--data-dir",
      join(tempDir(), "d"),
      "--listen-client-urls",
      `http://127.0.0.1:${client}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${client}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-advertise-peer-urls",
      advertise,
      "--initial-cluster",
      initialCluster,
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  const line = /\sC \| etcdmain: (.*)$/m.exec(r.stderr);
  if (line === null) throw new Error(`etcd did not refuse (status ${r.status}): ${r.stderr.slice(-600)}`);
  return line[1] ?? "";
}

function ourStartupError(name: string, advertise: string, initialCluster: string): string {
  try {
    Cluster.fromInitialCluster(initialCluster, "etcd-cluster", { name, advertisePeerUrls: advertise.split(",") });
  } catch (err) {
    if (err instanceof InitialClusterError) return err.message;
    throw err;
  }
  return "(accepted)";
}

describe.runIf(haveEtcd)("bootstrap refusals: our texts = etcd 3.4's", () => {
  let a = "",
    b = "",
    c = "";
  beforeAll(async () => {
    [a, b, c] = [
      `http://127.0.0.1:${await freePort()}`,
      `http://127.0.0.1:${await freePort()}`,
      `http://127.0.0.1:${await freePort()}`,
    ];
  });

  const cases: Array<[string, () => [string, string]]> = [
    ["a URL used by two names (map printed sorted)", () => [a, `n2=${b},n1=${a},n3=${b}`]],
    ["a name with an empty URL", () => [a, `n1=${a},n2=`]],
    ["a name with no '='", () => [a, `n1=${a},n2`]],
    ["the local name missing", () => [a, `n2=${a},n3=${b}`]],
    ["a non-http scheme", () => [a, `n1=${a},n2=ftp://127.0.0.1:1`]],
    ["no port", () => [a, `n1=${a},n2=http://127.0.0.1`]],
    ["a path", () => [a, `n1=${a},n2=${b}/p`]],
    ["no scheme (Go's parse error)", () => [a, `n1=${a},n2=127.0.0.1:2380`]],
    ["a space in the host", () => [a, `n1=${a},n2=http://a b:1`]],
    ["a missing ']'", () => [a, `n1=${a},n2=http://[::1:1`]],
    ["a bad port", () => [a, `n1=${a},n2=http://h:x1`]],
    ["too many colons", () => [a, `n1=${a},n2=http://a:b:2380`]],
    ["advertise URL differs from the entry", () => [a, `n1=${b}`]],
    ["advertise lists a URL the entry lacks", () => [`${a},${c}`, `n1=${a}`]],
    ["the entry lists a URL advertise lacks", () => [a, `n1=${a},n1=${c}`]],
    ["the entry repeats a URL", () => [a, `n1=${a},n1=${a}`]],
  ];
  for (const [what, args] of cases) {
    it(what, async () => {
      const [advertise, initialCluster] = args();
      const theirs = await etcdStartupError("n1", advertise, initialCluster);
      expect(ourStartupError("n1", advertise, initialCluster), `etcd said: ${theirs}`).toBe(theirs);
    });
  }
});

/** Starts etcd; resolves with its process once `ready(stderrSoFar)` is true. */
async function startEtcd(
  args: readonly string[],
  ready: (log: string) => boolean,
): Promise<{ proc: ServerProcess; log: () => string }> {
  let log = "";
  const proc = new ServerProcess({ label: "etcd", onLine: (line) => (log += `${line}\n`) });
  proc.spawn("etcd", args);
  try {
    await waitUntil(proc, "ready", { deadline: Date.now() + 45_000, intervalMs: 20 }, async () => ready(log));
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return { proc, log: () => log };
}

async function stopEtcd(proc: ServerProcess | undefined): Promise<void> {
  await proc?.kill();
}

describe.runIf(haveEtcd)("bootstrap ids: ours = etcd 3.4's", () => {
  let etcd: ServerProcess | undefined;
  afterAll(() => stopEtcd(etcd));

  it("3 names, one with two peer URLs, token tok-membership", async () => {
    const [client, p1, p1b, p2, p3] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const u = (p: number): string => `http://127.0.0.1:${p}`;
    const initialCluster = `n1=${u(p1)},n1=${u(p1b)},n2=${u(p2)},n3=${u(p3)}`;
    const started = await startEtcd(
      [
        "--name",
        "n1",
        "--data-dir",
        join(tempDir(), "d"),
        "--listen-client-urls",
        u(client),
        "--advertise-client-urls",
        u(client),
        "--listen-peer-urls",
        u(p1),
        "--initial-advertise-peer-urls",
        `${u(p1)},${u(p1b)}`,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-token",
        "tok-membership",
      ],
      (log) => (log.match(/added member [0-9a-f]+ \[/g) ?? []).length >= 3,
    );
    etcd = started.proc;
    const log = started.log();
    const theirs = [...log.matchAll(/added member ([0-9a-f]+) \[([^\]]*)\] to cluster ([0-9a-f]+)/g)].map((m) => ({
      id: m[1],
      urls: (m[2] ?? "").split(" "),
      cluster: m[3],
    }));
    const ours = Cluster.fromInitialCluster(initialCluster, "tok-membership", {
      name: "n1",
      advertisePeerUrls: [u(p1b), u(p1)],
    });
    expect(theirs.length).toBe(3);
    for (const t of theirs) {
      const m = ours.members.find((x) => idToHex(x.id) === t.id);
      expect(m, `etcd's member ${t.id} ${t.urls.join(" ")}`).toBeDefined();
      expect(m?.peerUrls).toEqual(t.urls);
      expect(t.cluster).toBe(idToHex(ours.clusterId));
    }
    expect(/starting member ([0-9a-f]+)/.exec(log)?.[1]).toBe(
      idToHex(ours.members.find((m) => m.name === "n1")?.id ?? 0n),
    );
  });
});

/**
 * ctl runs etcdctl. The command timeout is generous: on a loaded 2-core machine a member change (a Raft conf change
 * with its fsyncs) can take seconds; a refusal is answered at once either way, so this only bounds a stuck call.
 */
function ctl(endpoint: string, args: readonly string[]): { ok: boolean; out: string; error: string } {
  const r = spawnSync("etcdctl", ["--endpoints", endpoint, "--command-timeout=30s", ...args], {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
    timeout: 60_000,
  });
  const error = /^Error: (.*)$/m.exec(r.stderr)?.[1] ?? "";
  if (r.status !== 0 && error === "") {
    // Killed by the timeout, or failed without etcdctl's "Error:" line: say so instead of comparing an empty text.
    throw new Error(
      `etcdctl ${args.join(" ")}: status ${r.status} signal ${r.signal} ${r.error?.message ?? ""} stderr: ${r.stderr.slice(-600)}`,
    );
  }
  return { ok: r.status === 0, out: r.stdout, error };
}

/** waitWritable waits until the member has committed a put through Raft (leader known, WAL writable). */
async function waitWritable(endpoint: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    // The key is read by no step, so a put applied twice (a retry after a timed-out one) changes nothing.
    const r = spawnSync("etcdctl", ["--endpoints", endpoint, "--command-timeout=10s", "put", "/ready", "1"], {
      encoding: "utf8",
      env: { ...process.env, ETCDCTL_API: "3" },
      timeout: 20_000,
    });
    if (r.status === 0) return;
    if (Date.now() > deadline) throw new Error(`etcd at ${endpoint} took no put within 30 s: ${r.stderr.slice(-400)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** What our Cluster says for a step: "" when it passes, else the message a client would see. */
function ours(fn: () => void): string {
  try {
    fn();
    return "";
  } catch (err) {
    if (!(err instanceof EtcdError)) throw err;
    // etcdctl checks URLs itself and prints the URL parser's text, which is our error's detail.
    return err.code === "MEMBER_BAD_URLS" ? (err.detail ?? "") : err.message;
  }
}

describe.runIf(haveEtcd)("runtime member changes: our errors = etcd 3.4's (etcdctl)", () => {
  let etcd: ServerProcess | undefined;
  afterAll(() => stopEtcd(etcd));

  it("add/promote/remove/update on a 1-member cluster with a learner", async () => {
    const [client, peer, lp1, lp2] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const u = (p: number): string => `http://127.0.0.1:${p}`;
    const ic = `n1=${u(peer)}`;
    etcd = (
      await startEtcd(
        [
          "--name",
          "n1",
          "--data-dir",
          join(tempDir(), "d"),
          "--listen-client-urls",
          u(client),
          "--advertise-client-urls",
          u(client),
          "--listen-peer-urls",
          u(peer),
          "--initial-advertise-peer-urls",
          u(peer),
          "--initial-cluster",
          ic,
        ],
        (log) => log.includes("ready to serve client requests"),
      )
    ).proc;
    const ep = `127.0.0.1:${client}`;
    await waitWritable(ep);
    const view = new MemoryView();
    const boot = Cluster.fromInitialCluster(ic, "etcd-cluster");
    const self = boot.members[0]?.id ?? 0n;
    Cluster.load(view).add(view, boot.members[0]!);
    let cluster = Cluster.load(view);
    // As etcd's transport: no remote member has ever connected (the learner is never started).
    const o: ReconfigOptions = { strictReconfigCheck: true, activeSince: (id) => id === self, localId: self };
    const same = (theirs: { ok: boolean; error: string }, mine: string, what: string): void => {
      expect(theirs.error, what).toBe(mine);
      expect(theirs.ok, what).toBe(mine === "");
    };

    same(
      ctl(ep, ["member", "add", "x", `--peer-urls=${u(peer)}`]),
      ours(() => cluster.validateAdd(newMemberForAdd([u(peer)], { isLearner: false, nowUnixSeconds: 1 }), o)),
      "add a used peer URL",
    );
    same(
      ctl(ep, ["member", "add", "x", "--peer-urls=ftp://x:1"]),
      ours(() => newMemberForAdd(["ftp://x:1"], { isLearner: false, nowUnixSeconds: 1 })),
      "add a bad URL",
    );

    const before = Math.floor(Date.now() / 1000);
    const added = ctl(ep, ["member", "add", "l1", "--learner", `--peer-urls=${u(lp1)}`]);
    const after = Math.floor(Date.now() / 1000);
    expect(added.ok, added.error).toBe(true);
    // etcdctl prints the id with %16x: an id below 2^60 is padded with spaces ("Member  b87fd… added"), 1 in 16.
    const learnerHex = /^Member +([0-9a-f]+) added/m.exec(added.out)?.[1] ?? "";
    expect(learnerHex, `etcdctl member add printed: ${added.out}`).not.toBe("");
    let learner = newMemberForAdd([u(lp1)], { isLearner: true, nowUnixSeconds: before });
    for (let t = before; t <= after && idToHex(learner.id) !== learnerHex; t++)
      learner = newMemberForAdd([u(lp1)], { isLearner: true, nowUnixSeconds: t });
    expect(idToHex(learner.id), `etcd's id for a member added between ${before} and ${after}`).toBe(learnerHex);
    expect(ours(() => cluster.validateAdd(learner, o))).toBe("");
    cluster.add(view, learner);
    cluster = Cluster.load(view);

    same(
      ctl(ep, ["member", "add", "l2", "--learner", `--peer-urls=${u(lp2)}`]),
      ours(() => cluster.validateAdd(newMemberForAdd([u(lp2)], { isLearner: true, nowUnixSeconds: after }), o)),
      "a second learner",
    );
    // The learner never started: its match index is 0, the leader's is past its first entries.
    same(
      ctl(ep, ["member", "promote", learnerHex]),
      ours(() => cluster.validatePromote(learner.id, isLearnerInSync(0, 4), o)),
      "promote a lagging learner",
    );
    same(
      ctl(ep, ["member", "promote", idToHex(self)]),
      ours(() => cluster.validatePromote(self, true, o)),
      "promote a voter",
    );
    same(
      ctl(ep, ["member", "remove", "1234"]),
      ours(() => cluster.validateRemove(0x1234n, o)),
      "remove an unknown id",
    );
    same(
      ctl(ep, ["member", "update", "1234", `--peer-urls=${u(lp2)}`]),
      ours(() => cluster.validateUpdate(0x1234n, [u(lp2)])),
      "update an unknown id",
    );
    same(
      ctl(ep, ["member", "update", idToHex(self), "--peer-urls=http://x"]),
      ours(() => cluster.validateUpdate(self, ["http://x"])),
      "update to a bad URL",
    );
    same(
      ctl(ep, ["member", "remove", learnerHex]),
      ours(() => cluster.validateRemove(learner.id, o)),
      "remove the learner",
    );
    cluster.remove(view, learner.id);
    same(
      ctl(ep, ["member", "remove", learnerHex]),
      ours(() => cluster.validateRemove(learner.id, o)),
      "remove it again",
    );
    same(
      ctl(ep, ["member", "remove", idToHex(self)]),
      ours(() => cluster.validateRemove(self, o)),
      "remove the last member",
    );
    expect(ERRORS.MEMBER_NOT_ENOUGH_STARTED.message).toBe(
      "etcdserver: re-configuration failed due to not enough started members",
    );
    expect(computeMemberId([u(peer)], "etcd-cluster")).toBe(self);
  });
});
