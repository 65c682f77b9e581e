// The one table of etcd-ts errors: a stable code, the gRPC status it travels as, and etcd 3.4's exact
// message (clients such as etcdctl and the Go clientv3 match on the text, so it must not drift).
// Layers throw EtcdError with a code from here; core/api is the one place that turns it into a gRPC status.

/** gRPC status codes (numbers as in the gRPC spec; kept here so this file imports nothing). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

interface ErrorSpec {
  readonly status: GrpcStatusCode;
  readonly message: string;
}

const S = GrpcStatus;

/** etcd 3.4's server-side errors (etcdserver/api/v3rpc/rpctypes), keyed by etcd-ts's stable code. */
export const ERRORS = {
  EMPTY_KEY: { status: S.INVALID_ARGUMENT, message: "etcdserver: key is not provided" },
  KEY_NOT_FOUND: { status: S.INVALID_ARGUMENT, message: "etcdserver: key not found" },
  VALUE_PROVIDED: { status: S.INVALID_ARGUMENT, message: "etcdserver: value is provided" },
  LEASE_PROVIDED: { status: S.INVALID_ARGUMENT, message: "etcdserver: lease is provided" },
  TOO_MANY_OPS: { status: S.INVALID_ARGUMENT, message: "etcdserver: too many operations in txn request" },
  DUPLICATE_KEY: { status: S.INVALID_ARGUMENT, message: "etcdserver: duplicate key given in txn request" },
  COMPACTED: { status: S.OUT_OF_RANGE, message: "etcdserver: mvcc: required revision has been compacted" },
  FUTURE_REV: { status: S.OUT_OF_RANGE, message: "etcdserver: mvcc: required revision is a future revision" },
  NO_SPACE: { status: S.RESOURCE_EXHAUSTED, message: "etcdserver: mvcc: database space exceeded" },

  LEASE_NOT_FOUND: { status: S.NOT_FOUND, message: "etcdserver: requested lease not found" },
  LEASE_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: lease already exists" },
  LEASE_TTL_TOO_LARGE: { status: S.OUT_OF_RANGE, message: "etcdserver: too large lease TTL" },

  WATCH_CANCELED: { status: S.CANCELLED, message: "etcdserver: watch canceled" },

  MEMBER_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: member ID already exist" },
  PEER_URL_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: Peer URLs already exists" },
  // etcd sends this one with code Unknown (etcdctl: "rpc error: code = Unknown desc = …").
  MEMBER_NOT_ENOUGH_STARTED: {
    status: S.UNKNOWN,
    message: "etcdserver: re-configuration failed due to not enough started members",
  },
  MEMBER_BAD_URLS: { status: S.INVALID_ARGUMENT, message: "etcdserver: given member URLs are invalid" },
  MEMBER_NOT_FOUND: { status: S.NOT_FOUND, message: "etcdserver: member not found" },
  MEMBER_NOT_LEARNER: { status: S.FAILED_PRECONDITION, message: "etcdserver: can only promote a learner member" },
  LEARNER_NOT_READY: {
    status: S.FAILED_PRECONDITION,
    message: "etcdserver: can only promote a learner member which is in sync with leader",
  },
  TOO_MANY_LEARNERS: { status: S.FAILED_PRECONDITION, message: "etcdserver: too many learner members in cluster" },

  REQUEST_TOO_LARGE: { status: S.INVALID_ARGUMENT, message: "etcdserver: request is too large" },
  TOO_MANY_REQUESTS: { status: S.RESOURCE_EXHAUSTED, message: "etcdserver: too many requests" },

  ROOT_USER_NOT_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: root user does not exist" },
  ROOT_ROLE_NOT_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: root user does not have root role" },
  USER_ALREADY_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: user name already exists" },
  USER_EMPTY: { status: S.INVALID_ARGUMENT, message: "etcdserver: user name is empty" },
  USER_NOT_FOUND: { status: S.FAILED_PRECONDITION, message: "etcdserver: user name not found" },
  ROLE_ALREADY_EXIST: { status: S.FAILED_PRECONDITION, message: "etcdserver: role name already exists" },
  ROLE_NOT_FOUND: { status: S.FAILED_PRECONDITION, message: "etcdserver: role name not found" },
  ROLE_EMPTY: { status: S.INVALID_ARGUMENT, message: "etcdserver: role name is empty" },
  AUTH_FAILED: {
    status: S.INVALID_ARGUMENT,
    message: "etcdserver: authentication failed, invalid user ID or password",
  },
  PERMISSION_DENIED: { status: S.PERMISSION_DENIED, message: "etcdserver: permission denied" },
  ROLE_NOT_GRANTED: { status: S.FAILED_PRECONDITION, message: "etcdserver: role is not granted to the user" },
  PERMISSION_NOT_GRANTED: {
    status: S.FAILED_PRECONDITION,
    message: "etcdserver: permission is not granted to the role",
  },
  AUTH_NOT_ENABLED: { status: S.FAILED_PRECONDITION, message: "etcdserver: authentication is not enabled" },
  INVALID_AUTH_TOKEN: { status: S.UNAUTHENTICATED, message: "etcdserver: invalid auth token" },
  INVALID_AUTH_MGMT: { status: S.INVALID_ARGUMENT, message: "etcdserver: invalid auth management" },
  AUTH_OLD_REVISION: { status: S.INVALID_ARGUMENT, message: "etcdserver: revision of auth store is old" },
  // The auth package's own errors, which etcd 3.4 hands to gRPC unconverted (code Unknown) from Authenticate and
  // from the maintenance calls that need the root role (Defragment, Hash, HashKV, Snapshot).
  NO_PASSWORD_USER: {
    status: S.UNKNOWN,
    message: "auth: authentication failed, password was given for no password user",
  },
  AUTH_USER_EMPTY_RAW: { status: S.UNKNOWN, message: "auth: user name is empty" },
  AUTH_PERMISSION_DENIED_RAW: { status: S.UNKNOWN, message: "auth: permission denied" },

  NO_LEADER: { status: S.UNAVAILABLE, message: "etcdserver: no leader" },
  NOT_LEADER: { status: S.FAILED_PRECONDITION, message: "etcdserver: not leader" },
  LEADER_CHANGED: { status: S.UNAVAILABLE, message: "etcdserver: leader changed" },
  NOT_CAPABLE: { status: S.UNAVAILABLE, message: "etcdserver: not capable" },
  STOPPED: { status: S.UNAVAILABLE, message: "etcdserver: server stopped" },
  TIMEOUT: { status: S.UNAVAILABLE, message: "etcdserver: request timed out" },
  TIMEOUT_DUE_TO_LEADER_FAIL: {
    status: S.UNAVAILABLE,
    message: "etcdserver: request timed out, possibly due to previous leader failure",
  },
  TIMEOUT_DUE_TO_CONNECTION_LOST: {
    status: S.UNAVAILABLE,
    message: "etcdserver: request timed out, possibly due to connection lost",
  },
  UNHEALTHY: { status: S.UNAVAILABLE, message: "etcdserver: unhealthy cluster" },
  CORRUPT: { status: S.DATA_LOSS, message: "etcdserver: corrupt cluster" },
  NOT_SUPPORTED_FOR_LEARNER: { status: S.UNAVAILABLE, message: "etcdserver: rpc not supported for learner" },
  BAD_LEADER_TRANSFEREE: { status: S.FAILED_PRECONDITION, message: "etcdserver: bad leader transferee" },
  // etcd-ts's own: a committed request the apply path could not carry out (etcd would panic on every member).
  // It is refused whole, on every member alike; the detail (logged) says why.
  APPLY_FAILED: { status: S.INTERNAL, message: "etcdserver: request could not be applied" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The one error type of etcd-ts: callers branch on `code`, never on the message text. */
export class EtcdError extends Error {
  readonly code: ErrorCode;
  readonly grpcStatus: GrpcStatusCode;
  /** Extra context for logs; never part of the wire message, which stays etcd's exact text. */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string) {
    super(ERRORS[code].message);
    this.name = "EtcdError";
    this.code = code;
    this.grpcStatus = ERRORS[code].status;
    this.detail = detail;
  }
}

export function isEtcdError(err: unknown, code?: ErrorCode): err is EtcdError {
  return err instanceof EtcdError && (code === undefined || err.code === code);
}

/** Finds the etcd-ts code for an etcd message received over the wire (the client side of the table). */
export function codeForMessage(message: string): ErrorCode | undefined {
  return MESSAGE_TO_CODE.get(message);
}

const MESSAGE_TO_CODE: ReadonlyMap<string, ErrorCode> = new Map(
  (Object.keys(ERRORS) as ErrorCode[]).map((code) => [ERRORS[code].message, code]),
);
