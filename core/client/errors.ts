// Turns a grpc-js call error into the client's typed errors: an etcd server error (its message is one of
// core/errors.ts's table) becomes EtcdError with that stable code; anything else (connection refused,
// deadline, cancellation) becomes ClientCallError carrying the gRPC status. Callers branch on `code`.
import { codeForMessage, EtcdError, GrpcStatus, type GrpcStatusCode } from "../errors.js";

const STATUS_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(GrpcStatus).map(([name, code]) => [code, name]),
);

/** ClientCallError is a failed call whose message is not an etcd server error: `code` = "GRPC_<STATUS>". */
export class ClientCallError extends Error {
  readonly code: string;
  readonly grpcStatus: GrpcStatusCode;
  readonly endpoint: string;

  constructor(grpcStatus: GrpcStatusCode, message: string, endpoint: string) {
    super(`${message} (endpoint ${endpoint})`);
    this.name = "ClientCallError";
    this.grpcStatus = grpcStatus;
    this.code = `GRPC_${STATUS_NAMES.get(grpcStatus) ?? String(grpcStatus)}`;
    this.endpoint = endpoint;
  }
}

interface GrpcLikeError {
  readonly code?: number;
  readonly details?: string;
  readonly message?: string;
}

/** toClientError maps one grpc-js error (or anything thrown) to EtcdError or ClientCallError. */
export function toClientError(err: unknown, endpoint: string): EtcdError | ClientCallError {
  if (err instanceof EtcdError || err instanceof ClientCallError) return err;
  const e = (typeof err === "object" && err !== null ? err : {}) as GrpcLikeError;
  const details = e.details ?? e.message ?? String(err);
  const code = codeForMessage(details);
  if (code !== undefined) return new EtcdError(code, `endpoint ${endpoint}`);
  const status = (typeof e.code === "number" ? e.code : GrpcStatus.UNKNOWN) as GrpcStatusCode;
  return new ClientCallError(status, details, endpoint);
}

/** errorCode is the stable code of any error the client throws ("COMPACTED", "GRPC_UNAVAILABLE", …). */
export function errorCode(err: unknown): string {
  if (err instanceof EtcdError || err instanceof ClientCallError) return err.code;
  return "UNKNOWN";
}

/** isUnavailable says whether the error means "this endpoint is gone": the signal to fail over. */
export function isUnavailable(err: EtcdError | ClientCallError): boolean {
  return err instanceof ClientCallError && err.grpcStatus === GrpcStatus.UNAVAILABLE;
}
