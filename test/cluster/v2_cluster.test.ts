// Proves the v2 store (--enable-v2) is replicated state of a real 3-member etcd-ts cluster: a write on one member
// is read with quorum=true on every other, a TTL key set through a follower is expired on every member by the
// leader's SYNC, and a member killed with -9 while the log is compacted behind it comes back with every v2 key
// (the ones written while it was down arrive in the leader's snapshot, which replaces its v2 store), and
// /v2/members adds, updates and removes a member, and /v2/stats show the leader's appends to its followers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait_for.js";
import { LocalCluster, status } from "./local_cluster.js";

const FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"];

async function v2(
  endpoint: string,
  method: string,
  path: string,
  form?: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://${endpoint}${path}`, {
    method,
    ...(form !== undefined ? { body: new URLSearchParams(form) } : {}),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe("the v2 store in a 3-member etcd-ts cluster", () => {
  const c = new LocalCluster("etcd-ts", {
    flags: [...FAST, "--enable-v2"],
    etcdTsFlags: ["--snapshot-count", "20", "--experimental-snapshot-catchup-entries", "5"],
  });

  beforeAll(async () => {
    await c.start(3);
  }, 60_000);
  afterAll(async () => {
    await c.stop();
  });

  it("reads a write made on one member on every member, at the same store index", async () => {
    const put = await v2(c.endpoint(1), "PUT", "/v2/keys/shared/a", { value: "v1" });
    expect(put.status).toBe(201);
    for (const i of [0, 1, 2]) {
      const got = await v2(c.endpoint(i), "GET", "/v2/keys/shared/a?quorum=true");
      expect(got.body, `member ${i}`).toEqual({
        action: "get",
        node: { key: "/shared/a", value: "v1", modifiedIndex: 1, createdIndex: 1 },
      });
    }
  });

  it("reports the leader's appends in /v2/stats: leader stats per follower, self stats on each side", async () => {
    const leader = status(c.endpoint(0)).leader;
    const li = [0, 1, 2].find((i) => status(c.endpoint(i)).memberId === leader) ?? 0;
    const fi = [0, 1, 2].find((i) => i !== li) ?? 1;
    const ls = await v2(c.endpoint(li), "GET", "/v2/stats/leader");
    expect(ls.body.leader).toBe(leader.toString(16));
    const followers = ls.body.followers as Record<
      string,
      { latency: { current: number; minimum: number; maximum: number }; counts: { success: number } }
    >;
    expect(Object.keys(followers).length).toBe(2);
    for (const f of Object.values(followers)) {
      expect(f.counts.success).toBeGreaterThan(0);
      expect(f.latency.minimum).toBeLessThanOrEqual(f.latency.maximum);
    }
    expect((await v2(c.endpoint(fi), "GET", "/v2/stats/leader")).status).toBe(403);
    const self = await v2(c.endpoint(fi), "GET", "/v2/stats/self");
    expect(self.body).toMatchObject({ state: "StateFollower", leaderInfo: { leader: leader.toString(16) } });
    expect(self.body.recvAppendRequestCnt as number).toBeGreaterThan(0);
    expect((await v2(c.endpoint(li), "GET", "/v2/stats/self")).body.sendAppendRequestCnt as number).toBeGreaterThan(0);
  });

  it("expires a TTL key set through a follower on every member", async () => {
    const leader = status(c.endpoint(0)).leader;
    const follower = [0, 1, 2].find((i) => status(c.endpoint(i)).memberId !== leader) ?? 0;
    expect((await v2(c.endpoint(follower), "PUT", "/v2/keys/ttl", { value: "x", ttl: "1" })).status).toBe(201);
    for (const i of [0, 1, 2]) {
      let last = 0;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && last !== 404) {
        last = (await v2(c.endpoint(i), "GET", "/v2/keys/ttl")).status;
        if (last !== 404) await new Promise((r) => setTimeout(r, 100));
      }
      expect(last, `member ${i}`).toBe(404);
    }
    const stats = await v2(c.endpoint(follower), "GET", "/v2/stats/store");
    expect(stats.body.expireCount).toBe(1);
  }, 30_000);

  it("adds, updates and removes a member through /v2/members", async () => {
    const send = (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`http://${c.endpoint(0)}${path}`, {
        method,
        headers: { "Content-Type": "application/json" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    // The strict reconfig check refuses changes until every voter has been connected a while: retry as an operator would.
    const retry = async (f: () => Promise<Response>, want: number): Promise<Response> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await f();
        if (r.status === want || Date.now() > deadline) return r;
        await r.text();
        await new Promise((res) => setTimeout(res, 250));
      }
    };
    const added = await retry(() => send("POST", "/v2/members", { peerURLs: ["http://127.0.0.1:1"] }), 201);
    expect(added.status).toBe(201);
    const m = (await added.json()) as { id: string; name: string; peerURLs: string[]; clientURLs: string[] };
    expect(m).toMatchObject({ name: "", peerURLs: ["http://127.0.0.1:1"], clientURLs: [] });
    const list = (await (await send("GET", "/v2/members")).json()) as { members: { id: string }[] };
    expect(list.members.map((x) => x.id)).toContain(m.id);
    const updated = await retry(() => send("PUT", `/v2/members/${m.id}`, { peerURLs: ["http://127.0.0.1:2"] }), 204);
    expect(updated.status).toBe(204);
    const removed = await retry(() => send("DELETE", `/v2/members/${m.id}`), 204);
    expect(removed.status).toBe(204);
    const after = (await (await send("GET", "/v2/members")).json()) as { members: { id: string }[] };
    expect(after.members.map((x) => x.id)).not.toContain(m.id);
    expect(after.members.length).toBe(3);
  }, 60_000);

  it("brings a killed member back with every v2 key through a snapshot of the leader's backend", async () => {
    const leader = status(c.endpoint(0)).leader;
    const follower = [0, 1, 2].find((i) => status(c.endpoint(i)).memberId !== leader) ?? 0;
    const other = [0, 1, 2].find((i) => i !== follower) ?? 1;
    await c.kill(follower);
    for (let i = 0; i < 60; i++)
      expect((await v2(c.endpoint(other), "PUT", `/v2/keys/snap/${i}`, { value: `v${i}` })).status).toBe(201);
    const want = await v2(c.endpoint(other), "GET", "/v2/keys/?recursive=true&sorted=true&quorum=true");
    c.restart(follower);
    await c.waitServing(follower);
    const got = await v2(c.endpoint(follower), "GET", "/v2/keys/?recursive=true&sorted=true&quorum=true");
    expect(got.body).toEqual(want.body);
    expect(JSON.stringify(got.body)).toContain('"/snap/59"');
    expect(JSON.stringify(got.body)).toContain('"/shared/a"');
    await waitFor(
      () => /applied incoming snapshot at index \d+/.test(c.member(follower).log),
      "the snapshot line in the restarted member's log",
    ).catch(() => undefined);
    expect(c.member(follower).log, "the restarted member applied a snapshot").toMatch(
      /applied incoming snapshot at index \d+/,
    );
  }, 60_000);
});
