// Proves the snapshot round trips with etcd's own tools, both ways. (a) etcd-ts holding keys with several
// revisions, a deleted key, a compaction, a lease with two keys, and a user and a role with auth enabled →
// `etcdctl snapshot save` → `etcdctl snapshot status` (revision, key count and size of the file as bbolt reads
// it) → `etcdctl snapshot restore` → real etcd 3.4.23 started on the restored dir serves the same keys at the same
// create/mod revisions and versions, the same history and compaction point, the lease with its keys, the users
// and roles, and the user logs in with its password. (b) the same data written to real etcd → `etcdctl snapshot
// save` → `etcd-ts snapshot restore` (etcdctl's flags) → etcd-ts serves all of it alike. (c) a data dir made by
// `etcdctl snapshot restore`: etcd-ts started on it imports it and serves the same data as real etcd started on an
// identical one, with the same member and cluster ids. (d) an etcd member's own data dir whose db does not record
// its last WAL entries as applied is refused, and etcd still starts on it. (e) one snapshot restored with
// `etcd-ts snapshot restore` into three members forms a three-member cluster with the member and cluster ids
// `etcdctl snapshot restore` gives the same flags, every member serving the data. Output is etcdctl's,
// compared after removing only the member/cluster ids, raft term and a lease's seconds left, with a lease's keys
// sorted (etcd lists them in Go map order).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { BoltReader } from "../../core/bbolt/reader.js";
import { ServerProcess, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort, haveEtcd } from "./processes.js";

type Kind = "etcd" | "etcd-ts";
const ROOT = "root:rootpw";
const dir = mkdtempSync(join(tmpdir(), "etcd-ts-bbolt-compat-"));
const procs: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Starts `kind` on `dataDir` as the one member `name` at `peerUrl`; ready once it logs that it serves clients. */
async function launch(kind: Kind, dataDir: string, name: string, peerUrl: string): Promise<Proc> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const args = [
    "--name",
    name,
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `${name}=${peerUrl}`,
    "--bcrypt-cost",
    "4",
  ];
  let ready = false;
  const proc = new ServerProcess({
    label: kind,
    tailChars: 20_000,
    onLine: (line) => (ready ||= line.includes("ready to serve client requests")),
  });
  procs.push(proc);
  if (kind === "etcd") proc.spawn("etcd", args);
  else proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args]);
  try {
    await waitUntil(proc, "ready", { deadline: Date.now() + 30_000, intervalMs: 50 }, async () => ready);
  } catch (err) {
    await proc.stop();
    throw new Error(`${String(err)}\n${proc.stderrTail}`);
  }
  const stop = (): Promise<void> => proc.stop();
  return { endpoint: url.slice("http://".length), stop };
}

const peer = async (): Promise<string> => `http://127.0.0.1:${await freePort()}`;

function ctl(endpoint: string | undefined, ...args: string[]): { stdout: string; stderr: string; status: number } {
  const r = spawnSync("etcdctl", [...(endpoint === undefined ? [] : ["--endpoints", endpoint]), ...args], {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
    timeout: 20_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

function must(endpoint: string, ...args: string[]): string {
  const r = ctl(endpoint, ...args);
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The data both directions carry: 3 revisions of k1, a deleted k2, a compaction at 3, a lease on lk1 and lk2, auth. */
function populate(endpoint: string): string {
  for (const v of ["v1", "v2", "v3"]) must(endpoint, "put", "k1", v);
  must(endpoint, "put", "k2", "gone");
  must(endpoint, "del", "k2");
  const lease = /lease ([0-9a-f]+) granted/.exec(must(endpoint, "lease", "grant", "600"))?.[1] ?? "";
  must(endpoint, "put", "lk1", "a", "--lease", lease);
  must(endpoint, "put", "lk2", "b", "--lease", lease);
  must(endpoint, "put", "k3", "x");
  must(endpoint, "compact", "3");
  must(endpoint, "role", "add", "r1");
  must(endpoint, "role", "grant-permission", "r1", "readwrite", "k", "--prefix");
  must(endpoint, "role", "add", "root");
  must(endpoint, "user", "add", ROOT);
  must(endpoint, "user", "grant-role", "root", "root");
  must(endpoint, "user", "add", "u1:u1pw");
  must(endpoint, "user", "grant-role", "u1", "r1");
  must(endpoint, "auth", "enable");
  return lease;
}

/** What a server answers about that data through etcdctl, ids and seconds left normalized. */
function observe(endpoint: string, lease: string): Record<string, string> {
  const as = (user: string, ...args: string[]): string => {
    const r = ctl(endpoint, "--user", user, ...args);
    const error = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("Error:"))
      .join("\n");
    return (
      (r.stdout + error)
        .replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":N')
        .replace(/remaining\(\d+s\)/, "remaining(Ns)")
        // etcd lists a lease's keys in Go map order, which varies from run to run.
        .replace(
          /attached keys\(\[([^\]]*)\]\)/,
          (_m, keys: string) => `attached keys([${keys.split(" ").sort().join(" ")}])`,
        )
    );
  };
  return {
    all: as(ROOT, "get", "", "--prefix", "-w", "json"),
    history: as(ROOT, "get", "k1", "--rev", "3", "-w", "json"),
    deleted: as(ROOT, "get", "k2", "--rev", "5", "-w", "json"),
    compacted: as(ROOT, "get", "k1", "--rev", "2"),
    lease: as(ROOT, "lease", "timetolive", lease, "--keys"),
    leases: as(ROOT, "lease", "list"),
    users: as(ROOT, "user", "list"),
    roles: as(ROOT, "role", "list"),
    user: as(ROOT, "user", "get", "u1"),
    role: as(ROOT, "role", "get", "r1"),
    userReads: as("u1:u1pw", "get", "k", "--prefix", "--keys-only"),
    userDenied: as("u1:u1pw", "get", "lk1"),
    wrongPassword: as("u1:nope", "get", "k1"),
  };
}

describe.runIf(haveEtcd())("snapshot files exchanged with etcd 3.4.23", () => {
  it("(a) etcd-ts → etcdctl snapshot save/status/restore → real etcd serves the same data", async () => {
    const source = await launch("etcd-ts", join(dir, "a-src"), "src", await peer());
    const lease = populate(source.endpoint);
    const before = observe(source.endpoint, lease);
    const file = join(dir, "a.db");
    expect(ctl(source.endpoint, "--user", ROOT, "snapshot", "save", file).stdout).toBe(`Snapshot saved at ${file}\n`);
    await source.stop();
    expect(before.all).toContain('"revision":9');

    const status = JSON.parse(ctl(undefined, "snapshot", "status", file, "-w", "json").stdout) as Record<
      string,
      number
    >;
    const bolt = BoltReader.open(file);
    const entries = bolt.bucketNames().reduce((n, b) => n + [...(bolt.entries(b) ?? [])].length, 0);
    bolt.close();
    expect(status).toEqual({
      hash: expect.any(Number) as number,
      revision: 9,
      totalKey: entries,
      totalSize: statSync(file).size - 32,
    });

    const peerUrl = await peer();
    const restored = ctl(
      undefined,
      "snapshot",
      "restore",
      file,
      "--data-dir",
      join(dir, "a-dst"),
      "--name",
      "dst",
      "--initial-cluster",
      `dst=${peerUrl}`,
      "--initial-advertise-peer-urls",
      peerUrl,
    );
    expect(restored.status, restored.stderr).toBe(0);
    const target = await launch("etcd", join(dir, "a-dst"), "dst", peerUrl);
    expect(observe(target.endpoint, lease)).toEqual(before);
    expect(must(target.endpoint, "--user", ROOT, "put", "k4", "after", "-w", "json")).toMatch(/"revision":10\b/);
    await target.stop();
  }, 120_000);

  it("(b) real etcd → etcdctl snapshot save → etcd-ts snapshot restore → etcd-ts serves the same data", async () => {
    const source = await launch("etcd", join(dir, "b-src"), "src", await peer());
    const lease = populate(source.endpoint);
    // 300 values of 1 KiB in three transactions: etcd's key bucket then spans branch and leaf pages of its own
    // (small buckets are stored inline in their parent's page; both kinds are read).
    for (let t = 0; t < 3; t++) {
      const ops = Array.from(
        { length: 100 },
        (_, i) => `put kbig/${t}-${String(i).padStart(3, "0")} ${"x".repeat(1024)}`,
      ).join("\n");
      const r = spawnSync("etcdctl", ["--endpoints", source.endpoint, "--user", ROOT, "txn"], {
        input: `\n${ops}\n\n\n`,
        encoding: "utf8",
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      expect(r.stdout.startsWith("SUCCESS"), r.stderr).toBe(true);
    }
    const before = observe(source.endpoint, lease);
    const file = join(dir, "b.db");
    expect(ctl(source.endpoint, "--user", ROOT, "snapshot", "save", file).stdout).toBe(`Snapshot saved at ${file}\n`);
    await source.stop();
    expect(before.all).toContain('"revision":12');
    expect((before.userReads ?? "").split("\n").filter((l) => l.startsWith("kbig/")).length).toBe(300);

    const peerUrl = await peer();
    const restore = spawnSync(
      process.execPath,
      [
        join(REPO, "bin/etcd-ts"),
        "snapshot",
        "restore",
        file,
        "--data-dir",
        join(dir, "b-dst"),
        "--name",
        "dst",
        "--initial-cluster",
        `dst=${peerUrl}`,
        "--initial-cluster-token",
        "etcd-cluster",
        "--initial-advertise-peer-urls",
        peerUrl,
      ],
      { encoding: "utf8" },
    );
    expect(restore.status, restore.stdout + restore.stderr).toBe(0);
    const target = await launch("etcd-ts", join(dir, "b-dst"), "dst", peerUrl);
    expect(observe(target.endpoint, lease)).toEqual(before);
    expect(must(target.endpoint, "--user", ROOT, "put", "k4", "after", "-w", "json")).toMatch(/"revision":13\b/);
    await target.stop();
  }, 120_000);

  /** Member ids, names and peer URLs and the cluster id, as `member list` shows them; client URLs differ by port. */
  const membership = (endpoint: string): string =>
    must(endpoint, "--user", ROOT, "member", "list", "-w", "json")
      .replace(/"(member_id|raft_term|revision)":\d+/g, '"$1":N')
      .replaceAll(endpoint, "CLIENT");

  it("(c) etcd-ts starts on a data dir made by etcdctl snapshot restore, as real etcd does on an identical one", async () => {
    const source = await launch("etcd", join(dir, "c-src"), "src", await peer());
    const lease = populate(source.endpoint);
    const file = join(dir, "c.db");
    expect(ctl(source.endpoint, "--user", ROOT, "snapshot", "save", file).status).toBe(0);
    await source.stop();
    const peerUrl = await peer();
    for (const d of ["c-etcd", "c-ours"]) {
      const r = ctl(
        undefined,
        "snapshot",
        "restore",
        file,
        "--data-dir",
        join(dir, d),
        "--name",
        "dst",
        "--initial-cluster",
        `dst=${peerUrl}`,
        "--initial-cluster-token",
        "tok",
        "--initial-advertise-peer-urls",
        peerUrl,
      );
      expect(r.status, r.stderr).toBe(0);
    }
    const etcd = await launch("etcd", join(dir, "c-etcd"), "dst", peerUrl);
    const theirs = { data: observe(etcd.endpoint, lease), members: membership(etcd.endpoint) };
    await etcd.stop();
    const ours = await launch("etcd-ts", join(dir, "c-ours"), "dst", peerUrl);
    expect({ data: observe(ours.endpoint, lease), members: membership(ours.endpoint) }).toEqual(theirs);
    expect(must(ours.endpoint, "--user", ROOT, "put", "k4", "after", "-w", "json")).toMatch(/"revision":10\b/);
    await ours.stop();
    // The second start is an ordinary restart of etcd-ts's own data dir.
    const again = await launch("etcd-ts", join(dir, "c-ours"), "dst", peerUrl);
    expect(must(again.endpoint, "--user", ROOT, "get", "k4", "--print-value-only")).toBe("after\n");
    await again.stop();
  }, 120_000);

  it("(d) etcd-ts refuses an etcd member's own data dir whose db does not record every WAL entry, leaving it whole", async () => {
    const peerUrl = await peer();
    const source = await launch("etcd", join(dir, "d-src"), "src", peerUrl);
    const lease = populate(source.endpoint);
    const before = observe(source.endpoint, lease);
    await source.stop();
    // The auth changes applied last write no applied index into etcd's db, so the db cannot tell they are in it.
    await expect(launch("etcd-ts", join(dir, "d-src"), "src", peerUrl)).rejects.toThrow(
      /its WAL goes to index \d+ but its db records entries applied up to \d+ only/,
    );
    const etcd = await launch("etcd", join(dir, "d-src"), "src", peerUrl);
    expect(observe(etcd.endpoint, lease)).toEqual(before);
    await etcd.stop();
  }, 120_000);

  it("(e) one snapshot restored into three etcd-ts members forms the cluster etcdctl's restore would", async () => {
    const source = await launch("etcd", join(dir, "e-src"), "src", await peer());
    const lease = populate(source.endpoint);
    const before = observe(source.endpoint, lease);
    const file = join(dir, "e.db");
    expect(ctl(source.endpoint, "--user", ROOT, "snapshot", "save", file).status).toBe(0);
    await source.stop();
    const peers = [await peer(), await peer(), await peer()];
    const initial = peers.map((u, i) => `m${i}=${u}`).join(",");
    const flags = (i: number): string[] => [
      "--name",
      `m${i}`,
      "--initial-cluster",
      initial,
      "--initial-cluster-token",
      "tok",
      "--initial-advertise-peer-urls",
      peers[i] as string,
    ];
    const byEtcdctl = ctl(
      undefined,
      "snapshot",
      "restore",
      file,
      "--data-dir",
      join(dir, "e-etcdctl"),
      ...flags(0),
    ).stderr;
    const etcdIds = [...byEtcdctl.matchAll(/"cluster-id":"([0-9a-f]+)".*?"added-peer-id":"([0-9a-f]+)"/g)]
      .map((m) => `${m[2]} in ${m[1]}`)
      .sort();
    const ours = peers.map((_, i) => {
      const r = spawnSync(
        process.execPath,
        [join(REPO, "bin/etcd-ts"), "snapshot", "restore", file, "--data-dir", join(dir, `e-${i}`), ...flags(i)],
        { encoding: "utf8" },
      );
      expect(r.status, r.stdout + r.stderr).toBe(0);
      return /as member ([0-9a-f]+) of cluster ([0-9a-f]+)/.exec(r.stdout)?.slice(1).join(" in ") ?? "";
    });
    expect([...ours].sort()).toEqual(etcdIds);
    const members = await Promise.all(peers.map((u, i) => launch("etcd-ts", join(dir, `e-${i}`), `m${i}`, u)));
    for (const m of members) expect(observe(m.endpoint, lease)).toEqual(before);
    expect(must(members[2]?.endpoint ?? "", "--user", ROOT, "put", "k4", "after", "-w", "json")).toMatch(
      /"revision":10\b/,
    );
    await Promise.all(members.map((m) => m.stop()));
  }, 120_000);
});
