// Proves that etcd-ts runs as a real multi-member cluster of processes on loopback: 3 members bootstrap from
// --initial-cluster, a write on one is read linearizably on every other, a member killed with -9 while the log is
// compacted behind it comes back through a snapshot of the leader's backend with nothing lost and without an
// election, a learner joins (--initial-cluster-state existing), refuses writes, is promoted once in sync and then
// takes writes, leases granted and kept alive through followers, the leader is removed and the rest elect a new
// one, a leader stopped with SIGTERM hands leadership over first, and a member started with another cluster
// token is refused by the cluster.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait_for.js";
import { LocalCluster, ctl, hex, status } from "./local_cluster.js";

const FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"];

/**
 * etcd's strict reconfig check refuses member changes ("unhealthy cluster") until every voter has been connected
 * for 5 s; a change right after a (re)start is retried until then, as an operator would.
 */
async function reconfig(endpoints: string, args: readonly string[]): Promise<ReturnType<typeof ctl>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = ctl(endpoints, args);
    if (!r.stderr.includes("etcdserver: unhealthy cluster") || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 250));
  }
}

describe("a 3-member etcd-ts cluster", () => {
  const c = new LocalCluster("etcd-ts", {
    flags: FAST,
    // Snapshot every 20 entries and keep only 5 behind it, so a member that was down needs a snapshot.
    etcdTsFlags: ["--snapshot-count", "20", "--experimental-snapshot-catchup-entries", "5"],
  });

  beforeAll(async () => {
    await c.start(3);
  }, 60_000);
  afterAll(async () => {
    await c.stop();
  });

  it("lists 3 started voters and agrees on one leader", () => {
    const list = ctl(c.endpoints(), ["member", "list"]);
    expect(list.status, list.stderr).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines.length, list.stdout).toBe(3);
    for (const l of lines)
      expect(l, l).toMatch(/^[0-9a-f]+, started, m[0-2], http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+, false$/);
    const leaders = new Set([0, 1, 2].map((i) => status(c.endpoint(i)).leader));
    expect(leaders.size, `leaders seen: ${[...leaders].map(hex).join(" ")}`).toBe(1);
  });

  it("reads a write made on one member linearizably on every member", () => {
    expect(ctl(c.endpoint(1), ["put", "k", "v1"]).stdout.trim()).toBe("OK");
    for (const i of [0, 1, 2])
      expect(ctl(c.endpoint(i), ["get", "k", "--print-value-only"]).stdout.trim(), `member ${i}`).toBe("v1");
  });

  it("catches a killed follower up through a snapshot, with nothing lost and no election", async () => {
    const leader = status(c.endpoint(0)).leader;
    const follower = [0, 1, 2].find((i) => status(c.endpoint(i)).memberId !== leader) ?? 0;
    const other = [0, 1, 2].find((i) => i !== follower) ?? 1;
    const termBefore = status(c.endpoint(other)).raftTerm;
    await c.kill(follower);
    for (let i = 0; i < 60; i++) expect(ctl(c.endpoint(other), ["put", `snap/${i}`, `v${i}`]).status).toBe(0);
    c.restart(follower);
    await c.waitServing(follower);
    const r = ctl(c.endpoint(follower), ["get", "snap/", "--prefix", "--keys-only"]);
    expect(
      r.stdout
        .trim()
        .split("\n")
        .filter((l) => l !== "").length,
      r.stderr,
    ).toBe(60);
    // Its log reaches this process through a pipe read on the event loop (etcdctl runs synchronously): wait for it.
    await waitFor(
      () => /applied incoming snapshot at index \d+/.test(c.member(follower).log),
      "the snapshot line in the restarted member's log",
    ).catch(() => undefined);
    expect(c.member(follower).log, "the restarted member applied a snapshot").toMatch(
      /applied incoming snapshot at index \d+/,
    );
    expect(status(c.endpoint(other)).raftTerm, "no election caused by the restart").toBe(termBefore);
  }, 60_000);

  it("grants a lease and keeps it alive through a follower; the leader answers its TTL", () => {
    const leader = status(c.endpoint(0)).leader;
    const follower = [0, 1, 2].find((i) => status(c.endpoint(i)).memberId !== leader) ?? 0;
    const grant = ctl(c.endpoint(follower), ["lease", "grant", "60"]);
    const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1];
    expect(id, grant.stdout + grant.stderr).toBeDefined();
    const ka = ctl(c.endpoint(follower), ["lease", "keep-alive", "--once", id ?? ""]);
    expect(ka.stdout, ka.stderr).toContain(`lease ${id} keepalived with TTL(60)`);
    const ttl = ctl(c.endpoint(follower), ["lease", "timetolive", id ?? ""]);
    expect(ttl.stdout, ttl.stderr).toMatch(
      new RegExp(`lease ${id} granted with TTL\\(60s\\), remaining\\((5\\d|60)s\\)`),
    );
  });

  it("adds a learner that refuses writes, promotes it once in sync, and then it takes writes", async () => {
    const d = await c.newMember("m3");
    const add = await reconfig(c.endpoints(), ["member", "add", "m3", "--learner", "--peer-urls", c.peerUrl(d)]);
    expect(add.stdout, add.stderr).toMatch(/Member\s+[0-9a-f]+ added to cluster\s+[0-9a-f]+/);
    const id = /Member\s+([0-9a-f]+) added/.exec(add.stdout)?.[1] ?? "";
    c.join(d);
    await c.waitServing(3);
    expect(status(c.endpoint(3)).isLearner).toBe(true);
    const refused = ctl(c.endpoint(3), ["put", "x", "y"], 4_000);
    expect(refused.stderr).toContain("etcdserver: rpc not supported for learner");
    expect(ctl(c.endpoint(3), ["get", "k", "--consistency=s", "--print-value-only"]).stdout.trim()).toBe("v1");
    const voters = [0, 1, 2].map((i) => c.endpoint(i)).join(","); // a learner serves no MemberPromote
    let promoted = ctl(voters, ["member", "promote", id]);
    for (let i = 0; i < 50 && !promoted.stdout.includes(" promoted in cluster"); i++) {
      expect(promoted.stderr).toContain("can only promote a learner member which is in sync with leader");
      await new Promise((r) => setTimeout(r, 100));
      promoted = ctl(voters, ["member", "promote", id]);
    }
    expect(promoted.stdout, promoted.stderr).toMatch(new RegExp(`Member\\s+${id} promoted in cluster`));
    expect(ctl(c.endpoint(3), ["put", "x", "from-m3"]).stdout.trim()).toBe("OK");
    expect(ctl(c.endpoint(0), ["get", "x", "--print-value-only"]).stdout.trim()).toBe("from-m3");
  }, 60_000);

  it("removes the leader: it stops itself and the others elect a new leader and keep serving", async () => {
    const leader = status(c.endpoint(0)).leader;
    const idx = [0, 1, 2, 3].find((i) => status(c.endpoint(i)).memberId === leader) ?? 0;
    const rest = [0, 1, 2, 3].filter((i) => i !== idx);
    const rm = await reconfig(c.endpoint(rest[0] ?? 0), ["member", "remove", hex(leader)]);
    expect(rm.stdout, rm.stderr).toMatch(new RegExp(`Member\\s+${hex(leader)} removed from cluster`));
    const deadline = Date.now() + 15_000;
    while (c.member(idx).running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(c.member(idx).running, "the removed leader exited").toBe(false);
    // The others notice the leader's silence after an election timeout and elect one of themselves.
    let newLeader = leader;
    while ((newLeader === leader || newLeader === 0n) && Date.now() < deadline + 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      newLeader = status(c.endpoint(rest[0] ?? 0)).leader;
    }
    expect(newLeader).not.toBe(leader);
    for (const i of rest) await c.waitServing(i);
    expect(ctl(c.endpoint(rest[1] ?? 0), ["put", "after-remove", "ok"]).stdout.trim()).toBe("OK");
    expect(
      ctl(c.endpoint(rest[2] ?? 0), ["member", "list"])
        .stdout.trim()
        .split("\n").length,
    ).toBe(3);
  }, 60_000);

  it("hands leadership over when the leader is stopped with SIGTERM", async () => {
    const running = c.members.map((m, i) => ({ m, i })).filter(({ m }) => m.running);
    const leader = status(c.endpoint(running[0]?.i ?? 0)).leader;
    const li = running.find(({ i }) => status(c.endpoint(i)).memberId === leader)?.i ?? 0;
    const other = running.find(({ i }) => i !== li)?.i ?? 0;
    const termBefore = status(c.endpoint(other)).raftTerm;
    await c.kill(li, "SIGTERM");
    await waitFor(
      () => /leadership transfer to/.test(c.member(li).log),
      "the transfer line in the stopped leader's log",
    ).catch(() => undefined);
    expect(c.member(li).log).toMatch(/leadership transfer to [0-9a-f]+ before stopping/);
    const st = status(c.endpoint(other));
    expect(st.leader, "a new leader right after the old one exited").not.toBe(0n);
    expect(st.leader).not.toBe(leader);
    expect(st.raftTerm, "one term: the transfer's election").toBe(termBefore + 1);
    c.restart(li);
    await c.waitServing(li);
  }, 60_000);

  it("refuses a member started with another cluster token (cluster ID mismatch)", async () => {
    const stranger = await c.newMember("stranger");
    const running = c.members.filter((m) => m.running && m !== stranger);
    const initial = [...running, stranger].map((m) => `${m.name}=${c.peerUrl(m)}`).join(",");
    c.spawn(stranger, initial, "new", ["--initial-cluster-token", "some-other-cluster"]);
    const deadline = Date.now() + 15_000;
    while (
      !/cluster-id-mismatch|cluster ID mismatch/.test(stranger.log + running.map((m) => m.log).join("")) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stranger.log + running.map((m) => m.log).join(""), "a refusal for the cluster id is logged").toMatch(
      /cluster-id-mismatch|cluster ID mismatch/,
    );
    expect(ctl(c.endpoints(), ["member", "list"]).stdout).not.toContain("stranger");
    expect(ctl(c.endpoints(), ["put", "still", "fine"]).stdout.trim()).toBe("OK");
  }, 30_000);
});
