// Proves the KV store's side of leases: a put naming a lease the lessor does not know is refused whole
// (etcd's "requested lease not found"), in a txn too; attach/detach reach the lessor in apply order (so a revoke
// later in the same batch sees keys attached before it); an effect (a lease grant or revoke) commits in the same
// backend transaction as the batch, and a revoke's keys are deleted at one revision; a reopened store lists the
// live keys with leases so a restarted lessor can rebuild its attachments.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { WriteView } from "../../core/backend/read_view.js";
import { EtcdError, isEtcdError } from "../../core/errors.js";
import { decodeKeyValue } from "../../core/mvcc/kv_codec.js";
import { KvStore, type LeaseAttacher } from "../../core/mvcc/kv_store.js";
import type { Effect, WriteResponse } from "../../core/mvcc/types.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const BUCKET = "test_leases";

/** A lessor reduced to its attachments: lease → keys, key → lease. */
class FakeLessor implements LeaseAttacher {
  readonly keys = new Map<bigint, Set<string>>();
  readonly owner = new Map<string, bigint>();
  has(id: bigint): boolean {
    return this.keys.has(id);
  }
  attach(id: bigint, key: Uint8Array): void {
    this.detach(key);
    this.keys.get(id)?.add(dec(key));
    this.owner.set(dec(key), id);
  }
  detach(key: Uint8Array): void {
    const old = this.owner.get(dec(key));
    if (old !== undefined) this.keys.get(old)?.delete(dec(key));
    this.owner.delete(dec(key));
  }
  grant(id: bigint): Effect {
    return {
      run: (tx: WriteView) => {
        if (this.keys.has(id)) throw new EtcdError("LEASE_EXIST");
        tx.put(BUCKET, enc(id.toString()), enc("granted"));
        this.keys.set(id, new Set());
        return { value: id };
      },
    };
  }
  revoke(id: bigint): Effect {
    return {
      run: (tx: WriteView) => {
        const keys = this.keys.get(id);
        if (keys === undefined) throw new EtcdError("LEASE_NOT_FOUND");
        tx.del(BUCKET, enc(id.toString()));
        this.keys.delete(id);
        return { deleteKeys: [...keys].map(enc) };
      },
    };
  }
}

let dir: string;
let store: KvStore;
let lessor: FakeLessor;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "mvcc-lease-"));
  store = KvStore.open(dir, { readWorkers: 0, extraBuckets: [BUCKET] });
  lessor = new FakeLessor();
  store.setLeaseAttacher(lessor);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function effectOf(r: WriteResponse | EtcdError): { revision: number; deleted: number; value: unknown } {
  if (r instanceof EtcdError) throw r;
  if (!("effect" in r)) throw new Error(`not an effect response: ${Object.keys(r).join()}`);
  return r.effect;
}

describe("lease checks and attachments", () => {
  it("refuses a put or a txn naming an unknown lease, and writes nothing", async () => {
    const before = store.revision;
    const [put, txn] = await store.write([
      { put: { key: enc("a"), value: enc("1"), lease: 7n } },
      {
        txn: {
          compare: [],
          success: [
            { put: { key: enc("b"), value: enc("2") } },
            { put: { key: enc("c"), value: enc("3"), lease: 7n } },
          ],
          failure: [],
        },
      },
    ]);
    expect(isEtcdError(put, "LEASE_NOT_FOUND"), String(put)).toBe(true);
    expect(isEtcdError(txn, "LEASE_NOT_FOUND"), String(txn)).toBe(true);
    expect(store.revision).toBe(before);
    expect((await store.range({ key: enc("a"), rangeEnd: enc("z") })).count).toBe(0);
  });

  it("grants in the same batch as the put that uses the lease, and a revoke later in it deletes that key", async () => {
    const [grant, put, other, revoke] = await store.write([
      { effect: lessor.grant(5n) },
      { put: { key: enc("k1"), value: enc("v"), lease: 5n } },
      { put: { key: enc("k2"), value: enc("v"), lease: 5n } },
      { effect: lessor.revoke(5n) },
    ]);
    expect(effectOf(grant ?? new EtcdError("STOPPED")).value).toBe(5n);
    expect(put instanceof EtcdError || other instanceof EtcdError).toBe(false);
    const rev = effectOf(revoke ?? new EtcdError("STOPPED"));
    expect(rev.deleted).toBe(2);
    expect(rev.revision, "both keys deleted at one revision after the two puts").toBe(4);
    expect(store.revision).toBe(4);
    expect((await store.range({ key: enc("k"), rangeEnd: enc("l") })).count).toBe(0);
    expect(lessor.owner.size).toBe(0);
  });

  it("moves a key between leases on re-put, and detaches it on delete or a put without lease", async () => {
    await store.write([{ effect: lessor.grant(1n) }, { effect: lessor.grant(2n) }]);
    await store.put({ key: enc("x"), value: enc("v"), lease: 1n });
    await store.put({ key: enc("y"), value: enc("v"), lease: 1n });
    await store.put({ key: enc("x"), value: enc("w"), lease: 2n });
    expect([...(lessor.keys.get(1n) ?? [])]).toEqual(["y"]);
    expect([...(lessor.keys.get(2n) ?? [])]).toEqual(["x"]);
    await store.put({ key: enc("x"), value: enc("u") });
    await store.deleteRange({ key: enc("y") });
    expect(lessor.owner.size).toBe(0);
    // ignore_lease keeps the key on its lease.
    await store.put({ key: enc("z"), value: enc("v"), lease: 2n });
    await store.put({ key: enc("z"), value: enc("w"), ignoreLease: true });
    expect(lessor.owner.get("z")).toBe(2n);
  });

  it("a refused effect writes nothing, and the effect's own bucket commits with the batch", async () => {
    await store.write([{ effect: lessor.grant(9n) }]);
    const [again] = await store.write([{ effect: lessor.grant(9n) }]);
    expect(isEtcdError(again, "LEASE_EXIST"), String(again)).toBe(true);
    const stored = store.backend.readNow((v) => v.get(BUCKET, enc("9")));
    expect(stored === undefined ? undefined : dec(stored)).toBe("granted");
  });

  it("lists live leased keys after a reopen, without deleted or overwritten ones", async () => {
    await store.write([{ effect: lessor.grant(3n) }]);
    await store.put({ key: enc("p"), value: enc("v"), lease: 3n });
    await store.put({ key: enc("q"), value: enc("v"), lease: 3n });
    await store.put({ key: enc("r"), value: enc("v"), lease: 3n });
    await store.put({ key: enc("q"), value: enc("v") });
    await store.deleteRange({ key: enc("r") });
    await store.close();
    store = KvStore.open(dir, { readWorkers: 0, extraBuckets: [BUCKET] });
    const live = store.liveLeasedKeys().map((e) => `${dec(e.key)}@${e.lease}`);
    expect(live).toEqual(["p@3"]);
    const kv = await store.range({ key: enc("p") });
    expect(decodeKeyValue(kv.kvs[0] ?? new Uint8Array()).lease).toBe(3n);
  });
});
