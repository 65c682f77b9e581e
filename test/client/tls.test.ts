// Proves one TLS bundle {ca, cert, key} serves every https:// endpoint of a real 3-member etcd 3.4 cluster run
// with --client-cert-auth (certificates made by openssl in a temp dir): each channel checks its own endpoint's
// server name (127.0.0.1 by IP SAN, localhost by DNS SAN; an in-process server whose certificate names only
// localhost is refused as 127.0.0.1 and reached as localhost); kill -9 of the connected member moves creates, gets
// and a watch to the next TLS endpoint with no event lost or repeated (on a 3-member etcd-ts cluster with the same
// certificates too); a client without a certificate, with a certificate of another CA, or trusting another CA is
// refused with TLS_HANDSHAKE_FAILED. Writes are guarded creates (cluster_writes.ts), sent again after an
// ambiguous failure without any chance of applying one twice.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { ClientCallError, EtcdClient, type TlsOptions } from "../../core/client/index.js";
import { EtcdCluster } from "../../harness/targets/etcd_cluster.js";
import { makeCluster } from "../../harness/targets/make.js";
import { makePki, type TestPki } from "../../harness/pki.js";
import { createOnce, waitWritable } from "./cluster_writes.js";

let pki: TestPki;
let cluster: EtcdCluster;
let tls: TlsOptions;

beforeAll(async () => {
  pki = makePki();
  tls = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
  cluster = new EtcdCluster(3, {
    clientTls: {
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
      trustedCaFile: pki.caFile,
      clientCertAuth: true,
    },
    probe: { tls },
  });
  await cluster.start();
  await waitWritable(cluster.endpoints(), { tls });
});

afterAll(async () => {
  await cluster?.stop();
  pki?.cleanup();
});

async function refusal(opts: TlsOptions): Promise<unknown> {
  const c = new EtcdClient({ endpoints: cluster.endpoints(), tls: opts, dialTimeoutMs: 5_000 });
  try {
    return await c.get("/any").then(
      () => "accepted",
      (e: unknown) => e,
    );
  } finally {
    c.close();
  }
}

describe("TLS refusals", () => {
  it("refuses a client without a certificate, with another CA's certificate, or trusting another CA", async () => {
    const cases: [string, TlsOptions][] = [
      ["no client certificate", { ca: pki.ca }],
      ["client certificate of another CA", { ca: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey }],
      [
        "server certificate not signed by the trusted CA",
        { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey },
      ],
    ];
    for (const [what, opts] of cases) {
      const err = await refusal(opts);
      expect(err, what).toBeInstanceOf(ClientCallError);
      expect((err as ClientCallError).code, `${what}: ${String(err)}`).toBe("TLS_HANDSHAKE_FAILED");
    }
  });

  it("checks the server name per endpoint: the same server answers as 127.0.0.1 and as localhost", async () => {
    const [first] = cluster.endpoints();
    const byName = first!.replace("127.0.0.1", "localhost");
    for (const ep of [first!, byName]) {
      const c = new EtcdClient({ endpoints: [ep], tls });
      expect((await c.status()).version, ep).toMatch(/^3\.4\./);
      c.close();
    }
  });
});

/** A one-method Maintenance server over TLS whose certificate names only DNS:localhost. */
async function localhostOnlyServer(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(loadEtcdProto().services.Maintenance.service, {
    Status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { header: {}, version: "3.4.0-localhost-only" }),
  });
  const creds = grpc.ServerCredentials.createSsl(
    pki.ca,
    [{ cert_chain: pki.localhostCert, private_key: pki.localhostKey }],
    false,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", creds, (err, p) => (err !== null ? reject(err) : resolve(p))),
  );
  return { server, port };
}

describe("server name per endpoint", () => {
  it("refuses a server whose certificate does not name the endpoint's host, and accepts it by the name it has", async () => {
    const { server, port } = await localhostOnlyServer();
    try {
      const byIp = new EtcdClient({ endpoints: [`https://127.0.0.1:${port}`], tls });
      const err = await byIp.status().catch((e: unknown) => e);
      byIp.close();
      expect((err as ClientCallError).code, String(err)).toBe("TLS_HANDSHAKE_FAILED");
      const both = new EtcdClient({ endpoints: [`https://127.0.0.1:${port}`, `https://localhost:${port}`], tls });
      expect((await both.status()).version, "answered over the localhost endpoint").toBe("3.4.0-localhost-only");
      expect(both.connection.currentEndpoint()).toBe(`https://localhost:${port}`);
      both.close();
    } finally {
      server.forceShutdown();
    }
  });
});

async function followerIndex(eps: readonly string[]): Promise<number> {
  const ids: bigint[] = [];
  let leader = 0n;
  for (const ep of eps) {
    const c = new EtcdClient({ endpoints: [ep], tls });
    const st = await c.status();
    ids.push(st.header.memberId);
    leader = st.leader;
    c.close();
  }
  return ids.findIndex((id) => id !== leader);
}

/** tlsFailover: kill -9 the connected (follower) member of `cluster`; creates, gets and a watch go on over TLS. */
async function tlsFailover(cluster: EtcdCluster): Promise<void> {
  const eps = cluster.endpoints();
  const victim = await followerIndex(eps);
  expect(victim, "a follower exists").toBeGreaterThanOrEqual(0);
  // One endpoint by DNS name, the others by IP: the one bundle must verify each by its own name.
  const order = [eps[victim]!, ...eps.filter((_, i) => i !== victim)].map((e, i) =>
    i === 2 ? e.replace("127.0.0.1", "localhost") : e,
  );
  const client = new EtcdClient({ endpoints: order, tls, callTimeoutMs: 10_000 });
  try {
    for (let i = 0; i < 5; i++) await createOnce(client, `/tls/k${i}`);
    const w = client.watch("/tls/", { prefix: true, startRevision: 1n });
    await w.created;
    expect(client.connection.currentEndpoint()).toBe(order[0]);

    await cluster.kill(victim);
    expect((await client.get("/tls/", { prefix: true, countOnly: true })).count, "read after the kill").toBe(5n);
    expect(client.connection.currentEndpoint(), "moved off the killed member").not.toBe(order[0]);
    const failures: string[] = [];
    for (let i = 5; i < 15; i++) failures.push(...(await createOnce(client, `/tls/k${i}`)).map((f) => f.code));
    expect(failures.length, `creates failed after the kill: ${failures.join(",")}`).toBeLessThanOrEqual(1);
    const all = await client.get("/tls/", { prefix: true });
    expect(all.kvs.length, "15 keys").toBe(15);
    expect(
      all.kvs.map((kv) => kv.version),
      "each create applied once",
    ).toEqual(Array(15).fill(1n));

    const expected = all.kvs.map((kv) => kv.modRevision).sort((a, b) => (a < b ? -1 : 1));
    const lastRev = expected[expected.length - 1]!;
    const revs: bigint[] = [];
    for await (const batch of w) {
      for (const e of batch.events) revs.push(e.kv.modRevision);
      if (revs[revs.length - 1]! >= lastRev) break;
    }
    w.cancel();
    expect(
      revs.filter((r) => expected.includes(r)),
      "every put's revision once, in order",
    ).toEqual(expected);
    expect(new Set(revs).size, `no event twice among ${revs.length}`).toBe(revs.length);
  } finally {
    client.close();
  }
}

describe("failover across TLS endpoints", () => {
  it("real etcd: kill -9 the connected member: creates and gets go on over TLS, the watch resumes without loss", () =>
    tlsFailover(cluster));

  describe("etcd-ts", () => {
    let ours: EtcdCluster;
    beforeAll(async () => {
      const slot = makeCluster("etcd-ts", 3, {
        clientTls: {
          certFile: pki.serverCertFile,
          keyFile: pki.serverKeyFile,
          trustedCaFile: pki.caFile,
          clientCertAuth: true,
        },
        probe: { tls },
      });
      if (slot.target === undefined) throw new Error(`${slot.name} cannot run: ${slot.reason}`);
      ours = slot.target;
      await ours.start();
      await waitWritable(ours.endpoints(), { tls });
    });
    afterAll(async () => {
      await ours?.stop();
    });

    it("etcd-ts: kill -9 the connected member: creates and gets go on over TLS, the watch resumes without loss", () =>
      tlsFailover(ours));
  });
});
