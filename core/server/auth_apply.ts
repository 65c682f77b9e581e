// The server's side of auth (etcd 3.4's authApplierV3 and the auth parts of v3_server.go). Auth mutations travel
// through Raft like writes and apply as backend effects, so users, roles and the enable flag change in Raft order on
// every member inside the batch's transaction. What must be the same on every member is decided by the proposer:
// the password hash (hashing is slow and salted) and a simple token's random prefix (the entry's index completes
// it, as etcd's "<prefix>.<raft index>"). Permission checks run on the member that serves the request, before it
// reads or proposes, with etcd's rules: every op of a txn in both branches and every compare, prev_kv needing read,
// a put or revoke touching a lease needing write on all of the lease's keys, admin requests needing the root role.
import { EtcdError } from "../errors.js";
import {
  AuthStore,
  MAX_AUTH_NAME_BYTES,
  PermType,
  type AuthInfo,
  type Permission,
  type Role,
  type User,
} from "../auth/auth_store.js";
import { parseAuthTokenFlag, type TokenProvider } from "../auth/tokens.js";
import { BCRYPT_DEFAULT_COST, isValidBcryptCost } from "../auth/password.js";
import type { ReadView } from "../backend/read_view.js";
import type { EtcdOnlyFields } from "./request_size.js";
import type {
  Compare,
  DeleteRangeRequest,
  Effect,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WriteResponse,
} from "../mvcc/types.js";

/** One auth mutation as it travels in a Raft entry (names and bytes only; hashes made by the proposer). */
export type AuthOp =
  | { readonly op: "enable" }
  | { readonly op: "disable" }
  | { readonly op: "authenticate"; readonly name: string; readonly prefix: string }
  | { readonly op: "userAdd"; readonly name: string; readonly hash: string | undefined; readonly noPassword: boolean }
  | { readonly op: "userDelete"; readonly name: string }
  | { readonly op: "userChangePassword"; readonly name: string; readonly hash: string }
  | { readonly op: "userGrantRole"; readonly name: string; readonly role: string }
  | { readonly op: "userRevokeRole"; readonly name: string; readonly role: string }
  | { readonly op: "roleAdd"; readonly name: string }
  | { readonly op: "roleDelete"; readonly name: string }
  | { readonly op: "roleGrantPermission"; readonly name: string; readonly perm: Permission }
  | {
      readonly op: "roleRevokePermission";
      readonly name: string;
      readonly key: Uint8Array;
      readonly rangeEnd: Uint8Array;
    };

export interface AuthChange {
  readonly auth: AuthOp;
}

export function isAuthChange(req: object): req is AuthChange {
  return "auth" in req;
}

export interface ServerAuthOptions {
  readonly tokenProvider: TokenProvider;
  /** bcrypt cost of new password hashes (--bcrypt-cost). */
  readonly bcryptCost?: number;
  /** Proposes an auth change through Raft and resolves with its applied result (etcdOnly: for its size only). */
  readonly propose: (req: AuthChange, etcdOnly: EtcdOnlyFields) => Promise<WriteResponse | EtcdError>;
  /** The keys attached to a lease (empty when it does not exist). */
  readonly leaseKeys: (id: bigint) => readonly Uint8Array[];
}

/**
 * Password hashes (bcrypt, tens of milliseconds each at the default cost) run in libuv's thread pool, which the WAL's
 * fdatasync and the backend's commits share (4 threads by default). A burst of logins must not queue the WAL behind
 * dozens of hashes (a proposal would time out), so at most this many hash or verify at once; the rest wait in turn.
 */
const MAX_CONCURRENT_PASSWORD_HASHES = 2;

/** A counting semaphore: run() waits for a free slot (FIFO), so at most `slots` tasks run at once. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.#free = slots;
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    }
  }
}

export class ServerAuth {
  readonly store: AuthStore;
  readonly #hashing = new Slots(MAX_CONCURRENT_PASSWORD_HASHES);
  readonly #propose: ServerAuthOptions["propose"];
  readonly #leaseKeys: ServerAuthOptions["leaseKeys"];

  constructor(view: ReadView, opts: ServerAuthOptions) {
    this.store = AuthStore.load(view, {
      tokenProvider: opts.tokenProvider,
      ...(opts.bcryptCost !== undefined ? { bcryptCost: opts.bcryptCost } : {}),
    });
    this.#propose = opts.propose;
    this.#leaseKeys = opts.leaseKeys;
  }

  get enabled(): boolean {
    return this.store.enabled;
  }

  // ---- apply ----

  /** The backend effect of one auth change; `index` is the entry's Raft index (a simple token's suffix). */
  effect(req: AuthChange, index: number): Effect {
    const a = req.auth;
    const st = this.store;
    return {
      run: (tx) => {
        switch (a.op) {
          case "enable":
            st.enable(tx);
            return {};
          case "disable":
            st.disable(tx);
            return {};
          case "authenticate":
            return { value: st.assignToken(a.name, { index, prefix: a.prefix }) };
          case "userAdd":
            st.userAdd(tx, a.name, a.hash, a.noPassword);
            return {};
          case "userDelete":
            st.userDelete(tx, a.name);
            return {};
          case "userChangePassword":
            st.userChangePassword(tx, a.name, a.hash);
            return {};
          case "userGrantRole":
            st.userGrantRole(tx, a.name, a.role);
            return {};
          case "userRevokeRole":
            st.userRevokeRole(tx, a.name, a.role);
            return {};
          case "roleAdd":
            st.roleAdd(tx, a.name);
            return {};
          case "roleDelete":
            st.roleDelete(tx, a.name);
            return {};
          case "roleGrantPermission":
            st.roleGrantPermission(tx, a.name, a.perm);
            return {};
          case "roleRevokePermission":
            st.roleRevokePermission(tx, a.name, a.key, a.rangeEnd);
            return {};
        }
      },
    };
  }

  // ---- the Auth API (proposer side) ----

  /** Proposes one change; an admin change needs the root role while auth is enabled (etcd's needAdminPermission). */
  async change(info: AuthInfo | undefined, op: AuthOp, passwordBytes = 0): Promise<unknown> {
    if (op.op !== "authenticate") this.store.checkPermission(info, { op: "admin" });
    for (const name of ["name" in op ? op.name : undefined, "role" in op ? op.role : undefined]) {
      const bytes = name === undefined ? 0 : Buffer.byteLength(name, "utf8");
      if (bytes > MAX_AUTH_NAME_BYTES)
        throw new EtcdError("REQUEST_TOO_LARGE", `auth name of ${bytes} bytes (limit ${MAX_AUTH_NAME_BYTES})`);
    }
    const res = await this.#propose({ auth: op }, { sender: info, passwordBytes });
    if (res instanceof EtcdError) throw res;
    if (!("effect" in res)) throw new Error(`apply answered ${Object.keys(res).join()} to an auth change`);
    return res.effect.value;
  }

  /** Hashes on the proposer (salted: every member must store the same bytes), then proposes. */
  async userAdd(info: AuthInfo | undefined, name: string, password: string, noPassword: boolean): Promise<void> {
    this.store.checkPermission(info, { op: "admin" });
    if (name.length === 0) throw new EtcdError("USER_EMPTY");
    const hash = noPassword ? undefined : await this.#hashing.run(() => this.store.hashPassword(password));
    await this.change(info, { op: "userAdd", name, hash, noPassword }, Buffer.byteLength(password));
  }

  async userChangePassword(info: AuthInfo | undefined, name: string, password: string): Promise<void> {
    this.store.checkPermission(info, { op: "admin" });
    this.store.userGet(name); // USER_NOT_FOUND before spending a hash
    const hash = await this.#hashing.run(() => this.store.hashPassword(password));
    await this.change(info, { op: "userChangePassword", name, hash }, Buffer.byteLength(password));
  }

  /**
   * etcd's Authenticate: the password is checked here (off the apply path), then the token is assigned through
   * Raft so that every member knows it. A --no-password user is refused with etcd's own error.
   */
  async authenticate(name: string, password: string): Promise<string> {
    if (!this.store.enabled) throw new EtcdError("AUTH_NOT_ENABLED");
    const user = this.store.userList().includes(name) ? this.store.userGet(name) : undefined;
    if (user?.noPassword === true) throw new EtcdError("NO_PASSWORD_USER", `user ${JSON.stringify(name)}`);
    if (!(await this.#hashing.run(() => this.store.checkPassword(name, password))))
      throw new EtcdError("AUTH_FAILED", `user ${JSON.stringify(name)}`);
    const prefix = this.store.tokenProvider.genTokenPrefix();
    const token = await this.change(undefined, { op: "authenticate", name, prefix });
    if (typeof token !== "string") throw new Error(`authenticate applied to ${typeof token}, not a token`);
    return token;
  }

  /** A user may read itself; anything else needs the root role. */
  userGet(info: AuthInfo | undefined, name: string): User {
    if (!this.#isSelfOrAdmin(info, name)) this.store.checkPermission(info, { op: "admin" });
    return this.store.userGet(name);
  }

  /** A user may read the roles it holds; anything else needs the root role. */
  roleGet(info: AuthInfo | undefined, name: string): Role {
    const holds =
      info !== undefined &&
      this.store.userList().includes(info.username) &&
      this.store.userGet(info.username).roles.includes(name);
    if (this.store.enabled && !holds) this.store.checkPermission(info, { op: "admin" });
    return this.store.roleGet(name);
  }

  userList(info: AuthInfo | undefined): string[] {
    this.store.checkPermission(info, { op: "admin" });
    return this.store.userList();
  }

  roleList(info: AuthInfo | undefined): string[] {
    this.store.checkPermission(info, { op: "admin" });
    return this.store.roleList();
  }

  #isSelfOrAdmin(info: AuthInfo | undefined, name: string): boolean {
    return !this.store.enabled || (info !== undefined && info.username === name);
  }

  // ---- identities and permission checks ----

  /** The identity behind a request's token; undefined without a token or while auth is disabled (tokens ignored). */
  infoFromToken(token: string | undefined): AuthInfo | undefined {
    if (!this.store.enabled || token === undefined) return undefined;
    return this.store.authInfoFromToken(token);
  }

  checkRange(info: AuthInfo | undefined, r: RangeRequest): void {
    if (!this.store.enabled) return;
    this.store.checkPermission(info, { op: "range", key: r.key, ...rangeEndOf(r.rangeEnd) });
  }

  checkPut(info: AuthInfo | undefined, r: PutRequest): void {
    if (!this.store.enabled) return;
    this.store.checkPermission(info, { op: "put", key: r.key });
    if (r.prevKv === true) this.store.checkPermission(info, { op: "range", key: r.key });
    if (r.lease !== undefined && r.lease !== 0n) this.checkLeaseKeys(info, r.lease);
  }

  checkDeleteRange(info: AuthInfo | undefined, r: DeleteRangeRequest): void {
    if (!this.store.enabled) return;
    this.store.checkPermission(info, { op: "deleteRange", key: r.key, ...rangeEndOf(r.rangeEnd) });
    if (r.prevKv === true) this.store.checkPermission(info, { op: "range", key: r.key, ...rangeEndOf(r.rangeEnd) });
  }

  /** Every compare needs read, and every op of both branches its own permission, whichever branch runs. */
  checkTxn(info: AuthInfo | undefined, t: TxnRequest): void {
    if (!this.store.enabled) return;
    for (const c of t.compare) this.#checkCompare(info, c);
    for (const op of [...t.success, ...t.failure]) this.#checkOp(info, op);
  }

  #checkCompare(info: AuthInfo | undefined, c: Compare): void {
    this.store.checkPermission(info, { op: "range", key: c.key, ...rangeEndOf(c.rangeEnd) });
  }

  #checkOp(info: AuthInfo | undefined, op: RequestOp): void {
    if ("range" in op) this.checkRange(info, op.range);
    else if ("put" in op) this.checkPut(info, op.put);
    else if ("deleteRange" in op) this.checkDeleteRange(info, op.deleteRange);
    else this.checkTxn(info, op.txn);
  }

  /** etcd's checkLeasePuts: revoking a lease (or putting under it) needs write on every key attached to it. */
  checkLeaseKeys(info: AuthInfo | undefined, lease: bigint): void {
    if (!this.store.enabled) return;
    for (const key of this.#leaseKeys(lease)) this.store.checkPermission(info, { op: "put", key });
  }

  /**
   * TimeToLive with keys (etcd 3.4.26's fix for CVE-2023-32082): a user without the root role needs read
   * permission on every key attached to the lease, or is refused as a Range of that key would be.
   */
  checkLeaseKeysReadable(info: AuthInfo | undefined, lease: bigint): void {
    if (!this.store.enabled) return;
    if (info !== undefined && this.store.isAdmin(info.username)) return;
    for (const key of this.#leaseKeys(lease)) this.store.checkPermission(info, { op: "range", key });
  }

  /**
   * Watch create: why etcd would refuse a watch with the stream's token (a bad or old token, no user, no read
   * permission), or undefined when permitted. etcd cancels such a watch instead of failing the stream.
   */
  watchDenial(token: string | undefined, key: Uint8Array, rangeEnd: Uint8Array | undefined): EtcdError | undefined {
    if (!this.store.enabled) return undefined;
    try {
      this.store.checkPermission(this.infoFromToken(token), { op: "range", key, ...rangeEndOf(rangeEnd) });
      return undefined;
    } catch (err) {
      if (err instanceof EtcdError && ["INVALID_AUTH_TOKEN", "AUTH_OLD_REVISION", "USER_EMPTY"].includes(err.code))
        return err;
      return new EtcdError("PERMISSION_DENIED", err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * Requests that need the root role with etcd's rpctypes errors (user name is empty / user name not found /
   * permission denied): auth management, and member add/remove/update/promote (etcd 3.4's
   * checkMembershipOperationPermission, checked against real etcd through etcdctl).
   */
  checkAdmin(info: AuthInfo | undefined): void {
    this.store.checkPermission(info, { op: "admin" });
  }

  /**
   * Maintenance's Defragment, Hash, HashKV and Snapshot (etcd's authMaintenanceServer): the root role, refused
   * with the auth package's own errors, which etcd hands to gRPC unconverted (code Unknown).
   */
  checkMaintenance(info: AuthInfo | undefined): void {
    if (!this.store.enabled) return;
    if (info === undefined || info.username === "") throw new EtcdError("AUTH_USER_EMPTY_RAW");
    if (!this.store.isAdmin(info.username))
      throw new EtcdError("AUTH_PERMISSION_DENIED_RAW", `user ${JSON.stringify(info.username)}`);
  }
}

function rangeEndOf(rangeEnd: Uint8Array | undefined): { rangeEnd?: Uint8Array } {
  return rangeEnd !== undefined && rangeEnd.length > 0 ? { rangeEnd } : {};
}

/** authpb.Permission.Type from proto-loader's enum name or number. */
export function permTypeOf(v: unknown): PermType {
  if (v === "READ" || v === 0 || v === undefined || v === null) return PermType.READ;
  if (v === "WRITE" || v === 1) return PermType.WRITE;
  if (v === "READWRITE" || v === 2) return PermType.READWRITE;
  throw new Error(`auth: permission type ${String(v)} is not READ, WRITE or READWRITE`);
}

export interface AuthFlags {
  readonly tokenProvider: TokenProvider;
  readonly bcryptCost: number;
  /** Set when --bcrypt-cost was outside Go's bcrypt range and the default is used instead (etcd warns too). */
  readonly warning?: string;
}

/** --auth-token, --auth-token-ttl and --bcrypt-cost. A bad token flag throws; a bad cost falls back as etcd's. */
export function authFromFlags(authToken: string, ttlSeconds: number, bcryptCost: number): AuthFlags {
  const tokenProvider = parseAuthTokenFlag(authToken, { ttlSeconds });
  if (isValidBcryptCost(bcryptCost)) return { tokenProvider, bcryptCost };
  return {
    tokenProvider,
    bcryptCost: BCRYPT_DEFAULT_COST,
    warning: `Use default bcrypt-cost ${BCRYPT_DEFAULT_COST} instead of the invalid value ${bcryptCost}`,
  };
}
