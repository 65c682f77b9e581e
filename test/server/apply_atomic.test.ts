// Proves the apply path is total and atomic per request: a committed request that fails half-way (an etcd error
// raised after some of its writes, or anything else thrown) leaves none of its writes, live-key changes or lease
// attachments behind, answers a deterministic error, and the requests after it in the same batch apply as if it
// had never been there; an undecodable entry is refused, never fatal; auth changes and alarms earlier in a batch
// are seen by the requests after them; a lease revoke deletes its keys in the same order on every member.
import { afterEach, describe, expect, it } from "vitest";
import { EtcdError } from "../../core/errors.js";
import { ConfChangeType, EntryType, encodeConfChange } from "../../core/raft/index.js";
import { recordedOutcome } from "../../core/server/membership_apply.js";
import type { InternalRequest } from "../../core/server/request_codec.js";
import { ApplyHarness, answerText, entriesOf } from "./apply_harness.js";

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const harnesses: ApplyHarness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.destroy();
});

async function harness(): Promise<ApplyHarness> {
  const h = await ApplyHarness.create();
  harnesses.push(h);
  return h;
}

async function get(h: ApplyHarness, key: string): Promise<string[]> {
  const r = await h.kv.range({ key: b(key) });
  return r.kvs.map((kv) => Buffer.from(kv).toString("hex"));
}

describe("per-request atomicity inside a batch", () => {
  it("a txn refused after its first put (a range at a future revision) leaves nothing, and the next put is unharmed", async () => {
    const h = await harness();
    const reqs: InternalRequest[] = [
      {
        txn: {
          compare: [],
          success: [{ put: { key: b("a"), value: b("1") } }, { range: { key: b("x"), revision: 1000 } }],
          failure: [],
        },
      },
      { put: { key: b("b"), value: b("2") } },
    ];
    await h.apply(entriesOf(reqs));
    expect(answerText(h.answers.get(1n))).toBe("error:FUTURE_REV");
    expect(await get(h, "a")).toEqual([]);
    expect((await h.kv.range({ key: b("b") })).kvs.length).toBe(1);
    expect(h.kv.revision).toBe(2);
    // The store's history agrees: nothing at revision 2 but b.
    expect((await h.kv.range({ key: b("\0"), rangeEnd: b("\0"), revision: 2 })).count).toBe(1);
  });

  it("a txn that throws something other than an etcd error half-way answers APPLY_FAILED and writes nothing", async () => {
    const h = await harness();
    // A value that is not bytes gets past the wire only by a bug; the txn's first put has already been written then.
    const poison = {
      txn: {
        compare: [],
        success: [{ put: { key: b("p1"), value: b("ok") } }, { put: { key: b("p2"), value: 12345 } }],
        failure: [],
      },
    } as unknown as InternalRequest;
    await h.apply(
      entriesOf([{ leaseGrant: { id: 5n, ttl: 60 } }, poison, { put: { key: b("after"), value: b("v"), lease: 5n } }]),
    );
    expect(answerText(h.answers.get(2n))).toBe("error:APPLY_FAILED");
    expect(h.warnings.some((w) => w.includes("could not be applied"))).toBe(true);
    expect(await get(h, "p1")).toEqual([]);
    expect((await h.kv.range({ key: b("after") })).kvs[0]).toBeDefined();
    expect(h.lessor.timeToLive(5n, true)?.keys.map((k) => Buffer.from(k).toString())).toEqual(["after"]);
    // A restart rebuilds the same state from disk.
    const before = await h.digest();
    await h.restart();
    expect(await h.digest()).toEqual(before);
    expect(await get(h, "p1")).toEqual([]);
  });

  it("a put under a lease inside a failed txn does not attach the key to the lease", async () => {
    const h = await harness();
    const txn = {
      txn: {
        compare: [],
        success: [{ put: { key: b("k"), value: b("v"), lease: 9n } }, { range: { key: b("x"), revision: 99 } }],
        failure: [],
      },
    };
    const entries = entriesOf([{ leaseGrant: { id: 9n, ttl: 60 } }, txn, { leaseRevoke: { id: 9n } }]);
    await h.apply(entries.slice(0, 2));
    expect(answerText(h.answers.get(2n))).toBe("error:FUTURE_REV");
    expect(h.lessor.timeToLive(9n, true)?.keys).toEqual([]);
    await h.apply(entries.slice(2));
    const revoke = h.answers.get(3n);
    expect(revoke instanceof EtcdError).toBe(false);
    expect(answerText(revoke)).toContain('"deleted":0');
  });

  it("a committed txn over etcd's default op and size bounds applies: the bounds are the proposer's flags", async () => {
    const h = await harness();
    const ops = Array.from({ length: 200 }, (_, i) => ({ put: { key: b(`k${i}`), value: new Uint8Array(10_000) } }));
    await h.apply(entriesOf([{ txn: { compare: [], success: ops, failure: [] } }]));
    expect(answerText(h.answers.get(1n))).not.toContain("error");
    expect((await h.kv.range({ key: b("k"), rangeEnd: b("l") })).count).toBe(200);
  });

  it("an entry that is not an etcd-ts payload is refused and the batch goes on", async () => {
    const h = await harness();
    await h.apply(entriesOf([{ raw: Uint8Array.of(0xc1, 0xff, 0x00) }, { put: { key: b("k"), value: b("v") } }]));
    expect((await h.kv.range({ key: b("k") })).kvs.length).toBe(1);
    expect(h.kv.consistentIndex()).toBe(2);
    expect(h.warnings.some((w) => w.includes("entry 1"))).toBe(true);
  });
});

describe("a lease revoke", () => {
  it("deletes its keys in key order, so a member restarted before the revoke stores the same tombstones", async () => {
    const log = entriesOf([
      { leaseGrant: { id: 5n, ttl: 60 } },
      { put: { key: b("b"), value: b("1"), lease: 5n } },
      { put: { key: b("a"), value: b("1"), lease: 5n } },
      { leaseRevoke: { id: 5n } },
    ]);
    const straight = await harness();
    await straight.apply(log);
    const restarted = await harness();
    await restarted.apply(log.slice(0, 3));
    await restarted.restart();
    await restarted.apply(log.slice(3));
    expect(await restarted.digest()).toEqual(await straight.digest());
  });
});

describe("a conf change that cannot be applied", () => {
  it("is refused and recorded as refused, so Raft sees the same no-op change when it passes by again", async () => {
    const h = await harness();
    const cc = { type: ConfChangeType.AddNode, nodeId: 0x42n, context: Uint8Array.of(1, 2, 3) };
    await h.apply([
      { term: 1, index: 1, type: EntryType.ConfChange, data: encodeConfChange(cc) },
      ...entriesOf([{ put: { key: b("k"), value: b("v") } }], 2),
    ]);
    expect(h.raftConfChanges).toEqual([{ ...cc, nodeId: 0n }]);
    expect((await h.kv.range({ key: b("k") })).kvs.length).toBe(1);
    expect(h.kv.backend.readNow((v) => recordedOutcome(v, 1))).toBe(false);
  });

  it("one whose bytes do not decode is refused the same way and recorded as refused", async () => {
    const h = await harness();
    await h.apply([
      { term: 1, index: 1, type: EntryType.ConfChange, data: Uint8Array.of(0xff, 0xff, 0xff) },
      ...entriesOf([{ put: { key: b("k"), value: b("v") } }], 2),
    ]);
    expect(h.raftConfChanges.map((c) => c.nodeId)).toEqual([0n]);
    expect((await h.kv.range({ key: b("k") })).kvs.length).toBe(1);
    expect(h.kv.backend.readNow((v) => recordedOutcome(v, 1))).toBe(false);
  });
});

describe("apply-time checks in log order", () => {
  const root = { username: "root", revision: 1_000_000 };
  const alice = { username: "alice", revision: 1_000_000 };
  const setup: InternalRequest[] = [
    { auth: { op: "userAdd", name: "root", hash: undefined, noPassword: true } },
    { auth: { op: "roleAdd", name: "root" } },
    { auth: { op: "userGrantRole", name: "root", role: "root" } },
    { auth: { op: "roleAdd", name: "w" } },
    { auth: { op: "roleGrantPermission", name: "w", perm: { permType: 2, key: b("a"), rangeEnd: b("b") } } },
    { auth: { op: "userAdd", name: "alice", hash: undefined, noPassword: true } },
    { auth: { op: "userGrantRole", name: "alice", role: "w" } },
    { auth: { op: "enable" } },
  ];

  it("a write after a permission revoke in the same batch is denied, and after a grant it passes", async () => {
    const h = await harness();
    await h.apply(entriesOf(setup));
    const batch = entriesOf(
      [
        { req: { put: { key: b("a1"), value: b("1") } }, auth: alice },
        { req: { auth: { op: "userRevokeRole", name: "alice", role: "w" } }, auth: root },
        { req: { put: { key: b("a2"), value: b("2") } }, auth: { ...alice } },
        { req: { auth: { op: "userGrantRole", name: "alice", role: "w" } }, auth: root },
        { req: { put: { key: b("a3"), value: b("3") } }, auth: alice },
      ],
      setup.length + 1,
    );
    await h.apply(batch);
    const id = (i: number): bigint => BigInt(i + 1);
    expect(answerText(h.answers.get(id(0)))).not.toContain("error");
    expect(answerText(h.answers.get(id(2)))).toBe("error:PERMISSION_DENIED");
    expect(answerText(h.answers.get(id(4)))).not.toContain("error");
    expect(await get(h, "a2")).toEqual([]);
    expect((await h.kv.range({ key: b("a3") })).kvs.length).toBe(1);
  });

  it("a put after a NOSPACE alarm in the same batch is refused; after the disarm it passes", async () => {
    const h = await harness();
    await h.apply(
      entriesOf([
        { alarm: { action: 1, memberId: 1n, type: 1 } },
        { put: { key: b("x"), value: b("1") } },
        { alarm: { action: 2, memberId: 0n, type: 0 } },
        { put: { key: b("y"), value: b("1") } },
      ]),
    );
    expect(answerText(h.answers.get(2n))).toBe("error:NO_SPACE");
    expect(answerText(h.answers.get(4n))).not.toContain("error");
  });

  it("while CORRUPT is raised, KV and lease writes are refused with etcd's corrupt error", async () => {
    const h = await harness();
    await h.apply(
      entriesOf([
        { alarm: { action: 1, memberId: 1n, type: 2 } },
        { put: { key: b("x"), value: b("1") } },
        { deleteRange: { key: b("x") } },
        { leaseGrant: { id: 3n, ttl: 10 } },
        { compact: { revision: 1 } },
        { alarm: { action: 2, memberId: 1n, type: 2 } },
        { put: { key: b("x"), value: b("1") } },
      ]),
    );
    for (const id of [2n, 3n, 4n, 5n]) expect(answerText(h.answers.get(id))).toBe("error:CORRUPT");
    expect(new EtcdError("CORRUPT").message).toBe("etcdserver: corrupt cluster");
    expect(answerText(h.answers.get(7n))).not.toContain("error");
  });
});
