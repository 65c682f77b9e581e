// What every etcd-ts service handler shares: EtcdError → gRPC status (etcd's code and exact message), a unary
// handler from an async function, 64-bit request fields as bigint, and a response header as a grpc-js object.
import * as grpc from "@grpc/grpc-js";
import { isEtcdError } from "../errors.js";
import type { ResponseHeader } from "../server/etcd_server.js";

export type ToStatus = (err: unknown) => Partial<grpc.StatusObject>;

export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (isEtcdError(err)) return { code: err.grpcStatus as number, details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.UNKNOWN, details: message };
}

/** A grpc-js unary handler running `fn` (a throw, synchronous or not, becomes the call's status). */
export function unary<Req = Record<string, unknown>>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, unknown>) => Promise<unknown> | unknown,
  status: ToStatus = toStatus,
): grpc.handleUnaryCall<Req, unknown> {
  // fn runs at once and only a returned promise is waited on: no promise or microtask per call besides fn's own.
  return (call, cb) => {
    let out: unknown;
    try {
      out = fn(call.request, call);
    } catch (err) {
      cb(status(err));
      return;
    }
    if (out instanceof Promise)
      out.then(
        (res: unknown) => cb(null, res),
        (err: unknown) => cb(status(err)),
      );
    else cb(null, out);
  };
}

/** A proto-loader 64-bit field (decimal string, number, or absent) as bigint. */
export function int64(v: unknown): bigint {
  return v === undefined || v === null || v === "" ? 0n : BigInt(v as string | number);
}

/** A response header as a grpc-js object (64-bit fields as decimal strings). */
export function headerObject(h: ResponseHeader): Record<string, string> {
  return {
    cluster_id: h.clusterId.toString(),
    member_id: h.memberId.toString(),
    revision: String(h.revision),
    raft_term: String(h.raftTerm),
  };
}
