// What the crash and power-loss tests check after a member comes back: a write load that records only what the
// cluster acknowledged, and the convergence check (same HashKV at the same revision on every member, every
// acknowledged write present with its value).
import { request } from "node:http";
import { EtcdClient } from "../../core/client/index.js";
import type { LocalCluster } from "./local_cluster.js";

/** Puts from `workers` sequential writers until `until(acks so far)` is true; returns the acknowledged key → value. */
export async function writeUntil(
  endpoints: readonly string[],
  prefix: string,
  until: (acks: number) => boolean,
  opts: { workers?: number; maxMs?: number; valueBytes?: number } = {},
): Promise<{ acked: Map<string, string>; timedOut: boolean }> {
  const client = new EtcdClient({ endpoints: [...endpoints], callTimeoutMs: 5_000, dialTimeoutMs: 3_000 });
  const acked = new Map<string, string>();
  const deadline = Date.now() + (opts.maxMs ?? 30_000);
  const pad = "x".repeat(opts.valueBytes ?? 200);
  let n = 0;
  let timedOut = false;
  const worker = async (): Promise<void> => {
    while (!until(acked.size)) {
      if (Date.now() > deadline) {
        timedOut = true;
        return;
      }
      const key = `${prefix}${String(n++).padStart(6, "0")}`;
      const value = `${key}:${pad}`;
      try {
        await client.put(key, value);
        acked.set(key, value);
      } catch {
        // not acknowledged: may or may not be there, either is fine
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.workers ?? 4 }, worker));
  } finally {
    client.close();
  }
  return { acked, timedOut };
}

/**
 * Waits until every member has applied a fresh barrier write, then checks they agree on HashKV at its revision
 * and that each has every acknowledged write with its value. Returns the revision compared.
 */
export async function checkConverged(
  cluster: LocalCluster,
  acked: ReadonlyMap<string, string>,
  timeoutMs = 30_000,
): Promise<bigint> {
  const all = cluster.members.map((_, i) => cluster.endpoint(i));
  const any = new EtcdClient({ endpoints: all, callTimeoutMs: 5_000, dialTimeoutMs: 3_000 });
  let rev: bigint;
  try {
    rev = (await retry(() => any.put("durability/barrier", String(Date.now())), timeoutMs)).header.revision;
  } finally {
    any.close();
  }
  const hashes: number[] = [];
  for (const ep of all) {
    const c = new EtcdClient({ endpoints: [ep], callTimeoutMs: 5_000, dialTimeoutMs: 3_000 });
    try {
      hashes.push((await retry(() => c.maintenance.hashKV(rev), timeoutMs)).hash);
      const prefixes = new Set([...acked.keys()].map((k) => k.slice(0, k.lastIndexOf("/") + 1)));
      const have = new Map<string, string>();
      for (const p of prefixes) {
        const r = await c.get(p, { prefix: true, serializable: true });
        for (const kv of r.kvs) have.set(kv.key.toString("utf8"), kv.value.toString("utf8"));
      }
      const missing = [...acked].filter(([k, v]) => have.get(k) !== v).map(([k]) => k);
      if (missing.length > 0)
        throw new Error(
          `${ep}: ${missing.length} acknowledged writes missing or changed, e.g. ${missing.slice(0, 3).join(", ")}`,
        );
    } finally {
      c.close();
    }
  }
  if (new Set(hashes).size !== 1) throw new Error(`HashKV at revision ${rev} differs: ${hashes.join(", ")}`);
  return rev;
}

async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** PUT /debug/failpoints on a member's client port. */
export function armFailpoint(port: number, spec: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "PUT", path: "/debug/failpoints" }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`arm ${spec}: ${res.statusCode} ${body}`)),
      );
    });
    req.on("error", reject);
    req.end(spec);
  });
}

/** Resolves when member i's process has exited. */
export function exited(cluster: LocalCluster, i: number): Promise<void> {
  return cluster.exited(i);
}
