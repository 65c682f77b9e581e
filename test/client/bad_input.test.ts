// Proves the client's answers to bad input and dead endpoints: malformed endpoint strings are refused when the
// client is made, each message naming the value passed; with every endpoint down a get, a put and a watch each
// end with DIAL_TIMEOUT naming an endpoint, after the dial timeout (not the call timeout), leaving no rejection
// unhandled and using little CPU while they wait (no busy loop: process CPU time < 25% of the wall time); a
// client trusting another CA is refused at once with TLS_HANDSHAKE_FAILED; and a watch catching up over 40 MiB
// of history (one response larger than gRPC's default 4 MiB receive limit) delivers every byte.
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { ClientCallError, EtcdClient, type WatchBatch } from "../../core/client/index.js";
import { makePki, type TestPki } from "../../harness/pki.js";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";
import { freePort } from "../../harness/targets/launcher.js";

const DIAL_MS = 1_500;
const CALL_MS = 30_000;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
let pki: TestPki;
let etcd: EtcdProcess;

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  pki = makePki();
  etcd = new EtcdProcess();
  await etcd.start();
});

afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await etcd?.stop();
  pki?.cleanup();
});

describe("malformed endpoints", () => {
  const bad = [
    "http://127.0.0.1:2379/v3",
    "127.0.0.1",
    "127.0.0.1:",
    ":2379",
    "127.0.0.1:port",
    "127.0.0.1:0",
    "[::1:2379",
    "http://user@127.0.0.1:2379",
    "grpc://127.0.0.1:2379",
    "unix://",
    " ",
    "127.0.0.1:2379,127.0.0.1:2380",
    "http//127.0.0.1:2379",
  ];
  for (const raw of bad) {
    it(`refuses ${JSON.stringify(raw)} when the client is made, naming it`, () => {
      const made = (): EtcdClient => new EtcdClient({ endpoints: ["127.0.0.1:2379", raw] });
      expect(made, raw).toThrow(JSON.stringify(raw));
    });
  }

  it("refuses an empty list", () => {
    expect(() => new EtcdClient({ endpoints: [] })).toThrow("endpoints list is empty");
  });
});

/** cpuDuring runs `f` and returns its result with the wall time and this process's CPU time meanwhile. */
async function cpuDuring<T>(f: () => Promise<T>): Promise<{ value: T; wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await f();
  const cpu = process.cpuUsage(cpu0);
  return { value, wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

describe("every endpoint down", () => {
  it("get, put and watch end with a typed error after the dial timeout, idle meanwhile, nothing unhandled", async () => {
    const eps = [
      `127.0.0.1:${await freePort()}`,
      `127.0.0.1:${await freePort()}`,
      `http://127.0.0.1:${await freePort()}`,
    ];
    const client = new EtcdClient({ endpoints: eps, dialTimeoutMs: DIAL_MS, callTimeoutMs: CALL_MS });
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ["get", () => client.get("/k")],
        ["put", () => client.put("/k", "v")],
        [
          "watch",
          async () => {
            const w = client.watch("/k", { prefix: true });
            for await (const batch of w) return batch; // never: there is no server
            return "ended without error";
          },
        ],
      ];
      for (const [what, call] of calls) {
        const {
          value: err,
          wallMs,
          cpuMs,
        } = await cpuDuring(() =>
          call().then(
            () => "succeeded",
            (e: unknown) => e,
          ),
        );
        expect(err, `${what}: ${String(err)}`).toBeInstanceOf(ClientCallError);
        const e = err as ClientCallError;
        expect(e.grpcStatus, `${what}: ${e.message}`).toBe(grpc.status.UNAVAILABLE);
        expect(
          eps.some((ep) => e.message.includes(ep)),
          `${what}: the message names an endpoint: ${e.message}`,
        ).toBe(true);
        expect(e.code, `${what}: ${e.message}`).toBe("DIAL_TIMEOUT");
        expect(
          wallMs,
          `${what} failed after ${Math.round(wallMs)} ms, the dial timeout is ${DIAL_MS}`,
        ).toBeGreaterThanOrEqual(DIAL_MS - 50);
        expect(wallMs, `${what} failed after ${Math.round(wallMs)} ms, the call timeout is ${CALL_MS}`).toBeLessThan(
          CALL_MS / 3,
        );
        expect(cpuMs, `${what}: ${Math.round(cpuMs)} ms CPU in ${Math.round(wallMs)} ms`).toBeLessThan(0.25 * wallMs);
      }
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, 100)); // a late rejection would be reported by now (one timer turn)
    expect(unhandled.map(String), "unhandled rejections").toEqual([]);
  });
});

describe("a wrong CA", () => {
  it("a client trusting another CA is refused at once with TLS_HANDSHAKE_FAILED, not after the dial timeout", async () => {
    const server = new grpc.Server();
    server.addService(loadEtcdProto().services.KV.service, {
      Range: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { header: {}, kvs: [] }),
    });
    const creds = grpc.ServerCredentials.createSsl(
      pki.ca,
      [{ cert_chain: pki.localhostCert, private_key: pki.localhostKey }],
      false,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", creds, (e, p) => (e !== null ? reject(e) : resolve(p))),
    );
    const client = new EtcdClient({
      endpoints: [`https://localhost:${port}`, `https://localhost:${port}`],
      tls: { ca: pki.otherCa },
      dialTimeoutMs: 20_000,
    });
    try {
      const { value: err, wallMs } = await cpuDuring(() =>
        client.get("/k").then(
          () => "succeeded",
          (e: unknown) => e,
        ),
      );
      expect((err as ClientCallError).code, String(err)).toBe("TLS_HANDSHAKE_FAILED");
      expect(wallMs, `refused after ${Math.round(wallMs)} ms with a 20000 ms dial timeout`).toBeLessThan(10_000);
      const right = new EtcdClient({ endpoints: [`https://localhost:${port}`], tls: { ca: pki.ca } });
      expect((await right.get("/k")).kvs.length, "the same server with the right CA").toBe(0);
      right.close();
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe("a huge watch response", () => {
  it("a watch catching up over 40 × 1 MiB values gets every byte, in responses beyond 4 MiB", async () => {
    const client = new EtcdClient({ endpoints: etcd.endpoints() });
    try {
      const digests: string[] = [];
      let first = 0n;
      for (let i = 0; i < 40; i++) {
        const value = Buffer.alloc(1024 * 1024, i);
        value.writeUInt32BE((i * 2654435761) >>> 0, 0);
        digests.push(createHash("sha256").update(value).digest("hex"));
        const put = await client.put(`/huge/${String(i).padStart(2, "0")}`, value);
        if (i === 0) first = put.header.revision;
      }
      const w = client.watch("/huge/", { prefix: true, startRevision: first });
      const got: string[] = [];
      let biggestBatch = 0;
      for await (const batch of w as AsyncIterable<WatchBatch>) {
        biggestBatch = Math.max(
          biggestBatch,
          batch.events.reduce((n, e) => n + e.kv.value.length, 0),
        );
        for (const e of batch.events) got.push(createHash("sha256").update(e.kv.value).digest("hex"));
        if (got.length >= digests.length) break;
      }
      w.cancel();
      expect(got, "every value intact, in order").toEqual(digests);
      expect(biggestBatch, `largest response carried ${biggestBatch} bytes of values`).toBeGreaterThan(4 * 1024 * 1024);
    } finally {
      client.close();
    }
  });
});
