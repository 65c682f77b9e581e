// Turns a grpc-js call error into the client's typed errors: an etcd server error (its message is one of
// core/errors.ts's table) becomes EtcdError with that stable code; anything else (connection refused,
// deadline, cancellation) becomes ClientCallError carrying the gRPC status. Callers branch on `code`.
import { codeForMessage, EtcdError, GrpcStatus, type GrpcStatusCode } from "../errors.js";

const STATUS_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(GrpcStatus).map(([name, code]) => [code, name]),
);

/**
 * The client's own codes, beside "GRPC_<STATUS>": failures that happen before a request reaches any server.
 * DIAL_TIMEOUT: no endpoint became ready within dialTimeoutMs. TLS_HANDSHAKE_FAILED: the TLS handshake was
 * refused (no client certificate, a certificate of another CA, a server certificate the CA did not sign).
 */
export const CLIENT_ERROR_CODES = {
  DIAL_TIMEOUT: "DIAL_TIMEOUT",
  TLS_HANDSHAKE_FAILED: "TLS_HANDSHAKE_FAILED",
} as const;

/** grpc-js says this when a call failed at the pick, before anything was written to a connection. */
const NOT_SENT_PREFIX = "No connection established";
/** OpenSSL / Node TLS texts of a refused handshake (alert from the peer, or our own verification failing). */
const TLS_FAILURE_RE =
  /SSL routines|alert (bad|unknown|handshake|certificate)|certificate|altnames|self[- ]signed|unable to verify/i;

/**
 * ClientCallError is a failed call whose message is not an etcd server error. `code` is "GRPC_<STATUS>" or one of
 * CLIENT_ERROR_CODES; `notSent` says the request never left the client (safe to send to another endpoint).
 */
export class ClientCallError extends Error {
  readonly code: string;
  readonly grpcStatus: GrpcStatusCode;
  readonly endpoint: string;
  readonly notSent: boolean;
  /** The message without the endpoint suffix (for wrapping one error's reason in another). */
  readonly reason: string;

  constructor(
    grpcStatus: GrpcStatusCode,
    message: string,
    endpoint: string,
    opts: { code?: string; notSent?: boolean } = {},
  ) {
    super(`${message} (endpoint ${endpoint})`);
    this.name = "ClientCallError";
    this.reason = message;
    this.grpcStatus = grpcStatus;
    this.code = opts.code ?? `GRPC_${STATUS_NAMES.get(grpcStatus) ?? String(grpcStatus)}`;
    this.endpoint = endpoint;
    this.notSent = opts.notSent ?? false;
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
  const notSent = status === GrpcStatus.UNAVAILABLE && details.startsWith(NOT_SENT_PREFIX);
  const tls = notSent && TLS_FAILURE_RE.test(details);
  return new ClientCallError(
    status,
    details,
    endpoint,
    tls ? { code: CLIENT_ERROR_CODES.TLS_HANDSHAKE_FAILED, notSent } : { notSent },
  );
}

/** errorCode is the stable code of any error the client throws ("COMPACTED", "GRPC_UNAVAILABLE", …). */
export function errorCode(err: unknown): string {
  if (err instanceof EtcdError || err instanceof ClientCallError) return err.code;
  return "UNKNOWN";
}

/**
 * isUnavailable says whether the error means "this endpoint cannot serve now": the signal to fail over. Besides a
 * lost connection that includes etcd's own UNAVAILABLE errors (no leader, leader changed, request timed out …),
 * as etcd 3.4's balancer moves on for any Unavailable status.
 */
export function isUnavailable(err: EtcdError | ClientCallError): boolean {
  return err.grpcStatus === GrpcStatus.UNAVAILABLE;
}
