// etcd's Auth service (AuthEnable … RoleRevokePermission) over the server's ServerAuth, and the helpers every other
// service uses to learn who is calling: etcd's clients send the token from Authenticate as gRPC metadata "token".
// While auth is disabled a token is ignored; while it is enabled an unknown or expired one is refused with
// "etcdserver: invalid auth token" (clientv3 then authenticates again).
import type * as grpc from "@grpc/grpc-js";
import type { AuthInfo } from "../auth/auth_store.js";
import { permTypeOf } from "../server/auth_apply.js";
import { commonNameOfCall } from "./tls_verify.js";
import type { EtcdServer } from "../server/etcd_server.js";
import { headerObject } from "./unary.js";

/** etcd's metadata key for the auth token (clientv3's rpctypes.TokenFieldNameGRPC). */
export const TOKEN_METADATA_KEY = "token";

type Callback = (err: Partial<grpc.StatusObject> | null, res?: unknown) => void;
type ToStatus = (e: unknown) => Partial<grpc.StatusObject>;
interface CallLike {
  readonly request: Record<string, unknown>;
  readonly metadata?: grpc.Metadata;
}

/** The token a call carries, if any. */
export function tokenOf(metadata: grpc.Metadata | undefined): string | undefined {
  const v = metadata?.get(TOKEN_METADATA_KEY)[0];
  if (v === undefined) return undefined;
  return typeof v === "string" ? v : v.toString("utf8");
}

/** Who is calling (undefined while auth is disabled or without a token); INVALID_AUTH_TOKEN for a bad token. */
export function authInfoOf(
  s: EtcdServer,
  call: { readonly metadata?: grpc.Metadata; getAuthContext?(): unknown },
): AuthInfo | undefined {
  if (!s.auth.enabled) return undefined;
  const token = tokenOf(call.metadata);
  if (token === undefined) {
    // As etcd: without a token, a verified client certificate's CN names the user (--client-cert-auth).
    const cn = commonNameOfCall(call as Parameters<typeof commonNameOfCall>[0]);
    if (cn !== undefined) return s.auth.store.authInfoFromCommonName(cn);
  }
  return s.auth.infoFromToken(token);
}

type AuthHandler = (req: Record<string, unknown>, info: AuthInfo | undefined) => Promise<object> | object;

/** `anonymous`: the call's token is not looked at (Authenticate, as etcd). */
/** Go's names of gRPC codes, as a Go status error prints them ("rpc error: code = … desc = …"). */
const GO_CODE_NAMES: Readonly<Record<number, string>> = {
  2: "Unknown",
  3: "InvalidArgument",
  7: "PermissionDenied",
  9: "FailedPrecondition",
  16: "Unauthenticated",
};

/**
 * The cancel reason of a watch create etcd 3.4 refuses for auth (its gRPC error as Go prints it: invalid or old
 * token, no user, permission denied), or undefined when the stream's user may watch the range.
 */
export function watchCancelReason(
  s: EtcdServer,
  metadata: grpc.Metadata | undefined,
  key: Uint8Array,
  rangeEnd: Uint8Array | undefined,
): string | undefined {
  const err = s.auth.watchDenial(tokenOf(metadata), key, rangeEnd);
  if (err === undefined) return undefined;
  return `rpc error: code = ${GO_CODE_NAMES[err.grpcStatus] ?? "Unknown"} desc = ${err.message}`;
}

function unary(s: EtcdServer, toStatus: ToStatus, fn: AuthHandler, anonymous = false) {
  return (call: CallLike, cb: Callback): void => {
    Promise.resolve()
      .then(() => fn(call.request, anonymous ? undefined : authInfoOf(s, call)))
      .then(
        (res) => cb(null, { header: headerObject(s.header()), ...res }),
        (err: unknown) => cb(toStatus(err)),
      );
  };
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const bytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : new Uint8Array(0));
const PERM_TYPE_NAMES = ["READ", "WRITE", "READWRITE"] as const;

export function authService(s: EtcdServer, toStatus: ToStatus): grpc.UntypedServiceImplementation {
  const a = s.auth;
  const u = (fn: AuthHandler): ReturnType<typeof unary> => unary(s, toStatus, fn);
  return {
    AuthEnable: u(async (_req, info) => (await a.change(info, { op: "enable" }), {})),
    AuthDisable: u(async (_req, info) => (await a.change(info, { op: "disable" }), {})),
    Authenticate: unary(
      s,
      toStatus,
      async (req) => ({ token: await a.authenticate(str(req["name"]), str(req["password"])) }),
      true,
    ),
    UserAdd: u(async (req, info) => {
      const opts = req["options"] as { no_password?: boolean } | null | undefined;
      await a.userAdd(info, str(req["name"]), str(req["password"]), opts?.no_password === true);
      return {};
    }),
    UserGet: u((req, info) => ({ roles: a.userGet(info, str(req["name"])).roles })),
    UserList: u((_req, info) => ({ users: a.userList(info) })),
    UserDelete: u(async (req, info) => (await a.change(info, { op: "userDelete", name: str(req["name"]) }), {})),
    UserChangePassword: u(
      async (req, info) => (await a.userChangePassword(info, str(req["name"]), str(req["password"])), {}),
    ),
    UserGrantRole: u(
      async (req, info) => (
        await a.change(info, { op: "userGrantRole", name: str(req["user"]), role: str(req["role"]) }), {}
      ),
    ),
    UserRevokeRole: u(
      async (req, info) => (
        await a.change(info, { op: "userRevokeRole", name: str(req["name"]), role: str(req["role"]) }), {}
      ),
    ),
    RoleAdd: u(async (req, info) => (await a.change(info, { op: "roleAdd", name: str(req["name"]) }), {})),
    RoleGet: u((req, info) => ({
      perm: a.roleGet(info, str(req["role"])).permissions.map((p) => ({
        permType: PERM_TYPE_NAMES[p.permType],
        key: Buffer.from(p.key),
        range_end: Buffer.from(p.rangeEnd),
      })),
    })),
    RoleList: u((_req, info) => ({ roles: a.roleList(info) })),
    RoleDelete: u(async (req, info) => (await a.change(info, { op: "roleDelete", name: str(req["role"]) }), {})),
    RoleGrantPermission: u(async (req, info) => {
      const p = (req["perm"] ?? {}) as Record<string, unknown>;
      const perm = { permType: permTypeOf(p["permType"]), key: bytes(p["key"]), rangeEnd: bytes(p["range_end"]) };
      await a.change(info, { op: "roleGrantPermission", name: str(req["name"]), perm });
      return {};
    }),
    RoleRevokePermission: u(async (req, info) => {
      const op = {
        op: "roleRevokePermission",
        name: str(req["role"]),
        key: bytes(req["key"]),
        rangeEnd: bytes(req["range_end"]),
      } as const;
      await a.change(info, op);
      return {};
    }),
  };
}
