// Proves the admin-only operations are closed to other users as in etcd 3.4, through the real etcdctl against
// etcd-ts and real etcd side by side with auth enabled: member add/remove/update/promote by a non-root user answer
// "etcdserver: permission denied" (root's update passes, anyone may list). Then, on etcd-ts alone (the installed etcd
// 3.4.23 predates the fix): LeaseTimeToLive with keys lists a lease's keys only to a user who may read every one
// of them (etcd 3.4.26's fix for CVE-2023-32082), root always; and /debug/peer-faults takes root's token only,
// refuses an oversized body and any client that is not on loopback.
import { request } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientHttpHandler } from "../../core/api/http_server.js";
import type { Gateway } from "../../core/api/gateway.js";
import type { EtcdServer } from "../../core/server/etcd_server.js";
import { etcdctl, haveEtcd } from "../compat/processes.js";
import { type Kind, type Member, startMember } from "./members.js";

const KINDS: readonly Kind[] = ["etcd", "etcd-ts"];

const ctl = (m: Member, args: string[], user?: string): string => {
  const r = etcdctl(m.endpoint, [...(user !== undefined ? ["--user", user] : []), ...args]);
  return r.status === 0 ? r.stdout.trim() : (/Error: (.*)/.exec(r.stderr)?.[1] ?? r.stderr.trim());
};

/** root (root role), alice with read on [a, b); two leases: one on a1, one on a2 and z1; then auth on. */
function setUp(m: Member): { onlyA: string; mixed: string; memberId: string; peerUrl: string } {
  const lease = (): string => /lease ([0-9a-f]+) granted/.exec(ctl(m, ["lease", "grant", "600"]))?.[1] ?? "";
  const onlyA = lease();
  const mixed = lease();
  const steps = [
    ["user", "add", "root", "--new-user-password", "rootpw"],
    ["role", "add", "root"],
    ["user", "grant-role", "root", "root"],
    ["user", "add", "alice", "--new-user-password", "alicepw"],
    ["role", "add", "r"],
    ["role", "grant-permission", "r", "read", "a", "b"],
    ["user", "grant-role", "alice", "r"],
    ["put", "a1", "v", "--lease", onlyA],
    ["put", "a2", "v", "--lease", mixed],
    ["put", "z1", "v", "--lease", mixed],
    ["auth", "enable"],
  ];
  for (const s of steps) expect(ctl(m, s), s.join(" ")).not.toMatch(/^etcdserver|Error|rpc error/);
  const list = ctl(m, ["member", "list"], "root:rootpw").split(", ");
  return { onlyA, mixed, memberId: list[0] ?? "", peerUrl: list[3] ?? "" };
}

describe.runIf(haveEtcd())("admin-only operations with auth enabled, etcd-ts against real etcd 3.4", () => {
  const members = new Map<Kind, Member>();
  const fixture = new Map<Kind, ReturnType<typeof setUp>>();
  beforeAll(async () => {
    for (const kind of KINDS) {
      const m = await startMember(
        kind,
        ["--bcrypt-cost", "4", "--experimental-peer-fault-injection"].slice(0, kind === "etcd" ? 2 : 3),
      );
      members.set(kind, m);
      fixture.set(kind, setUp(m));
    }
  }, 60_000);
  afterAll(async () => {
    for (const m of members.values()) await m.stop();
  });

  const on = (kind: Kind): { m: Member; f: ReturnType<typeof setUp> } => ({
    m: members.get(kind) as Member,
    f: fixture.get(kind) as ReturnType<typeof setUp>,
  });

  it("member add/remove/update/promote by a non-root user: permission denied on both", () => {
    const got = KINDS.map((kind) => {
      const { m, f } = on(kind);
      return [
        ctl(m, ["member", "add", "m2", "--peer-urls", "http://127.0.0.1:1"], "alice:alicepw"),
        ctl(m, ["member", "remove", f.memberId], "alice:alicepw"),
        ctl(m, ["member", "update", f.memberId, "--peer-urls", f.peerUrl], "alice:alicepw"),
        ctl(m, ["member", "promote", f.memberId], "alice:alicepw"),
        ctl(m, ["member", "add", "m2", "--peer-urls", "http://127.0.0.1:1"]),
      ];
    });
    expect(got[1]).toEqual(got[0]);
    expect(got[0]?.slice(0, 4)).toEqual(Array(4).fill("etcdserver: permission denied"));
    expect(got[0]?.[4]).toBe("etcdserver: user name is empty");
  });

  it("root may update a member; any user may list them", () => {
    for (const kind of KINDS) {
      const { m, f } = on(kind);
      expect(ctl(m, ["member", "update", f.memberId, "--peer-urls", f.peerUrl], "root:rootpw"), kind).toMatch(
        /updated in cluster/,
      );
      expect(ctl(m, ["member", "list"], "alice:alicepw"), kind).toContain(f.peerUrl);
    }
  });

  it("LeaseTimeToLive --keys needs read permission on every attached key (etcd-ts, as etcd 3.4.26)", () => {
    const { m, f } = on("etcd-ts");
    expect(ctl(m, ["lease", "timetolive", f.onlyA, "--keys"], "alice:alicepw")).toMatch(/attached keys\(\[a1\]\)/);
    expect(ctl(m, ["lease", "timetolive", f.mixed, "--keys"], "alice:alicepw")).toBe("etcdserver: permission denied");
    expect(ctl(m, ["lease", "timetolive", f.mixed], "alice:alicepw")).toMatch(/granted with TTL\(600s\)/);
    expect(ctl(m, ["lease", "timetolive", f.mixed, "--keys"], "root:rootpw")).toMatch(
      /attached keys\(\[(a2 z1|z1 a2)\]\)/,
    );
  });

  it("/debug/peer-faults answers root's token only and refuses an oversized body", async () => {
    const { m } = on("etcd-ts");
    const token = async (user: string, password: string): Promise<string> => {
      const r = await http(m.endpoint, "POST", "/v3/auth/authenticate", JSON.stringify({ name: user, password }));
      return (JSON.parse(r.body) as { token: string }).token;
    };
    const heal = JSON.stringify({ isolate: false });
    expect((await http(m.endpoint, "PUT", "/debug/peer-faults", heal)).status).toBe(403);
    expect((await http(m.endpoint, "PUT", "/debug/peer-faults", heal, await token("alice", "alicepw"))).status).toBe(
      403,
    );
    const root = await token("root", "rootpw");
    expect((await http(m.endpoint, "PUT", "/debug/peer-faults", "x".repeat(100_000), root)).status).toBe(413);
    expect(await http(m.endpoint, "PUT", "/debug/peer-faults", heal, root)).toEqual({ status: 200, body: heal });
  });
});

describe("/debug/peer-faults from a remote address", () => {
  it("is refused before the server or the body is looked at", () => {
    const handler = clientHttpHandler({} as EtcdServer, { server: "x", cluster: "x" }, { peerFaultInjection: true });
    let status = 0;
    const req = {
      url: "/debug/peer-faults",
      method: "PUT",
      socket: { remoteAddress: "10.1.2.3" },
      headers: {},
    } as unknown as IncomingMessage;
    const res = { writeHead: (s: number) => ((status = s), { end: () => undefined }) } as unknown as ServerResponse;
    handler(req, res, {} as Gateway);
    expect(status).toBe(403);
  });
});

function http(
  endpoint: string,
  method: string,
  path: string,
  body: string,
  token?: string,
): Promise<{ status: number; body: string }> {
  const [host, port] = endpoint.split(":");
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port: Number(port), method, path, headers: token === undefined ? {} : { Authorization: token } },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text.trim() }));
      },
    );
    req.on("error", (err) =>
      method === "PUT" && body.length > 4096 ? resolve({ status: 413, body: String(err) }) : reject(err),
    );
    req.end(body);
  });
}
