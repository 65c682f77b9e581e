// Proves unary(): a handler's value, resolved promise, synchronous throw and rejected promise each reach the
// grpc-js callback exactly once, errors as the status toStatus gives (etcd's code and message).
import type * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { unary } from "../../core/api/unary.js";
import { EtcdError } from "../../core/errors.js";

type Outcome = { err: Partial<grpc.StatusObject> | null; value?: unknown };

function call(fn: (req: Record<string, unknown>) => unknown): Promise<Outcome[]> {
  const handler = unary(fn);
  const seen: Outcome[] = [];
  return new Promise((resolve) => {
    const fakeCall = { request: { k: 1 } } as unknown as grpc.ServerUnaryCall<Record<string, unknown>, unknown>;
    handler(fakeCall, (err, value) => {
      seen.push({ err, value });
      // Let any second (wrong) callback arrive before answering.
      setImmediate(() => resolve(seen));
    });
  });
}

describe("unary", () => {
  it("answers a plain value and a resolved promise", async () => {
    expect(await call((req) => ({ got: req.k }))).toEqual([{ err: null, value: { got: 1 } }]);
    expect(await call(async (req) => ({ got: req.k }))).toEqual([{ err: null, value: { got: 1 } }]);
  });

  it("turns a synchronous throw and a rejection into the error's status", async () => {
    const refused = new EtcdError("KEY_NOT_FOUND");
    const sync = await call(() => {
      throw refused;
    });
    const rejected = await call(async () => {
      throw refused;
    });
    for (const out of [sync, rejected]) {
      expect(out).toHaveLength(1);
      expect(out[0]?.err).toEqual({ code: refused.grpcStatus, details: refused.message });
    }
    const plain = await call(() => {
      throw new Error("boom");
    });
    expect(plain[0]?.err).toEqual({ code: 2, details: "boom" });
  });
});
