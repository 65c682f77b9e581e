// Proves dialTimeoutMs bounds how long a call waits for a connection, with endpoints that cannot serve: ports
// nobody listens on, a listener that accepts and at once closes (counting connection attempts: no busy loop),
// and a listener that accepts a TLS connection but never answers the handshake. Each call fails with
// ClientCallError DIAL_TIMEOUT well before its call timeout, writes included (they were never sent), and
// no rejection is left unhandled; a call timeout shorter than the dial timeout bounds the wait too.
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientCallError, EtcdClient } from "../../core/client/index.js";
import { freePort } from "../../harness/targets/launcher.js";

const DIAL_MS = 600;
const CALL_MS = 30_000;

let closer: Server;
let silent: Server;
let accepted = 0;
const sockets = new Set<Socket>();

function listen(onConn: (s: Socket) => void): Promise<Server> {
  const srv = createServer(onConn);
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

function portOf(srv: Server): number {
  const addr = srv.address();
  return typeof addr === "object" && addr !== null ? addr.port : 0;
}

beforeAll(async () => {
  closer = await listen((s) => {
    accepted++;
    s.destroy();
  });
  silent = await listen((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all([closer, silent].map((srv) => new Promise((r) => srv?.close(r))));
});

async function failure(
  endpoints: string[],
  call: (c: EtcdClient) => Promise<unknown>,
): Promise<{ err: unknown; elapsedMs: number }> {
  const c = new EtcdClient({ endpoints, dialTimeoutMs: DIAL_MS, callTimeoutMs: CALL_MS });
  const t0 = Date.now();
  try {
    const err = await call(c).then(
      () => "succeeded",
      (e: unknown) => e,
    );
    return { err, elapsedMs: Date.now() - t0 };
  } finally {
    c.close();
  }
}

describe("dial timeout", () => {
  it("every endpoint refused: reads and writes fail with DIAL_TIMEOUT after the dial timeout", async () => {
    const eps = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    for (const [what, call] of [
      ["get", (c: EtcdClient) => c.get("/k")],
      ["put", (c: EtcdClient) => c.put("/k", "v")],
    ] as const) {
      const { err, elapsedMs } = await failure(eps, call);
      expect(err, what).toBeInstanceOf(ClientCallError);
      expect((err as ClientCallError).code, `${what}: ${String(err)}`).toBe("DIAL_TIMEOUT");
      expect(elapsedMs, `${what} failed after ${elapsedMs} ms`).toBeGreaterThanOrEqual(DIAL_MS - 50);
      expect(elapsedMs, `${what} failed after ${elapsedMs} ms, not the call timeout ${CALL_MS}`).toBeLessThan(
        CALL_MS / 3,
      );
    }
  });

  it("never waits for a connection longer than the call's own timeout", async () => {
    const c = new EtcdClient({
      endpoints: [`127.0.0.1:${await freePort()}`],
      dialTimeoutMs: CALL_MS,
      callTimeoutMs: DIAL_MS,
    });
    const t0 = Date.now();
    const err = await c.get("/k").catch((e: unknown) => e);
    const elapsedMs = Date.now() - t0;
    c.close();
    expect((err as ClientCallError).code, String(err)).toBe("DIAL_TIMEOUT");
    expect(elapsedMs, `failed after ${elapsedMs} ms with a ${DIAL_MS} ms call timeout`).toBeLessThan(CALL_MS / 3);
  });

  it("connections closed at once: DIAL_TIMEOUT with a bounded number of attempts (no busy loop)", async () => {
    accepted = 0;
    const ep = `127.0.0.1:${portOf(closer)}`;
    const { err, elapsedMs } = await failure([ep, ep], (c) => c.get("/k"));
    expect((err as ClientCallError).code, String(err)).toBe("DIAL_TIMEOUT");
    expect(accepted, `${accepted} connections in ${elapsedMs} ms`).toBeLessThan(20);
    expect(accepted, "it did try").toBeGreaterThan(0);
  });

  it("a TLS handshake that never completes: DIAL_TIMEOUT, not the call timeout", async () => {
    const { err, elapsedMs } = await failure([`https://127.0.0.1:${portOf(silent)}`], (c) => c.get("/k"));
    expect((err as ClientCallError).code, String(err)).toBe("DIAL_TIMEOUT");
    expect(elapsedMs, `failed after ${elapsedMs} ms`).toBeLessThan(CALL_MS / 3);
  });
});
