// Proves the etcd WAL reader on a WAL that etcd's own tool wrote (`etcdctl snapshot restore` of a snapshot from
// an etcd-ts member, for a three-member cluster): the member and cluster ids match what etcd prints for that
// restore, the three membership entries carry each member's name and peer URLs, and a flipped byte in a record
// fails the CRC-32C check instead of being read; and on a WAL of real etcd longer than the reader's window, the
// metadata and membership entries read before the window moved on are still intact.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { decodeConfChangeContext } from "../../core/membership/member_codec.js";
import { EtcdConfChangeType, readEtcdWal } from "../../core/server/etcd_wal_reader.js";
import { ServerProcess, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, etcdctl, freePort, haveEtcd } from "../compat/processes.js";

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-etcd-wal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A snapshot file from a fresh etcd-ts member (the WAL's contents do not depend on the data). */
async function snapshotFile(): Promise<string> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let ready = false;
  const proc = new ServerProcess({
    label: "etcd-ts",
    ports: [port],
    onLine: (line) => (ready ||= line.includes("ready to serve client requests")),
  });
  proc.spawn(process.execPath, [
    join(REPO, "dist/core/cli/main.js"),
    "--data-dir",
    join(dir, "src"),
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
  ]);
  try {
    await waitUntil(proc, "ready", { deadline: Date.now() + 30_000, intervalMs: 20 }, async () => ready);
    const file = join(dir, "snap.db");
    const r = spawnSync("etcdctl", ["--endpoints", `127.0.0.1:${port}`, "snapshot", "save", file], {
      env: { ...process.env, ETCDCTL_API: "3" },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    return file;
  } finally {
    await proc.dispose();
  }
}

describe.runIf(haveEtcd())("etcd WAL reader", () => {
  it("reads ids and membership entries from etcdctl's restore, and refuses a damaged record", async () => {
    const file = await snapshotFile();
    const peers = ["http://127.0.0.1:12380", "http://127.0.0.1:22380", "http://127.0.0.1:32380"];
    const initial = peers.map((u, i) => `m${i}=${u}`).join(",");
    const r = spawnSync(
      "etcdctl",
      [
        "snapshot",
        "restore",
        file,
        "--data-dir",
        join(dir, "r"),
        "--name",
        "m1",
        "--initial-cluster",
        initial,
        "--initial-cluster-token",
        "t",
        "--initial-advertise-peer-urls",
        peers[1] as string,
      ],
      { env: { ...process.env, ETCDCTL_API: "3" }, encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    const added = [
      ...r.stderr.matchAll(
        /"cluster-id":"([0-9a-f]+)".*?"added-peer-id":"([0-9a-f]+)","added-peer-peer-urls":\["([^"]+)"\]/g,
      ),
    ];
    expect(added.length).toBe(3);
    const idOf = (url: string): bigint => BigInt(`0x${added.find((m) => m[3] === url)?.[2] ?? "0"}`);

    const walDir = join(dir, "r", "member", "wal");
    const wal = readEtcdWal(walDir);
    expect(wal.memberId).toBe(idOf(peers[1] as string));
    expect(wal.clusterId).toBe(BigInt(`0x${added[0]?.[1] ?? "0"}`));
    expect(wal.snapshotIndex).toBe(0);
    expect(wal.lastIndex).toBe(3);
    const members = wal.confChanges.map((cc) => ({
      type: cc.type,
      id: cc.nodeId,
      member: decodeConfChangeContext(cc.context).member,
    }));
    expect(members.map((m) => m.type)).toEqual([
      EtcdConfChangeType.AddNode,
      EtcdConfChangeType.AddNode,
      EtcdConfChangeType.AddNode,
    ]);
    for (const [i, url] of peers.entries()) {
      const m = members.find((x) => x.id === idOf(url));
      expect(m?.member).toEqual({ id: idOf(url), name: `m${i}`, peerUrls: [url], clientUrls: [], isLearner: false });
    }

    const segment = join(walDir, readdirSync(walDir)[0] as string);
    const bytes = readFileSync(segment);
    const at = bytes.indexOf(Buffer.from(peers[2] as string));
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(segment, bytes);
    expect(() => readEtcdWal(walDir)).toThrow(/crc mismatch/);
  }, 60_000);

  it("keeps what it read before the window moved on (a WAL longer than one window)", async () => {
    const [client, peer, learnerPeer] = [await freePort(), await freePort(), await freePort()];
    const data = join(dir, "long");
    const endpoint = `127.0.0.1:${client}`;
    const proc = new ServerProcess({ label: "etcd" });
    proc.spawn("etcd", [
      ...["--name", "m1", "--data-dir", data],
      ...["--listen-client-urls", `http://${endpoint}`, "--advertise-client-urls", `http://${endpoint}`],
      ...[
        "--listen-peer-urls",
        `http://127.0.0.1:${peer}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${peer}`,
      ],
      ...["--initial-cluster", `m1=http://127.0.0.1:${peer}`],
    ]);
    let memberId: bigint;
    try {
      await waitUntil(proc, "etcd answering", { deadline: Date.now() + 30_000, intervalMs: 50 }, async () => {
        return etcdctl(endpoint, ["endpoint", "health"]).status === 0;
      });
      const value = "v".repeat(512 * 1024);
      for (let i = 0; i < 4; i++) expect(etcdctl(endpoint, ["put", `k${i}`], value).status).toBe(0);
      const add = etcdctl(endpoint, [
        "member",
        "add",
        "m2",
        "--learner",
        `--peer-urls=http://127.0.0.1:${learnerPeer}`,
      ]);
      expect(add.status, add.stderr).toBe(0);
      const status = etcdctl(endpoint, ["endpoint", "status", "-w", "json"]).stdout;
      memberId = BigInt(/"member_id":(\d+)/.exec(status)?.[1] ?? "0");
    } finally {
      await proc.stop();
    }
    const walDir = join(data, "member", "wal");
    const wal = readEtcdWal(walDir);
    expect(memberId).not.toBe(0n);
    expect(wal.memberId).toBe(memberId);
    expect(wal.confChanges.map((cc) => cc.type)).toEqual([
      EtcdConfChangeType.AddNode,
      EtcdConfChangeType.AddLearnerNode,
    ]);
    const [first, learner] = wal.confChanges.map((cc) => decodeConfChangeContext(cc.context).member);
    expect(first?.name).toBe("m1");
    expect([first?.peerUrls, learner?.peerUrls, learner?.isLearner]).toEqual([
      [`http://127.0.0.1:${peer}`],
      [`http://127.0.0.1:${learnerPeer}`],
      true,
    ]);
  }, 60_000);
});
