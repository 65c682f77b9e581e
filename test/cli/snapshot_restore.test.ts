// Proves a backup round trip with etcd's tools: `etcdctl snapshot save` from a running etcd-ts, then
// `etcd-ts snapshot restore` into a new data dir, and a member started there serves every key and lease of the
// snapshot (a fresh Raft log on restored data); a corrupted file fails the hash check, and an existing data dir
// is refused, as etcdctl's restore refuses them. Also: the restore flags make the new cluster (the member started
// on the dir is the one --name and --initial-cluster named, whatever its own flags say), a file without a hash
// needs --skip-hash-check, and a snapshot in etcd-ts's older LMDB format still restores.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ServerProcess, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort, haveEtcd } from "../compat/processes.js";

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-restore-"));
const procs: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  rmSync(dir, { recursive: true, force: true });
});

/** Starts bin/etcd-ts on `dataDir` and resolves once it logs that it serves clients. */
async function startMember(dataDir: string): Promise<{ proc: ServerProcess; endpoint: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let ready = false;
  const proc = new ServerProcess({
    label: "etcd-ts",
    ports: [port],
    onLine: (line) => (ready ||= line.includes("ready to serve client requests")),
  });
  procs.push(proc);
  proc.spawn(process.execPath, [
    join(REPO, "bin/etcd-ts"),
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
  ]);
  await waitUntil(proc, "ready", { deadline: Date.now() + 60_000, intervalMs: 20 }, async () => ready);
  return { proc, endpoint: `127.0.0.1:${port}` };
}

function stop(proc: ServerProcess): Promise<void> {
  return proc.kill("SIGTERM");
}

const ctl = (endpoint: string, ...args: string[]): { stdout: string; status: number | null } => {
  const r = spawnSync("etcdctl", ["--endpoints", endpoint, ...args], {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  return { stdout: r.stdout, status: r.status };
};
const restore = (...args: string[]): { stdout: string; status: number | null } => {
  const r = spawnSync(process.execPath, [join(REPO, "bin/etcd-ts"), "snapshot", "restore", ...args], {
    encoding: "utf8",
  });
  return { stdout: r.stdout, status: r.status };
};

describe.runIf(haveEtcd())("snapshot save and restore", () => {
  it("restores keys and leases into a new member; refuses a corrupted file and an existing data dir", async () => {
    const a = await startMember(join(dir, "a"));
    for (let i = 0; i < 50; i++) expect(ctl(a.endpoint, "put", `sn/${i}`, `v${i}`).status).toBe(0);
    const lease = /lease ([0-9a-f]+) granted/.exec(ctl(a.endpoint, "lease", "grant", "3600").stdout)?.[1] ?? "";
    expect(ctl(a.endpoint, "put", "sn/leased", "x", "--lease", lease).status).toBe(0);
    const file = join(dir, "snap.db");
    expect(ctl(a.endpoint, "snapshot", "save", file).stdout).toBe(`Snapshot saved at ${file}\n`);
    await stop(a.proc);

    const bad = join(dir, "bad.db");
    const bytes = readFileSync(file);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    writeFileSync(bad, bytes);
    expect(restore(bad, "--data-dir", join(dir, "nope"))).toEqual({
      stdout: "Error: expected sha256 mismatch: snapshot file integrity check failed\n",
      status: 1,
    });
    expect(restore(file, "--data-dir", join(dir, "a"))).toEqual({
      stdout: `Error: data-dir ${JSON.stringify(join(dir, "a"))} exists\n`,
      status: 1,
    });

    const restored = restore(file, "--data-dir", join(dir, "b"));
    expect(restored.status).toBe(0);
    const b = await startMember(join(dir, "b"));
    const keys = ctl(b.endpoint, "get", "sn/", "--prefix", "--keys-only")
      .stdout.split("\n")
      .filter((l) => l !== "");
    expect(keys.length).toBe(51);
    expect(ctl(b.endpoint, "get", "sn/7", "--print-value-only").stdout).toBe("v7\n");
    expect(ctl(b.endpoint, "lease", "timetolive", lease, "--keys").stdout).toContain("attached keys([sn/leased])");
    expect(ctl(b.endpoint, "put", "sn/after", "restore").stdout).toBe("OK\n");
    await stop(b.proc);
  }, 60_000);

  it("makes the cluster its flags name; wants --skip-hash-check for a bare file; restores an older LMDB snapshot", async () => {
    const a = await startMember(join(dir, "c"));
    for (let i = 0; i < 5; i++) expect(ctl(a.endpoint, "put", `old/${i}`, `v${i}`).status).toBe(0);
    await stop(a.proc);
    // etcd-ts's own backend file, as snapshots were before they became etcd's format.
    const lmdb = readFileSync(join(dir, "c", "member", "kv.mdb"));
    writeFileSync(join(dir, "bare.db"), lmdb);
    writeFileSync(join(dir, "lmdb.db"), Buffer.concat([lmdb, createHash("sha256").update(lmdb).digest()]));
    expect(restore(join(dir, "bare.db"), "--data-dir", join(dir, "d"))).toEqual({
      stdout: "Error: snapshot missing hash but --skip-hash-check=false\n",
      status: 1,
    });

    const peerUrl = "http://127.0.0.1:1";
    const restored = restore(
      join(dir, "lmdb.db"),
      "--data-dir",
      join(dir, "d"),
      "--name",
      "n1",
      "--initial-cluster",
      `n1=${peerUrl}`,
      "--initial-cluster-token",
      "tok",
      "--initial-advertise-peer-urls",
      peerUrl,
    );
    expect(restored.stdout).toMatch(
      /^restored snapshot .* \(etcd-ts, \d+ bytes\) into .* as member [0-9a-f]+ of cluster [0-9a-f]+\n$/,
    );
    const d = await startMember(join(dir, "d"));
    expect(
      ctl(d.endpoint, "get", "old/", "--prefix", "--keys-only")
        .stdout.split("\n")
        .filter((l) => l !== "").length,
    ).toBe(5);
    const members = ctl(d.endpoint, "member", "list").stdout;
    expect(members).toContain(`, started, default, ${peerUrl}, http://${d.endpoint}, false`);
    expect(members.trim().split("\n").length).toBe(1);
    await stop(d.proc);
  }, 60_000);
});
