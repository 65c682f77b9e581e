// Proves that a worker Range longer than one snapshot chunk (READ_WORKER_RENEW_ENTRIES) answers exactly at the
// revision it was issued at while commits keep updating, deleting and re-creating keys all over its span: the
// worker moves to newer snapshots as it scans, and what they add (newer revisions) never shows.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { READ_WORKER_RENEW_ENTRIES } from "../../core/backend/worker_pool.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import type { WriteRequest } from "../../core/mvcc/types.js";

const KEYS = READ_WORKER_RENEW_ENTRIES * 3 + 17;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const keyOf = (i: number): Uint8Array => enc(`k/${String(i).padStart(6, "0")}`);
let dir: string;
let store: KvStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "worker-range-"));
  store = KvStore.open(dir, { readWorkers: 1 });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Commit n: deletes, updates and re-creates keys spread over the whole span. */
function churn(n: number): WriteRequest[] {
  const reqs: WriteRequest[] = [];
  for (let j = 0; j < 20; j++) {
    const i = (n * 97 + j * 211) % KEYS;
    reqs.push(j % 3 === 0 ? { deleteRange: { key: keyOf(i) } } : { put: { key: keyOf(i), value: enc(`v${n}-${j}`) } });
  }
  return reqs;
}

describe("worker ranges over many snapshots", () => {
  it(`a ${KEYS}-key range issued at R returns R's state while commits churn its span`, async () => {
    let ci = 0;
    for (let i = 0; i < KEYS; i += 500) {
      const reqs: WriteRequest[] = [];
      for (let j = i; j < Math.min(KEYS, i + 500); j++) reqs.push({ put: { key: keyOf(j), value: enc(`v-${j}`) } });
      await store.write(reqs, ++ci);
    }
    await store.write(churn(0), ++ci); // some tombstones and second revisions before R too
    let done = false;
    const span = { key: enc("k/"), rangeEnd: enc("k0") };
    const pending = store.range(span, { worker: true }).finally(() => (done = true));
    let commits = 0;
    await store.write(churn(1), ++ci); // the range cannot have answered yet: its reply needs a later turn
    commits += 1;
    while (!done) {
      await store.write(churn(commits + 1), ++ci);
      commits += 1;
      await nextTurn();
    }
    const worker = await pending;
    const atR = await store.range({ ...span, revision: worker.revision }, { worker: false });
    expect(commits, `commits made while the range was in flight: ${commits}`).toBeGreaterThanOrEqual(1);
    expect(worker.count, `count at R=${worker.revision}`).toBe(atR.count);
    expect(worker.count, "some keys deleted before R").toBeLessThan(KEYS);
    expect(
      worker.kvs.map((b) => Buffer.from(b).toString("hex")),
      "kvs at R",
    ).toEqual(atR.kvs.map((b) => Buffer.from(b).toString("hex")));
  });
});
