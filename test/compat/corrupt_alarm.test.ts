// Proves a raised CORRUPT alarm has etcd 3.4's effect, through the real etcdctl against etcd-ts and real etcd side
// by side: once a client raises it (Maintenance.Alarm ACTIVATE, as the leader's corruption check does through
// Raft), puts, deletes, txns, lease grants and compactions answer "etcdserver: corrupt cluster" while reads go on;
// `alarm list` shows it and `alarm disarm` clears it, after which writes pass again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawEtcd, pb } from "../security/raw_grpc.js";
import { etcdctl, haveEtcd, startServer, type RunningServer } from "./processes.js";

const KINDS = ["etcd", "etcd-ts"] as const;

function outcome(r: { status: number; stdout: string; stderr: string }): string {
  return r.status === 0 ? r.stdout.trim() : (/Error: (.*)/.exec(r.stderr)?.[1] ?? r.stderr.trim());
}

describe.runIf(haveEtcd())("the CORRUPT alarm, etcd-ts against real etcd 3.4", () => {
  const servers = new Map<string, RunningServer>();
  beforeAll(async () => {
    for (const kind of KINDS) servers.set(kind, await startServer(kind));
  }, 60_000);
  afterAll(async () => {
    for (const s of servers.values()) await s.stop();
  });

  const both = (args: string[]): Record<string, string> =>
    Object.fromEntries(KINDS.map((k) => [k, outcome(etcdctl(servers.get(k)?.endpoint ?? "", args))]));

  it("refuses writes, serves reads, and is cleared by a disarm", async () => {
    expect(both(["put", "k", "v"])).toEqual({ etcd: "OK", "etcd-ts": "OK" });
    for (const kind of KINDS) {
      const raw = new RawEtcd(servers.get(kind)?.endpoint ?? "");
      try {
        const r = await raw.call("Maintenance", "Alarm", pb.msg(pb.varint(1, 1), pb.varint(3, 2)));
        expect(r.ok, kind).toBe(true);
      } finally {
        raw.close();
      }
    }
    const corrupt = { etcd: "etcdserver: corrupt cluster", "etcd-ts": "etcdserver: corrupt cluster" };
    expect(both(["put", "k", "w"])).toEqual(corrupt);
    expect(both(["del", "k"])).toEqual(corrupt);
    expect(both(["lease", "grant", "60"])).toEqual({
      etcd: "failed to grant lease (etcdserver: corrupt cluster)",
      "etcd-ts": "failed to grant lease (etcdserver: corrupt cluster)",
    });
    expect(both(["compaction", "1"])).toEqual(corrupt);
    expect(both(["get", "k", "--print-value-only"])).toEqual({ etcd: "v", "etcd-ts": "v" });
    const list = both(["alarm", "list"]);
    expect(list["etcd-ts"]).toBe(list["etcd"]);
    expect(list["etcd"]).toBe("alarm:CORRUPT");
    const disarm = both(["alarm", "disarm"]);
    expect(disarm["etcd-ts"]).toBe(disarm["etcd"]);
    expect(both(["put", "k", "w"])).toEqual({ etcd: "OK", "etcd-ts": "OK" });
    expect(both(["alarm", "list"])).toEqual({ etcd: "", "etcd-ts": "" });
  });
});
