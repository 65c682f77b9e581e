// Model-based test (fast-check, fixed seed): random grant/revoke/attach/detach/checkpoint/reload sequences run
// against the lessor over a real LMDB backend and against a plain Map model. After every step the lessor agrees
// with the model on which leases exist, their granted TTLs, each key's lease and each lease's keys, and the
// errors it throws; a reload (backend reopened, Lessor.load, keys re-attached as the server does from mvcc)
// restores the same leases with their checkpointed remaining TTLs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";

import { Backend } from "../../core/backend/backend.js";
import { isEtcdError } from "../../core/errors.js";
import { LEASE_BUCKET, Lessor, type LessorOptions } from "../../core/lease/lessor.js";

const SEED = 6_2026;
const MIN_TTL = 3;
const IDS = [1n, 2n, 3n, 4n, -5n, 0x7fff_ffff_ffff_ffffn] as const;
const KEYS = ["a", "b", "c", "d", "\u0000", "k/ü"] as const;

type Cmd =
  | { readonly kind: "grant"; readonly id: bigint; readonly ttl: number }
  | { readonly kind: "revoke"; readonly id: bigint }
  | { readonly kind: "attach"; readonly id: bigint; readonly key: string }
  | { readonly kind: "detach"; readonly key: string }
  | { readonly kind: "checkpoint"; readonly id: bigint; readonly remaining: number }
  | { readonly kind: "reload" };

interface ModelLease {
  ttl: number;
  remaining: number;
}

class Model {
  readonly leases = new Map<bigint, ModelLease>();
  readonly keyLease = new Map<string, bigint>();
}

const idArb = fc.constantFrom(...IDS);
const keyArb = fc.constantFrom(...KEYS);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("grant" as const), id: idArb, ttl: fc.integer({ min: -2, max: 100 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("revoke" as const), id: idArb }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("attach" as const), id: idArb, key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("detach" as const), key: keyArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("checkpoint" as const),
      id: idArb,
      remaining: fc.integer({ min: 0, max: 100 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "reload" as const }) },
);

const enc = (s: string): Uint8Array => Buffer.from(s, "utf8");
const dec = (b: Uint8Array): string => Buffer.from(b).toString("utf8");
const opts: LessorOptions = { minTtlSeconds: MIN_TTL, now: () => 0 };

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "ok";
  } catch (err) {
    return isEtcdError(err) ? err.code : `unexpected ${String(err)}`;
  }
}

interface World {
  backend: Backend;
  lessor: Lessor;
  readonly dir: string;
}

async function step(w: World, m: Model, c: Cmd): Promise<void> {
  const l = w.lessor;
  switch (c.kind) {
    case "grant": {
      const want = m.leases.has(c.id) ? "LEASE_EXIST" : "ok";
      if (want === "ok") m.leases.set(c.id, { ttl: Math.max(c.ttl, MIN_TTL), remaining: 0 });
      expect(await errorOf(() => w.backend.batch(undefined, (tx) => l.grant(tx, c.id, c.ttl))), `grant ${c.id}`).toBe(
        want,
      );
      return;
    }
    case "revoke": {
      const want = m.leases.has(c.id)
        ? [...m.keyLease]
            .filter(([, id]) => id === c.id)
            .map(([k]) => k)
            .sort()
        : "LEASE_NOT_FOUND";
      let got: string[] | string = "ok";
      got = await errorOf(async () => {
        got = (await w.backend.batch(undefined, (tx) => l.revoke(tx, c.id))).map(dec).sort();
      }).then((e) => (e === "ok" ? got : e));
      expect(got, `revoke ${c.id}`).toEqual(want);
      if (want !== "LEASE_NOT_FOUND") {
        m.leases.delete(c.id);
        for (const k of want) m.keyLease.delete(k);
      }
      return;
    }
    case "attach": {
      const want = m.leases.has(c.id) ? "ok" : "LEASE_NOT_FOUND";
      if (want === "ok") m.keyLease.set(c.key, c.id);
      expect(await errorOf(() => l.attach(c.id, enc(c.key))), `attach ${c.key} to ${c.id}`).toBe(want);
      return;
    }
    case "detach":
      m.keyLease.delete(c.key);
      l.detach(enc(c.key));
      return;
    case "checkpoint": {
      const ml = m.leases.get(c.id);
      if (ml !== undefined) ml.remaining = c.remaining;
      await w.backend.batch(undefined, (tx) => l.checkpoint(tx, c.id, c.remaining));
      return;
    }
    case "reload":
      await reload(w, m);
      return;
  }
}

/** Reopens the backend and loads a new lessor; the server re-attaches keys from mvcc (here: from the model). */
async function reload(w: World, m: Model): Promise<void> {
  await w.backend.close();
  w.backend = Backend.open(w.dir, { buckets: [LEASE_BUCKET], readWorkers: 0, syncIntervalMs: 0 });
  w.lessor = Lessor.load(
    w.backend.readNow((v) => v),
    opts,
  );
  for (const [k, id] of m.keyLease) w.lessor.attach(id, enc(k));
  w.lessor.promote(0);
  for (const [id, ml] of m.leases) {
    expect(w.lessor.timeToLive(id, false)?.ttl, `lease ${id} after reload`).toBe(
      ml.remaining > 0 ? ml.remaining : ml.ttl,
    );
  }
}

function check(l: Lessor, m: Model): void {
  expect([...l.leases()].sort(), "lease ids").toEqual([...m.leases.keys()].sort());
  expect(l.size).toBe(m.leases.size);
  for (const id of IDS) {
    const ml = m.leases.get(id);
    const st = l.timeToLive(id, true);
    expect(l.has(id), `has ${id}`).toBe(ml !== undefined);
    expect(st?.grantedTtl, `granted ttl of ${id}`).toBe(ml?.ttl);
    const keys = [...m.keyLease]
      .filter(([, lid]) => lid === id)
      .map(([k]) => k)
      .sort();
    expect(st === undefined ? [] : st.keys.map(dec).sort(), `keys of ${id}`).toEqual(keys);
  }
  for (const k of KEYS) expect(l.leaseOfKey(enc(k)), `lease of ${JSON.stringify(k)}`).toBe(m.keyLease.get(k) ?? 0n);
}

describe("lessor against a Map model", () => {
  it("agrees on leases, TTLs, attachments and errors, through reloads", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 5, maxLength: 60 }), async (cmds) => {
        const dir = mkdtempSync(join(tmpdir(), "lessor-model-"));
        dirs.push(dir);
        const backend = Backend.open(dir, { buckets: [LEASE_BUCKET], readWorkers: 0, syncIntervalMs: 0 });
        const w: World = { backend, lessor: new Lessor(opts), dir };
        const m = new Model();
        try {
          for (const c of cmds) {
            await step(w, m, c);
            check(w.lessor, m);
          }
          await reload(w, m);
          check(w.lessor, m);
        } finally {
          await w.backend.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { seed: SEED, numRuns: 80 },
    );
  });
});
