// `node dist/harness/micro/delete_range_bench.js [keys] [value-bytes]` (after `npm run build`): the apply of one
// DeleteRange over every key of a prefix, as `etcdctl check perf` ends with, on a KvStore alone (no Raft, no
// WAL, no server). Loads the keys in 10,000-put writes, then times the one delete: wall time (the event loop is
// blocked that long) and this process's CPU time (steadier on a shared machine), both per deleted key. Prints
// one JSON line; the HashKV after the delete lets two builds be checked for identical results.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { KvStore } from "../../core/mvcc/kv_store.js";
import type { WriteRequest } from "../../core/mvcc/types.js";

const PUTS_PER_WRITE = 10_000;

async function main(): Promise<void> {
  const keys = Number(process.argv[2] ?? 480_000);
  const valueBytes = Number(process.argv[3] ?? 256);
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  const dir = mkdtempSync(join(tmpdir(), "delete-range-bench-"));
  const store = KvStore.open(dir, { readWorkers: 0 });
  try {
    const value = new Uint8Array(valueBytes);
    for (let i = 0; i < keys; i += PUTS_PER_WRITE) {
      const reqs: WriteRequest[] = [];
      for (let j = i; j < Math.min(keys, i + PUTS_PER_WRITE); j++)
        reqs.push({ put: { key: enc(`/perf/${j.toString().padStart(8, "0")}`), value } });
      await store.write(reqs);
    }
    let events = 0;
    store.setCommitListener((changes) => (events += changes.length));
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const res = await store.deleteRange({ key: enc("/perf/"), rangeEnd: enc("/perf0") });
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const perKey = (ms: number): number => Number(((ms * 1000) / keys).toFixed(2));
    const { hash } = await store.hashKV();
    console.log(
      JSON.stringify({
        keys,
        deleted: res.deleted,
        events,
        wallMs: Math.round(wallMs),
        wallUsPerKey: perKey(wallMs),
        cpuMs: Math.round(cpuMs),
        cpuUsPerKey: perKey(cpuMs),
        hash,
      }),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
