// Proves that a member change survives a restart in Raft as well as in the member store: a learner added to a
// one-member cluster (at a Raft index past the last Raft snapshot) is still a learner to Raft after a restart, so
// promoting it is refused as not in sync — were Raft to have forgotten it, the promote would pass and make an
// unreachable voter of it, losing quorum. Also: a refused conf change (a second learner) stays refused.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EtcdServer } from "../../core/server/etcd_server.js";

const dirs: string[] = [];
const servers: EtcdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<EtcdServer> {
  const s = await EtcdServer.start({
    name: "n1",
    dataDir,
    memberId: 0x8e9e05c52164694dn,
    clusterId: 0xcdf818194e3a8c32n,
    heartbeatIntervalMs: 10,
    electionTimeoutMs: 100,
    initialMembers: [
      { id: 0x8e9e05c52164694dn, name: "n1", peerUrls: ["http://127.0.0.1:1"], clientUrls: [], isLearner: false },
    ],
    peer: { listenUrls: ["http://127.0.0.1:0"] },
  });
  servers.push(s);
  await s.whenLeader();
  await s.whenPublished();
  return s;
}

describe("member changes across a restart", () => {
  it("a learner added before the restart is still a learner to Raft after it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-members-"));
    dirs.push(dir);
    const s = await start(dir);
    const { member } = await s.memberAdd(["http://127.0.0.1:9"], true);
    await expect(s.memberAdd(["http://127.0.0.1:10"], true)).rejects.toMatchObject({ code: "TOO_MANY_LEARNERS" });
    await expect(s.memberPromote(member.id)).rejects.toMatchObject({ code: "LEARNER_NOT_READY" });
    servers.splice(servers.indexOf(s), 1);
    await s.stop();

    const again = await start(dir);
    expect(again.members().map((m) => [m.id, m.isLearner])).toContainEqual([member.id, true]);
    expect(again.members().length).toBe(2);
    await expect(again.memberPromote(member.id)).rejects.toMatchObject({ code: "LEARNER_NOT_READY" });
    // Still a one-voter cluster: writes commit.
    expect(
      (await again.put({ key: new TextEncoder().encode("k"), value: new Uint8Array(1) })).response.revision,
    ).toBeGreaterThan(1);
  });
});
