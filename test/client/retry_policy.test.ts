// Proves RETRY_POLICY as the client applies it, with two in-process gRPC KV servers that count what they
// receive: when the first answers UNAVAILABLE after receiving a request (so it may have been applied), a Range
// is sent again to the second endpoint but a Put is not (the caller gets GRPC_UNAVAILABLE, and the next call
// goes to the second endpoint); and the policy is plain data naming the methods, the status and the backoff.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { ClientCallError, EtcdClient, RETRY_POLICY } from "../../core/client/index.js";

interface FakeKv {
  readonly endpoint: string;
  readonly received: Map<string, number>;
  /** Answer every call with UNAVAILABLE (after counting it) while true. */
  failing: boolean;
  readonly server: grpc.Server;
}

async function startFakeKv(name: string): Promise<FakeKv> {
  const server = new grpc.Server();
  const fake: FakeKv = { endpoint: "", received: new Map(), failing: false, server };
  const handler = (method: string, reply: () => unknown) => (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
    fake.received.set(method, (fake.received.get(method) ?? 0) + 1);
    if (fake.failing)
      cb({ code: grpc.status.UNAVAILABLE, details: `${name}: connection lost after the request arrived` });
    else cb(null, reply());
  };
  server.addService(loadEtcdProto().services.KV.service, {
    Range: handler("Range", () => ({ header: { revision: "7" }, kvs: [], more: false, count: "0" })),
    Put: handler("Put", () => ({ header: { revision: "8" } })),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err !== null ? reject(err) : resolve(p),
    ),
  );
  return Object.assign(fake, { endpoint: `127.0.0.1:${port}` });
}

let a: FakeKv;
let b: FakeKv;

beforeAll(async () => {
  a = await startFakeKv("a");
  b = await startFakeKv("b");
});

afterAll(() => {
  a?.server.forceShutdown();
  b?.server.forceShutdown();
});

describe("RETRY_POLICY", () => {
  it("is data: the failover status, the repeatable methods (reads, not writes) and backoff bounds", () => {
    expect(RETRY_POLICY.failoverStatus).toBe("UNAVAILABLE");
    for (const read of ["Range", "Status", "MemberList", "LeaseTimeToLive"])
      expect(RETRY_POLICY.repeatable.has(read), read).toBe(true);
    for (const write of ["Put", "DeleteRange", "Txn", "Compact", "LeaseGrant", "MemberAdd"])
      expect(RETRY_POLICY.repeatable.has(write), write).toBe(false);
    expect(RETRY_POLICY.backoffMinMs).toBeLessThanOrEqual(RETRY_POLICY.backoffMaxMs);
  });

  it("sends a Range again to the next endpoint after UNAVAILABLE, but never a Put that may have been applied", async () => {
    a.failing = true;
    const client = new EtcdClient({ endpoints: [a.endpoint, b.endpoint] });
    try {
      const r = await client.get("/k");
      expect(r.header.revision, "answered by b").toBe(7n);
      expect([a.received.get("Range"), b.received.get("Range")], "Range at a, then again at b").toEqual([1, 1]);

      const other = new EtcdClient({ endpoints: [a.endpoint, b.endpoint] });
      const err = await other.put("/k", "v").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClientCallError);
      expect((err as ClientCallError).code).toBe("GRPC_UNAVAILABLE");
      expect([a.received.get("Put"), b.received.get("Put") ?? 0], "Put reached a once and b never").toEqual([1, 0]);
      expect((await other.put("/k", "v")).header.revision, "the next Put goes to b").toBe(8n);
      expect([a.received.get("Put"), b.received.get("Put")], "still one Put at a").toEqual([1, 1]);
      other.close();
    } finally {
      a.failing = false;
      client.close();
    }
  });
});
