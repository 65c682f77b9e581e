// Proves the applier's outcome is a function of the committed log alone: the same log (puts, deletes, txns, leases,
// auth changes with writes checked against them, compactions, alarms, requests that fail half-way or throw, an
// undecodable entry) applied with random batch boundaries and random restarts between batches — with already
// applied entries handed out again after a restart, as Raft does — leaves a byte-identical backend (every bucket,
// and HashKV) and gives every request the same answer as applying it one entry per batch.
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CompareResult, CompareTarget, type RequestOp } from "../../core/mvcc/types.js";
import type { InternalRequest } from "../../core/server/request_codec.js";
import type { Entry } from "../../core/raft/index.js";
import { ApplyHarness, answerText, entriesOf } from "./apply_harness.js";

/** Hundreds of small commits and syncs per run: on tmpfs when there is one, so the test is about apply, not the disk. */
const MEMORY_DIR = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const b = (s: string): Uint8Array => new TextEncoder().encode(s);
type LogItem = Parameters<typeof entriesOf>[0][number];

const key = fc.constantFrom("a", "a1", "a2", "b", "c");
const lease = fc.constantFrom(0n, 5n, 6n);
const who = fc.constantFrom(
  undefined,
  { username: "alice", revision: 1_000_000 },
  { username: "root", revision: 1_000_000 },
  { username: "alice", revision: 1 }, // an old token once auth has moved on
);
const put = fc
  .record({ k: key, v: fc.string({ maxLength: 3 }), l: lease })
  .map(({ k, v, l }) => ({ put: { key: b(k), value: b(v), lease: l } }));
const op: fc.Arbitrary<RequestOp> = fc.oneof(
  put,
  key.map((k) => ({ deleteRange: { key: b(k) } })),
  key.map((k) => ({ range: { key: b(k) } })),
);

const kvRequest: fc.Arbitrary<InternalRequest> = fc.oneof(
  put,
  fc
    .record({ k: key, all: fc.boolean() })
    .map(({ k, all }) => ({ deleteRange: all ? { key: b(k), rangeEnd: b("z") } : { key: b(k), prevKv: true } })),
  fc.record({ k: key, ver: fc.integer({ min: 0, max: 3 }), s: op, f: op }).map(
    ({ k, ver, s, f }): InternalRequest => ({
      txn: {
        compare: [{ key: b(k), target: CompareTarget.VERSION, result: CompareResult.EQUAL, version: ver }],
        success: [s],
        failure: [f],
      },
    }),
  ),
  // Fails half-way with an etcd error: the put is written before the range finds its revision in the future.
  fc.record({ k: key, rev: fc.integer({ min: 1, max: 60 }) }).map(({ k, rev }) => ({
    txn: {
      compare: [],
      success: [{ put: { key: b(k), value: b("t") } }, { range: { key: b("q"), revision: rev } }],
      failure: [],
    },
  })),
  // Throws a TypeError after its first put has been written.
  key.map(
    (k) =>
      ({
        txn: {
          compare: [],
          success: [{ put: { key: b(k), value: b("x") } }, { put: { key: b("zz"), value: 7 } }],
          failure: [],
        },
      }) as unknown as InternalRequest,
  ),
  fc.integer({ min: 1, max: 40 }).map((rev) => ({ compact: { revision: rev } })),
);

const otherRequest: fc.Arbitrary<InternalRequest> = fc.oneof(
  fc
    .record({ id: fc.constantFrom(5n, 6n), ttl: fc.integer({ min: 1, max: 100 }) })
    .map(({ id, ttl }) => ({ leaseGrant: { id, ttl } })),
  fc.constantFrom(5n, 6n).map((id) => ({ leaseRevoke: { id } })),
  fc.constantFrom(5n, 6n).map((id) => ({ leaseCheckpoint: { checkpoints: [{ id, remainingTtl: 3 }] } })),
  fc.constantFrom(
    { alarm: { action: 1 as const, memberId: 1n, type: 1 } },
    { alarm: { action: 2 as const, memberId: 0n, type: 0 } },
    { auth: { op: "enable" as const } },
    { auth: { op: "disable" as const } },
    { auth: { op: "userRevokeRole" as const, name: "alice", role: "w" } },
    { auth: { op: "userGrantRole" as const, name: "alice", role: "w" } },
    { auth: { op: "roleRevokePermission" as const, name: "w", key: b("a"), rangeEnd: b("b") } },
    { auth: { op: "roleGrantPermission" as const, name: "w", perm: { permType: 2, key: b("a"), rangeEnd: b("b") } } },
  ),
);

/** Users and roles the log starts with (auth still off): root, and alice with write on [a, b). */
const SETUP: InternalRequest[] = [
  { auth: { op: "userAdd", name: "root", hash: undefined, noPassword: true } },
  { auth: { op: "roleAdd", name: "root" } },
  { auth: { op: "userGrantRole", name: "root", role: "root" } },
  { auth: { op: "roleAdd", name: "w" } },
  { auth: { op: "roleGrantPermission", name: "w", perm: { permType: 2, key: b("a"), rangeEnd: b("b") } } },
  { auth: { op: "userAdd", name: "alice", hash: undefined, noPassword: true } },
  { auth: { op: "userGrantRole", name: "alice", role: "w" } },
];

const item: fc.Arbitrary<LogItem> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({ req: kvRequest, auth: who })
      .map(({ req, auth }) => (auth === undefined ? req : { req, auth })),
  },
  { weight: 3, arbitrary: otherRequest },
  { weight: 1, arbitrary: fc.constant({ raw: Uint8Array.of(0xc1) }) },
);

/** A plan: where the log is cut into batches, and after which batches the member restarts. */
const plan = fc.record({
  log: fc.array(item, { minLength: 10, maxLength: 45 }),
  cuts: fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 12 }),
  restarts: fc.array(fc.boolean(), { minLength: 13, maxLength: 13 }),
  replay: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 13, maxLength: 13 }),
});

interface Outcome {
  readonly answers: string[];
  readonly digest: { all: number; hashKV: number; revision: number };
}

async function run(
  entries: readonly Entry[],
  batches: readonly Entry[][],
  restarts: readonly boolean[],
  replay: readonly number[],
): Promise<Outcome> {
  const h = await ApplyHarness.create(MEMORY_DIR);
  try {
    let applied = 0;
    for (const [i, batch] of batches.entries()) {
      // After a restart Raft may hand out again entries the backend already has: they must change nothing.
      const again = restarts[i - 1] === true ? entries.slice(Math.max(0, applied - (replay[i] ?? 0)), applied) : [];
      await h.apply([...again, ...batch]);
      applied += batch.length;
      if (restarts[i] === true) await h.restart();
    }
    return { answers: entries.map((e) => answerText(h.answers.get(BigInt(e.index)))), digest: await h.digest() };
  } finally {
    await h.destroy();
  }
}

function split(entries: readonly Entry[], cuts: readonly number[]): Entry[][] {
  const at = [...new Set(cuts.map((c) => c % entries.length).filter((c) => c > 0))].sort((x, y) => x - y);
  const out: Entry[][] = [];
  let from = 0;
  for (const c of [...at, entries.length]) {
    out.push(entries.slice(from, c));
    from = c;
  }
  return out;
}

/** SOAK=1 runs many more logs from a seed of its own (APPLY_SEED to replay one). */
const SOAK = process.env["SOAK"] === "1";
const SEED = Number(process.env["APPLY_SEED"] ?? (SOAK ? Date.now() % 1_000_000 : 20261207));
const RUNS = SOAK ? 3000 : 150;

describe("apply determinism", () => {
  it(
    "batch boundaries and restarts never change the backend or an answer",
    async () => {
      let runs = 0;
      let failedHalfway = 0;
      await fc.assert(
        fc.asyncProperty(plan, async ({ log, cuts, restarts, replay }) => {
          const entries = entriesOf([...SETUP, ...log]);
          const one = await run(
            entries,
            entries.map((e) => [e]),
            [],
            [],
          );
          const mixed = await run(entries, split(entries, cuts), restarts, replay);
          expect(mixed.answers).toEqual(one.answers);
          expect(mixed.digest).toEqual(one.digest);
          runs++;
          failedHalfway += one.answers.filter((a) => a === "error:APPLY_FAILED" || a === "error:FUTURE_REV").length;
        }),
        { seed: SEED, numRuns: RUNS },
      );
      expect(runs).toBe(RUNS);
      // The logs did exercise the half-way failures the property is about.
      expect(failedHalfway).toBeGreaterThan(20);
    },
    SOAK ? 1_800_000 : 120_000,
  );
});
