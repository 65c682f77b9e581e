// `node dist/harness/micro/point_write_bench.js [keys] [rounds] [batch] [value-bytes] [prev-kv]` (after `npm run build`): the
// apply cost of point writes on a KvStore alone (no Raft, no WAL, no server), as a member applies them: writes of
// `batch` requests each. Loads `keys` keys, then times `rounds` passes over them of (a) plain puts and (b)
// Kubernetes' guarded update, Txn If(mod_revision(key) == R) Then(Put) Else(Get key), half of them taking each
// branch. Reports this process's CPU time per request (steadier than wall time on a shared machine), the RSS and
// the HashKV at the end, so two builds can be checked for identical results; with node --expose-gc also the heap in
// use after a full collection (what the live index costs per key). `prev-kv` 1 applies as a member with a watcher
// that wants prev_kv (every write then reads the value it replaces), 0 (default) as one without. Prints one JSON line.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { KvStore } from "../../core/mvcc/kv_store.js";
import { CompareResult, CompareTarget, type WriteRequest } from "../../core/mvcc/types.js";

const LOAD_PER_WRITE = 10_000;

interface Pass {
  readonly requests: number;
  readonly cpuUsPerRequest: number;
}

async function timed(store: KvStore, passes: number, batch: number, make: (i: number) => WriteRequest, n: number) {
  const cpu0 = process.cpuUsage();
  for (let p = 0; p < passes; p++) {
    for (let i = 0; i < n; i += batch) {
      const reqs: WriteRequest[] = [];
      for (let j = i; j < Math.min(n, i + batch); j++) reqs.push(make(j));
      await store.write(reqs);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const requests = passes * n;
  return { requests, cpuUsPerRequest: Number(((cpu.user + cpu.system) / requests).toFixed(2)) } satisfies Pass;
}

/** The heap in use after a full collection (run node with --expose-gc), or undefined without it. */
function heapAfterGc(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return undefined;
  gc();
  return Number((process.memoryUsage().heapUsed / 2 ** 20).toFixed(1));
}

async function main(): Promise<void> {
  const keys = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 5);
  const batch = Number(process.argv[4] ?? 64);
  const valueBytes = Number(process.argv[5] ?? 256);
  const prevKvWanted = process.argv[6] === "1";
  const names = Array.from({ length: keys }, (_, i) =>
    new TextEncoder().encode(`/registry/pods/default/pod-${i.toString().padStart(8, "0")}`),
  );
  const dir = mkdtempSync(join(tmpdir(), "point-write-bench-"));
  const store = KvStore.open(dir, { readWorkers: 0 });
  let taken = 0;
  store.setCommitListener(
    (changes) => (taken += changes.length),
    () => prevKvWanted,
  );
  try {
    const value = new Uint8Array(valueBytes).fill(7);
    for (let i = 0; i < keys; i += LOAD_PER_WRITE) {
      const reqs: WriteRequest[] = [];
      for (let j = i; j < Math.min(keys, i + LOAD_PER_WRITE); j++) reqs.push({ put: { key: names[j]!, value } });
      await store.write(reqs);
    }
    const put = await timed(store, rounds, batch, (i) => ({ put: { key: names[i]!, value } }), keys);
    // Every key's mod revision as of now; odd keys are then given a stale one, so their Txn takes the Else branch.
    const modRevs = new Map<number, number>();
    const at = store.revision;
    for (let i = 0; i < keys; i++) modRevs.set(i, at - keys + 1 + i);
    const guarded = (i: number): WriteRequest => {
      const key = names[i]!;
      const expect = i % 2 === 0 ? (modRevs.get(i) ?? 0) : 1;
      return {
        txn: {
          compare: [{ key, target: CompareTarget.MOD, result: CompareResult.EQUAL, modRevision: expect }],
          success: [{ put: { key, value } }],
          failure: [{ range: { key } }],
        },
      };
    };
    taken = 0;
    const txn = await timed(store, 1, batch, guarded, keys);
    const { hash } = await store.hashKV();
    console.log(
      JSON.stringify({
        keys,
        prevKvWanted,
        rounds,
        batch,
        valueBytes,
        put,
        txn: { ...txn, putsTaken: taken },
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
        heapMiBAfterGc: heapAfterGc(),
        hash,
      }),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
