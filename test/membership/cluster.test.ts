// Proves the membership store's etcd 3.4 semantics on a real LMDB backend: every conf-change error path (exists,
// removed, unknown, peer URL clash, learner limit, not a learner, learner not in sync, bad URLs, strict reconfig's
// not-enough-started and unhealthy), the apply side (add/remove/update/promote/publish) and that all of it
// survives a close and reopen of the backend.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ERRORS, EtcdError } from "../../core/errors.js";
import { MAX_LEARNERS } from "../../core/limits.js";
import {
  Cluster,
  MEMBERS_BUCKET,
  REMOVED_MEMBERS_BUCKET,
  newMemberForAdd,
  type ReconfigOptions,
} from "../../core/membership/cluster.js";
import { computeMemberId } from "../../core/membership/ids.js";
import { memberKey } from "../../core/membership/member_codec.js";
import { MembershipHarness, codeOf, member } from "./helpers.js";

const LAX: ReconfigOptions = { strictReconfigCheck: false, activeSince: () => false };
const allActive = (local: bigint): ReconfigOptions => ({
  strictReconfigCheck: true,
  activeSince: () => true,
  localId: local,
});

let h: MembershipHarness;
beforeEach(() => {
  h = new MembershipHarness();
});
afterEach(async () => {
  await h.close();
});

async function threeVoters(): Promise<void> {
  await h.apply((tx, c) => [1, 2, 3].forEach((n) => c.add(tx, member(n))));
}

describe("apply-time checks (ValidateConfigurationChange)", () => {
  it("refuses an existing id, a removed id and a peer URL in use", async () => {
    await threeVoters();
    expect(codeOf(() => h.cluster.checkAdd(member(2)))).toBe("MEMBER_EXIST");
    await h.apply((tx, c) => c.remove(tx, 3n));
    const again = codeOf(() => h.cluster.checkAdd(member(3)));
    expect(again, "a removed id answers member not found (etcd maps ErrIDRemoved to it)").toBe("MEMBER_NOT_FOUND");
    const clash = { ...member(9), peerUrls: ["http://127.0.0.1:2381"] };
    expect(codeOf(() => h.cluster.checkAdd(clash))).toBe("PEER_URL_EXIST");
    expect(codeOf(() => h.cluster.checkAdd(member(9)))).toBeUndefined();
  });

  it(`allows ${MAX_LEARNERS} learner(s) and refuses one more; voters are not limited`, async () => {
    await threeVoters();
    await h.apply((tx, c) => {
      for (let i = 0; i < MAX_LEARNERS; i++) c.add(tx, member(10 + i, { learner: true }));
    });
    expect(h.cluster.learners().length).toBe(MAX_LEARNERS);
    expect(codeOf(() => h.cluster.checkAdd(member(20, { learner: true })))).toBe("TOO_MANY_LEARNERS");
    expect(codeOf(() => h.cluster.checkAdd(member(20)))).toBeUndefined();
  });

  it("remove/update/promote of an unknown or removed id is member not found", async () => {
    await threeVoters();
    await h.apply((tx, c) => c.remove(tx, 1n));
    for (const id of [1n, 42n]) {
      expect(
        codeOf(() => h.cluster.checkRemove(id)),
        `remove ${id}`,
      ).toBe("MEMBER_NOT_FOUND");
      expect(
        codeOf(() => h.cluster.checkUpdate(id, ["http://x:1"])),
        `update ${id}`,
      ).toBe("MEMBER_NOT_FOUND");
      expect(
        codeOf(() => h.cluster.checkPromote(id)),
        `promote ${id}`,
      ).toBe("MEMBER_NOT_FOUND");
    }
  });

  it("update may keep its own URLs but not take another member's", async () => {
    await threeVoters();
    expect(codeOf(() => h.cluster.checkUpdate(2n, ["http://127.0.0.1:2382", "http://127.0.0.1:9999"]))).toBeUndefined();
    expect(codeOf(() => h.cluster.checkUpdate(2n, ["http://127.0.0.1:2383"]))).toBe("PEER_URL_EXIST");
  });

  it("promote of a voter is MEMBER_NOT_LEARNER", async () => {
    await threeVoters();
    expect(codeOf(() => h.cluster.checkPromote(1n))).toBe("MEMBER_NOT_LEARNER");
  });
});

describe("proposal-time checks (server + strict reconfig)", () => {
  it("bad peer URLs are MEMBER_BAD_URLS before anything else, with etcd's text", async () => {
    await threeVoters();
    for (const urls of [[], ["ftp://a:1"], ["http://a"], ["http://a:1/p"], ["a:1"]]) {
      let err: unknown;
      try {
        h.cluster.validateAdd({ ...member(2), peerUrls: urls }, LAX);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(urls)).toBeInstanceOf(EtcdError);
      expect((err as EtcdError).code).toBe("MEMBER_BAD_URLS");
      expect((err as EtcdError).message).toBe(ERRORS.MEMBER_BAD_URLS.message);
    }
    expect(codeOf(() => h.cluster.validateUpdate(2n, ["unixs://h"]))).toBe("MEMBER_BAD_URLS");
  });

  it("strict: adding a voter needs a started quorum after the add; a learner does not", async () => {
    await h.apply((tx, c) => {
      c.add(tx, member(1));
      c.add(tx, member(2, { started: false }));
      c.add(tx, member(3, { started: false }));
    });
    expect(codeOf(() => h.cluster.validateAdd(member(4), allActive(1n)))).toBe("MEMBER_NOT_ENOUGH_STARTED");
    expect(codeOf(() => h.cluster.validateAdd(member(4, { learner: true }), allActive(1n)))).toBeUndefined();
    expect(
      codeOf(() => h.cluster.validateAdd(member(4), LAX)),
      "without strict the add passes",
    ).toBeUndefined();
    await h.apply((tx, c) => c.publish(tx, 2n, "m2", []));
    // 2 of 4 started < quorum 3
    expect(codeOf(() => h.cluster.validateAdd(member(4), allActive(1n)))).toBe("MEMBER_NOT_ENOUGH_STARTED");
    await h.apply((tx, c) => c.publish(tx, 3n, "m3", []));
    expect(codeOf(() => h.cluster.validateAdd(member(4), allActive(1n)))).toBeUndefined();
  });

  it("strict: a 1-member cluster may add a voter (etcd's restore path, the seed's Figure 2)", async () => {
    await h.apply((tx, c) => c.add(tx, member(1)));
    expect(codeOf(() => h.cluster.validateAdd(member(2), allActive(1n)))).toBeUndefined();
  });

  it("strict: any add needs every voter connected for the health interval (UNHEALTHY)", async () => {
    await threeVoters();
    const o: ReconfigOptions = { strictReconfigCheck: true, activeSince: (id) => id !== 3n, localId: 1n };
    expect(codeOf(() => h.cluster.validateAdd(member(4), o))).toBe("UNHEALTHY");
    expect(codeOf(() => h.cluster.validateAdd(member(4, { learner: true }), o))).toBe("UNHEALTHY");
  });

  it("strict: removing a voter needs a started quorum among the rest, and an active quorum after", async () => {
    await h.apply((tx, c) => {
      c.add(tx, member(1));
      c.add(tx, member(2));
      c.add(tx, member(3, { started: false }));
    });
    // removing 2 leaves {1, 3}: 1 started < quorum 2
    expect(codeOf(() => h.cluster.validateRemove(2n, allActive(1n)))).toBe("MEMBER_NOT_ENOUGH_STARTED");
    expect(codeOf(() => h.cluster.validateRemove(3n, allActive(1n)))).toBeUndefined();
    expect(codeOf(() => h.cluster.validateRemove(2n, LAX))).toBeUndefined();
  });

  it("strict: removing a connected voter while another is down is UNHEALTHY; removing the down one is fine", async () => {
    await threeVoters();
    const o: ReconfigOptions = { strictReconfigCheck: true, activeSince: (id) => id !== 3n, localId: 1n };
    expect(codeOf(() => h.cluster.validateRemove(2n, o))).toBe("UNHEALTHY");
    expect(codeOf(() => h.cluster.validateRemove(3n, o))).toBeUndefined();
    // connected but not yet for the health interval: counts as connected, not active → still unhealthy
    const flapping: ReconfigOptions = { ...o, isConnected: () => true };
    expect(codeOf(() => h.cluster.validateRemove(3n, flapping))).toBe("UNHEALTHY");
  });

  it("strict: removing the last member is refused; a learner is removed without quorum checks", async () => {
    await h.apply((tx, c) => {
      c.add(tx, member(1));
      c.add(tx, member(2, { learner: true, started: false }));
    });
    expect(codeOf(() => h.cluster.validateRemove(1n, allActive(1n)))).toBe("MEMBER_NOT_ENOUGH_STARTED");
    const none: ReconfigOptions = { strictReconfigCheck: true, activeSince: () => false, localId: 1n };
    expect(codeOf(() => h.cluster.validateRemove(2n, none))).toBeUndefined();
  });

  it("strict remove of an unknown id passes the quorum checks and is member not found", async () => {
    await threeVoters();
    expect(codeOf(() => h.cluster.validateRemove(77n, allActive(1n)))).toBe("MEMBER_NOT_FOUND");
  });

  it("promote: not in sync → LEARNER_NOT_READY (checked first, as etcd); voter → MEMBER_NOT_LEARNER", async () => {
    await h.apply((tx, c) => {
      c.add(tx, member(1));
      c.add(tx, member(2, { learner: true, started: false }));
    });
    expect(codeOf(() => h.cluster.validatePromote(2n, false))).toBe("LEARNER_NOT_READY");
    expect(codeOf(() => h.cluster.validatePromote(1n, true))).toBe("MEMBER_NOT_LEARNER");
    expect(codeOf(() => h.cluster.validatePromote(9n, true))).toBe("MEMBER_NOT_FOUND");
    expect(codeOf(() => h.cluster.validatePromote(2n, true, { strictReconfigCheck: true }))).toBeUndefined();
  });

  it("strict promote: the learner counts as started, the voters must make up the rest of the quorum", async () => {
    await h.apply((tx, c) => {
      c.add(tx, member(1));
      c.add(tx, member(2, { started: false }));
      c.add(tx, member(3, { started: false }));
      c.add(tx, member(4, { learner: true, started: false }));
    });
    // 4 voters after, quorum 3; started 1 + learner = 2
    expect(codeOf(() => h.cluster.validatePromote(4n, true, { strictReconfigCheck: true }))).toBe(
      "MEMBER_NOT_ENOUGH_STARTED",
    );
    await h.apply((tx, c) => c.publish(tx, 2n, "m2", []));
    expect(codeOf(() => h.cluster.validatePromote(4n, true, { strictReconfigCheck: true }))).toBeUndefined();
  });
});

describe("apply side and persistence", () => {
  it("add, publish, update, promote and remove are stored and reloaded after reopen", async () => {
    await threeVoters();
    const learner = newMemberForAdd(["http://127.0.0.1:2399 "], { isLearner: true, nowUnixSeconds: 1_700_000_000 });
    expect(learner.id).toBe(computeMemberId(["http://127.0.0.1:2399"], "", 1_700_000_000));
    h.cluster.validateAdd(learner, allActive(1n));
    await h.apply((tx, c) => c.add(tx, learner));
    expect(h.cluster.isStarted(learner.id)).toBe(false);
    await h.apply((tx, c) => c.publish(tx, learner.id, "late", ["http://127.0.0.1:3399"]));
    await h.apply((tx, c) => c.update(tx, 2n, ["http://127.0.0.1:2392", "http://127.0.0.1:2391"]));
    await h.apply((tx, c) => c.promote(tx, learner.id));
    await h.apply((tx, c) => c.remove(tx, 3n));
    const before = h.cluster.members();
    await h.reopen();
    expect(h.cluster.members()).toEqual(before);
    expect(h.cluster.voters()).toEqual([1n, 2n, learner.id].sort((a, b) => (a < b ? -1 : 1)));
    expect(h.cluster.learners()).toEqual([]);
    expect(h.cluster.member(2n)?.peerUrls).toEqual(["http://127.0.0.1:2391", "http://127.0.0.1:2392"]);
    expect(h.cluster.member(learner.id)).toMatchObject({
      name: "late",
      clientUrls: ["http://127.0.0.1:3399"],
      isLearner: false,
    });
    expect(h.cluster.isRemoved(3n)).toBe(true);
    expect(h.cluster.member(3n)).toBeUndefined();
  });

  it("stores JSON keyed by the 8-byte big-endian id, and a removed marker", async () => {
    const big = { ...member(1), id: 0xfedcba9876543210n };
    await h.apply((tx, c) => {
      c.add(tx, big);
      c.add(tx, member(2));
      c.remove(tx, 2n);
    });
    const raw = h.backend.readNow((v) => v.get(MEMBERS_BUCKET, memberKey(big.id)));
    expect(raw, "member stored under its 8-byte key").toBeDefined();
    expect(JSON.parse(new TextDecoder().decode(raw))).toMatchObject({ id: "fedcba9876543210", peerURLs: big.peerUrls });
    expect(Buffer.from(memberKey(big.id)).toString("hex")).toBe("fedcba9876543210");
    expect(h.backend.readNow((v) => v.get(REMOVED_MEMBERS_BUCKET, memberKey(2n)))).toBeDefined();
    await h.reopen();
    expect(h.cluster.member(big.id)?.id).toBe(big.id);
  });

  it("a late publish from a removed member is ignored; apply-side misuse throws", async () => {
    await threeVoters();
    await h.apply((tx, c) => c.remove(tx, 3n));
    await h.apply((tx, c) => c.publish(tx, 3n, "ghost", []));
    expect(h.cluster.member(3n)).toBeUndefined();
    await expect(h.apply((tx, c) => c.add(tx, member(3)))).rejects.toThrow(/exists or was removed/);
    await expect(h.apply((tx, c) => c.promote(tx, 1n))).rejects.toThrow(/not a learner/);
    await expect(h.apply((tx, c) => c.publish(tx, 99n, "x", []))).rejects.toThrow(/unknown/);
    await expect(h.apply((tx, c) => c.remove(tx, 3n))).rejects.toThrow(/already removed/);
  });

  it("updating a learner's peer URLs keeps it a learner (etcd 3.4 would store it as a voter)", async () => {
    await h.apply((tx, c) => {
      c.add(tx, member(1));
      c.add(tx, member(2, { learner: true }));
    });
    h.cluster.validateUpdate(2n, ["http://127.0.0.1:2999"]);
    await h.apply((tx, c) => c.update(tx, 2n, ["http://127.0.0.1:2999"]));
    await h.reopen();
    expect(h.cluster.learners()).toEqual([2n]);
    expect(h.cluster.member(2n)?.peerUrls).toEqual(["http://127.0.0.1:2999"]);
  });

  it("an empty backend loads as an empty cluster", () => {
    expect(h.backend.readNow((v) => Cluster.load(v)).members()).toEqual([]);
  });
});
