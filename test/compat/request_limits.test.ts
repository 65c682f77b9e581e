// Proves --max-request-bytes and --max-txn-ops are honoured as etcd 3.4 honours them, through the real etcdctl
// against etcd-ts and real etcd side by side: a put or txn past the configured bound is refused with etcd's error
// before it is proposed (nothing is written), one within it passes, and a bound above the default lets a
// 1.8 MiB value through on both.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { etcdctl, haveEtcd, startServer, type RunningServer } from "./processes.js";

const KINDS = ["etcd", "etcd-ts"] as const;

function outcome(r: { status: number; stdout: string; stderr: string }): string {
  return r.status === 0 ? r.stdout.trim() : (/Error: (.*)/.exec(r.stderr)?.[1] ?? r.stderr.trim());
}

describe.runIf(haveEtcd())("request limits from the flags, etcd-ts against real etcd 3.4", () => {
  const small = new Map<string, RunningServer>();
  const large = new Map<string, RunningServer>();
  beforeAll(async () => {
    for (const kind of KINDS) {
      small.set(kind, await startServer(kind, ["--max-request-bytes", "4096", "--max-txn-ops", "4"]));
      large.set(kind, await startServer(kind, ["--max-request-bytes", String(3 * 1024 * 1024)]));
    }
  }, 60_000);
  afterAll(async () => {
    for (const s of [...small.values(), ...large.values()]) await s.stop();
  });

  const both = (servers: Map<string, RunningServer>, args: string[], input?: string): Record<string, string> =>
    Object.fromEntries(KINDS.map((k) => [k, outcome(etcdctl(servers.get(k)?.endpoint ?? "", args, input))]));

  it("a put over --max-request-bytes is refused, one under it passes", () => {
    expect(both(small, ["put", "ok", "v".repeat(3000)])).toEqual({ etcd: "OK", "etcd-ts": "OK" });
    const big = both(small, ["put", "big", "v".repeat(5000)]);
    expect(big).toEqual({ etcd: "etcdserver: request is too large", "etcd-ts": "etcdserver: request is too large" });
    expect(both(small, ["get", "big", "--count-only", "-w", "fields"])).toEqual(
      both(small, ["get", "nothing-here", "--count-only", "-w", "fields"]),
    );
  });

  it("a txn with more ops than --max-txn-ops is refused, one with as many passes", () => {
    // etcdctl's interactive txn: an empty compare section, the success ops, an empty failure section.
    const txn = (n: number): string => `\n${Array.from({ length: n }, (_, i) => `put t${i} v`).join("\n")}\n\n\n`;
    const four = both(small, ["txn"], txn(4));
    expect(four["etcd-ts"]).toBe(four["etcd"]);
    expect(four["etcd"]).toContain("SUCCESS");
    const five = both(small, ["txn"], txn(5));
    expect(five).toEqual({
      etcd: "etcdserver: too many operations in txn request",
      "etcd-ts": "etcdserver: too many operations in txn request",
    });
  });

  it("a bound above etcd's default lets a 1.8 MiB value through", async () => {
    const value = "x".repeat(Math.floor(1.8 * 1024 * 1024));
    expect(both(large, ["put", "huge"], value)).toEqual({ etcd: "OK", "etcd-ts": "OK" });
    for (const kind of KINDS) {
      const client = new EtcdClient({ endpoints: [large.get(kind)?.endpoint ?? ""] });
      try {
        expect((await client.get("huge")).kvs[0]?.value.length, kind).toBe(value.length);
      } finally {
        client.close();
      }
    }
    // The small bound refuses the same value on both, at the gRPC receive limit (the bound plus 512 KiB), with
    // gRPC's ResourceExhausted (grpc-go and grpc-js word it slightly differently).
    const refused = both(small, ["put", "huge"], value);
    for (const kind of KINDS)
      expect(refused[kind]).toMatch(/ResourceExhausted.*eceived message larger than max \(1887446 vs\.? 528384\)/);
  });
});
