// The auth store: users, roles and key-range permissions (etcd 3.4's auth.authStore), persisted in the
// auth buckets of the backend and mirrored in memory so reads and permission checks never touch LMDB or
// wait on anything.
//
// Apply side: every mutation runs inside the applied batch's write transaction (Raft order). Each one
// checks everything first and throws etcd's error before writing, so a refused request leaves both the
// transaction and memory untouched; then it writes the transaction, and only then memory. Revisions
// follow etcd: every successful mutation bumps the auth revision except enable, an already-granted role
// grant and no-op enable/disable. If a batch fails after an auth mutation (the server treats that as fatal,
// as etcd panics), reload() re-reads memory from the backend.
//
// Permission checks use a per-user pair of merged interval sets (read, write) built on first use and
// dropped when the user or any role changes, so a check is a binary search (range_perms.ts).
import type { ReadView, WriteView } from "../backend/read_view.js";
import { EtcdError } from "../errors.js";
import {
  AUTH_BUCKET,
  AUTH_ROLES_BUCKET,
  AUTH_USERS_BUCKET,
  ENABLE_FLAG_KEY,
  REVISION_KEY,
  decodeRevision,
  decodeRole,
  decodeUser,
  encodeName,
  encodeRevision,
  encodeRole,
  encodeUser,
  type PermissionRecord,
  type RoleRecord,
  type UserRecord,
} from "./auth_codec.js";
import { BCRYPT_DEFAULT_COST, hashPassword, isPasswordHash, verifyPassword } from "./password.js";
import { IntervalSet, compareBytes, permissionInterval, type KeyInterval } from "./range_perms.js";
import type { AuthInfo, TokenProvider } from "./tokens.js";

export type { AuthInfo } from "./tokens.js";

export const AUTH_BUCKETS = [AUTH_BUCKET, AUTH_USERS_BUCKET, AUTH_ROLES_BUCKET] as const;

/** authpb.Permission.Type numbers. */
export const PermType = { READ: 0, WRITE: 1, READWRITE: 2 } as const;
export type PermType = (typeof PermType)[keyof typeof PermType];

export interface Permission {
  readonly permType: PermType;
  readonly key: Uint8Array;
  /** Empty = the single key; "\0" = every key from `key` on; otherwise [key, rangeEnd). */
  readonly rangeEnd: Uint8Array;
}
export interface User {
  readonly name: string;
  readonly roles: readonly string[];
  readonly noPassword: boolean;
}
export interface Role {
  readonly name: string;
  readonly permissions: readonly Permission[];
}

export const ROOT_USER = "root";
export const ROOT_ROLE = "root";

/**
 * The longest user or role name: etcd 3.4 stores a name as a bbolt key, and bbolt's key limit (32 KiB) stops
 * its process on a longer one, so a longer name is refused (before it is proposed, and again at apply).
 */
export const MAX_AUTH_NAME_BYTES = 32_768;

/** What a permission check asks (the server's view of Range/Put/DeleteRange/admin requests). */
export type PermissionRequest =
  | { readonly op: "range" | "deleteRange"; readonly key: Uint8Array; readonly rangeEnd?: Uint8Array }
  | { readonly op: "put"; readonly key: Uint8Array }
  | { readonly op: "admin" };

export interface AuthStoreOptions {
  readonly tokenProvider: TokenProvider;
  /** Clock for token lifetimes, in milliseconds; default Date.now. */
  readonly now?: () => number;
  /** bcrypt cost of new password hashes (--bcrypt-cost, default 10). Stored hashes carry their own cost. */
  readonly bcryptCost?: number;
}

interface UserPerms {
  readonly read: IntervalSet;
  readonly write: IntervalSet;
}

interface State {
  enabled: boolean;
  revision: number;
  users: Map<string, UserRecord>;
  roles: Map<string, RoleRecord>;
}

const AUTHENTICATE_ATTEMPTS = 3;

export class AuthStore {
  readonly tokenProvider: TokenProvider;
  private readonly now: () => number;
  private readonly bcryptCost: number;
  private state: State;
  /** username → merged intervals; an entry is dropped whenever its inputs may have changed. */
  private readonly permCache = new Map<string, UserPerms>();
  private dummyHash: Promise<string> | undefined;

  private constructor(state: State, opts: AuthStoreOptions) {
    this.state = state;
    this.tokenProvider = opts.tokenProvider;
    this.now = opts.now ?? Date.now;
    this.bcryptCost = opts.bcryptCost ?? BCRYPT_DEFAULT_COST;
    if (state.enabled) this.tokenProvider.enable();
  }

  /** Reads the auth buckets (the server registers AUTH_BUCKETS with the backend). */
  static load(view: ReadView, opts: AuthStoreOptions): AuthStore {
    return new AuthStore(readState(view), opts);
  }

  /** Re-reads memory from the backend (after a failed batch, or a snapshot restore). */
  reload(view: ReadView): void {
    const wasEnabled = this.state.enabled;
    this.state = readState(view);
    this.permCache.clear();
    if (wasEnabled && !this.state.enabled) this.tokenProvider.disable();
    if (!wasEnabled && this.state.enabled) this.tokenProvider.enable();
  }

  close(): void {
    this.tokenProvider.disable();
  }

  get enabled(): boolean {
    return this.state.enabled;
  }

  get revision(): number {
    return this.state.revision;
  }

  // ---------------------------------------------------------------------------------------------
  // Apply side

  enable(tx: WriteView): void {
    if (this.state.enabled) return;
    const root = this.state.users.get(ROOT_USER);
    if (root === undefined) throw new EtcdError("ROOT_USER_NOT_EXIST");
    if (!root.roles.includes(ROOT_ROLE)) throw new EtcdError("ROOT_ROLE_NOT_EXIST");
    tx.put(AUTH_BUCKET, ENABLE_FLAG_KEY, Uint8Array.of(1));
    this.state.enabled = true;
    this.tokenProvider.enable();
    this.permCache.clear();
  }

  disable(tx: WriteView): void {
    if (!this.state.enabled) return;
    tx.put(AUTH_BUCKET, ENABLE_FLAG_KEY, Uint8Array.of(0));
    this.commitRevision(tx);
    this.state.enabled = false;
    this.tokenProvider.disable();
  }

  /** `passwordHash` comes from hashPassword() on the proposer; ignored for a --no-password user. */
  userAdd(tx: WriteView, name: string, passwordHash: string | undefined, noPassword: boolean): void {
    if (name.length === 0) throw new EtcdError("USER_EMPTY");
    checkName("user", name);
    if (this.state.users.has(name)) throw new EtcdError("USER_ALREADY_EXIST", `user ${JSON.stringify(name)}`);
    const hash = noPassword ? undefined : passwordHash;
    if (hash !== undefined) checkHash(hash);
    this.putUser(tx, { name, passwordHash: hash, roles: [], noPassword });
    this.commitRevision(tx);
  }

  userDelete(tx: WriteView, name: string): void {
    if (this.state.enabled && name === ROOT_USER)
      throw new EtcdError("INVALID_AUTH_MGMT", "cannot delete user root while auth is enabled");
    if (!this.state.users.has(name)) throw new EtcdError("USER_NOT_FOUND", `user ${JSON.stringify(name)}`);
    tx.del(AUTH_USERS_BUCKET, encodeName(name));
    this.state.users.delete(name);
    this.commitRevision(tx);
    this.permCache.delete(name);
    this.tokenProvider.invalidateUser(name);
  }

  userChangePassword(tx: WriteView, name: string, passwordHash: string): void {
    const user = this.state.users.get(name);
    if (user === undefined) throw new EtcdError("USER_NOT_FOUND", `user ${JSON.stringify(name)}`);
    checkHash(passwordHash);
    // As etcd: the options stay, so a --no-password user still cannot log in with a password.
    this.putUser(tx, { ...user, passwordHash });
    this.commitRevision(tx);
    this.permCache.delete(name);
    this.tokenProvider.invalidateUser(name);
  }

  userGrantRole(tx: WriteView, userName: string, role: string): void {
    const user = this.state.users.get(userName);
    if (user === undefined) throw new EtcdError("USER_NOT_FOUND", `user ${JSON.stringify(userName)}`);
    // etcd lets the root role be granted before a "root" role record exists.
    if (role !== ROOT_ROLE && !this.state.roles.has(role))
      throw new EtcdError("ROLE_NOT_FOUND", `role ${JSON.stringify(role)}`);
    if (user.roles.includes(role)) return; // already granted: no write, no revision (etcd)
    this.putUser(tx, { ...user, roles: [...user.roles, role].sort(compareNames) });
    this.permCache.delete(userName);
    this.commitRevision(tx);
  }

  userRevokeRole(tx: WriteView, userName: string, role: string): void {
    if (this.state.enabled && userName === ROOT_USER && role === ROOT_ROLE) {
      throw new EtcdError("INVALID_AUTH_MGMT", "cannot revoke role root from user root while auth is enabled");
    }
    const user = this.state.users.get(userName);
    if (user === undefined) throw new EtcdError("USER_NOT_FOUND", `user ${JSON.stringify(userName)}`);
    if (!user.roles.includes(role))
      throw new EtcdError("ROLE_NOT_GRANTED", `user ${JSON.stringify(userName)}, role ${JSON.stringify(role)}`);
    this.putUser(tx, { ...user, roles: user.roles.filter((r) => r !== role) });
    this.permCache.delete(userName);
    this.commitRevision(tx);
  }

  roleAdd(tx: WriteView, name: string): void {
    if (name.length === 0) throw new EtcdError("ROLE_EMPTY");
    checkName("role", name);
    if (this.state.roles.has(name)) throw new EtcdError("ROLE_ALREADY_EXIST", `role ${JSON.stringify(name)}`);
    this.putRole(tx, { name, permissions: [] });
    this.commitRevision(tx);
  }

  /** Deletes the role and takes it away from every user holding it (etcd 3.4). */
  roleDelete(tx: WriteView, name: string): void {
    if (this.state.enabled && name === ROOT_ROLE)
      throw new EtcdError("INVALID_AUTH_MGMT", "cannot delete role root while auth is enabled");
    if (!this.state.roles.has(name)) throw new EtcdError("ROLE_NOT_FOUND", `role ${JSON.stringify(name)}`);
    tx.del(AUTH_ROLES_BUCKET, encodeName(name));
    this.state.roles.delete(name);
    for (const user of [...this.state.users.values()]) {
      if (user.roles.includes(name)) this.putUser(tx, { ...user, roles: user.roles.filter((r) => r !== name) });
    }
    this.commitRevision(tx);
    this.permCache.clear();
  }

  /** Adds the permission, or changes the type of the one with the same key and range end. */
  roleGrantPermission(tx: WriteView, roleName: string, perm: Permission): void {
    const role = this.state.roles.get(roleName);
    if (role === undefined) throw new EtcdError("ROLE_NOT_FOUND", `role ${JSON.stringify(roleName)}`);
    if (!Object.values(PermType).includes(perm.permType))
      throw new Error(`auth: permission type ${String(perm.permType)} is not 0, 1 or 2`);
    const rec: PermissionRecord = {
      permType: perm.permType,
      key: new Uint8Array(perm.key),
      rangeEnd: new Uint8Array(perm.rangeEnd),
    };
    const rest = role.permissions.filter((p) => !samePermRange(p, rec.key, rec.rangeEnd));
    this.putRole(tx, { name: roleName, permissions: [...rest, rec].sort(comparePerms) });
    this.permCache.clear();
    this.commitRevision(tx);
  }

  roleRevokePermission(tx: WriteView, roleName: string, key: Uint8Array, rangeEnd: Uint8Array): void {
    const role = this.state.roles.get(roleName);
    if (role === undefined) throw new EtcdError("ROLE_NOT_FOUND", `role ${JSON.stringify(roleName)}`);
    const rest = role.permissions.filter((p) => !samePermRange(p, key, rangeEnd));
    if (rest.length === role.permissions.length)
      throw new EtcdError("PERMISSION_NOT_GRANTED", `role ${JSON.stringify(roleName)}`);
    this.putRole(tx, { name: roleName, permissions: rest });
    this.permCache.clear();
    this.commitRevision(tx);
  }

  private commitRevision(tx: WriteView): void {
    const next = this.state.revision + 1;
    tx.put(AUTH_BUCKET, REVISION_KEY, encodeRevision(next));
    this.state.revision = next;
  }

  private putUser(tx: WriteView, user: UserRecord): void {
    tx.put(AUTH_USERS_BUCKET, encodeName(user.name), encodeUser(user));
    this.state.users.set(user.name, user);
  }

  private putRole(tx: WriteView, role: RoleRecord): void {
    tx.put(AUTH_ROLES_BUCKET, encodeName(role.name), encodeRole(role));
    this.state.roles.set(role.name, role);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads (memory only)

  userGet(name: string): User {
    const u = this.state.users.get(name);
    if (u === undefined) throw new EtcdError("USER_NOT_FOUND", `user ${JSON.stringify(name)}`);
    return { name: u.name, roles: [...u.roles], noPassword: u.noPassword };
  }

  /** Names in byte order, as etcd lists its bucket. */
  userList(): string[] {
    return [...this.state.users.keys()].sort(compareNames);
  }

  roleGet(name: string): Role {
    const r = this.state.roles.get(name);
    if (r === undefined) throw new EtcdError("ROLE_NOT_FOUND", `role ${JSON.stringify(name)}`);
    return {
      name: r.name,
      permissions: r.permissions.map((p) => ({
        permType: p.permType as PermType,
        key: new Uint8Array(p.key),
        rangeEnd: new Uint8Array(p.rangeEnd),
      })),
    };
  }

  roleList(): string[] {
    return [...this.state.roles.keys()].sort(compareNames);
  }

  // ---------------------------------------------------------------------------------------------
  // Authentication

  /** Hashes a password for userAdd/userChangePassword; run by the proposer, off the apply path. */
  hashPassword(password: string): Promise<string> {
    return hashPassword(password, this.bcryptCost);
  }

  /**
   * Whether the user exists, may log in with a password and the password matches. An unknown or
   * --no-password user costs one hash too, so the answer's timing does not tell which names exist.
   */
  async checkPassword(name: string, password: string): Promise<boolean> {
    const user = this.state.users.get(name);
    if (user === undefined || user.noPassword || user.passwordHash === undefined) {
      this.dummyHash ??= hashPassword("", this.bcryptCost);
      await verifyPassword(password, await this.dummyHash);
      return false;
    }
    return verifyPassword(password, user.passwordHash);
  }

  /**
   * Checks the password and issues a token. The password is checked against the user record as it was
   * when hashing began; if the record changed meanwhile (password, roles, deletion), check again, as etcd
   * retries when the auth revision moved under CheckPassword.
   */
  async authenticate(name: string, password: string): Promise<string> {
    for (let attempt = 0; attempt < AUTHENTICATE_ATTEMPTS; attempt++) {
      if (!this.state.enabled) throw new EtcdError("AUTH_NOT_ENABLED");
      const before = this.state.users.get(name);
      const ok = await this.checkPassword(name, password);
      if (this.state.users.get(name) !== before) continue;
      if (!ok) throw new EtcdError("AUTH_FAILED", `user ${JSON.stringify(name)}`);
      return this.assignToken(name);
    }
    throw new EtcdError(
      "AUTH_FAILED",
      `user ${JSON.stringify(name)} changed during ${AUTHENTICATE_ATTEMPTS} password checks`,
    );
  }

  /**
   * Issues a token for a user whose password the proposer checked (etcd's Authenticate apply step);
   * `index`/`prefix` make a simple token the same on every member.
   */
  assignToken(name: string, opts: { index?: number; prefix?: string } = {}): string {
    if (!this.state.enabled) throw new EtcdError("AUTH_NOT_ENABLED");
    const user = this.state.users.get(name);
    if (user === undefined || user.noPassword) throw new EtcdError("AUTH_FAILED", `user ${JSON.stringify(name)}`);
    return this.tokenProvider.assign(name, { revision: this.state.revision, nowMs: this.now(), ...opts });
  }

  /** The user and auth revision behind a token; INVALID_AUTH_TOKEN if unknown, expired, forged, or auth is off. */
  authInfoFromToken(token: string): AuthInfo {
    if (!this.state.enabled) throw new EtcdError("INVALID_AUTH_TOKEN", "auth is not enabled");
    const info = this.tokenProvider.info(token, { revision: this.state.revision, nowMs: this.now() });
    if (info === undefined) throw new EtcdError("INVALID_AUTH_TOKEN");
    return info;
  }

  /**
   * The identity of a client that presented a verified certificate with --client-cert-auth (etcd's
   * AuthInfoFromTLS): the certificate's common name as user, at the current revision. Undefined when
   * auth is disabled. The server must not use it for requests the gRPC gateway proxies (etcd ignores
   * the gateway's own certificate).
   */
  authInfoFromCommonName(commonName: string): AuthInfo | undefined {
    if (!this.state.enabled) return undefined;
    return { username: commonName, revision: this.state.revision };
  }

  // ---------------------------------------------------------------------------------------------
  // Permission checks: with auth disabled everything is permitted (etcd).

  isRangePermitted(user: string, key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
    return this.isOpPermitted(user, "read", key, rangeEnd);
  }

  isPutPermitted(user: string, key: Uint8Array): boolean {
    return this.isOpPermitted(user, "write", key, undefined);
  }

  isDeleteRangePermitted(user: string, key: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
    return this.isOpPermitted(user, "write", key, rangeEnd);
  }

  /** Whether the user holds the root role (a fact, whether or not auth is enabled). */
  isAdmin(user: string): boolean {
    return this.state.users.get(user)?.roles.includes(ROOT_ROLE) ?? false;
  }

  /**
   * etcd's checks with its errors, for the server: USER_EMPTY without a user, AUTH_OLD_REVISION for a
   * token older than the store, PERMISSION_DENIED; admin requests need the root role (USER_NOT_FOUND if
   * the user is gone). Returns quietly when permitted or when auth is disabled.
   */
  checkPermission(info: AuthInfo | undefined, req: PermissionRequest): void {
    if (!this.state.enabled) return;
    if (req.op === "admin") {
      if (info === undefined || info.username === "") throw new EtcdError("USER_EMPTY");
      if (!this.state.users.has(info.username))
        throw new EtcdError("USER_NOT_FOUND", `user ${JSON.stringify(info.username)}`);
      if (!this.isAdmin(info.username))
        throw new EtcdError("PERMISSION_DENIED", `user ${JSON.stringify(info.username)} is not root`);
      return;
    }
    if (info === undefined || info.revision === 0) throw new EtcdError("USER_EMPTY");
    if (info.revision < this.state.revision) {
      throw new EtcdError(
        "AUTH_OLD_REVISION",
        `token revision ${info.revision} < auth revision ${this.state.revision}`,
      );
    }
    const permitted =
      req.op === "put"
        ? this.isPutPermitted(info.username, req.key)
        : req.op === "range"
          ? this.isRangePermitted(info.username, req.key, req.rangeEnd)
          : this.isDeleteRangePermitted(info.username, req.key, req.rangeEnd);
    if (!permitted) throw new EtcdError("PERMISSION_DENIED", `user ${JSON.stringify(info.username)}, ${req.op}`);
  }

  private isOpPermitted(
    userName: string,
    kind: "read" | "write",
    key: Uint8Array,
    rangeEnd: Uint8Array | undefined,
  ): boolean {
    if (!this.state.enabled) return true;
    const user = this.state.users.get(userName);
    if (user === undefined) return false;
    if (user.roles.includes(ROOT_ROLE)) return true;
    let perms = this.permCache.get(userName);
    if (perms === undefined) {
      perms = this.mergedPerms(user);
      this.permCache.set(userName, perms);
    }
    return perms[kind].coversRequest(key, rangeEnd);
  }

  private mergedPerms(user: UserRecord): UserPerms {
    const read: KeyInterval[] = [];
    const write: KeyInterval[] = [];
    for (const roleName of user.roles) {
      for (const p of this.state.roles.get(roleName)?.permissions ?? []) {
        const ivl = permissionInterval(p.key, p.rangeEnd);
        if (ivl === undefined) continue;
        if (p.permType === PermType.READ || p.permType === PermType.READWRITE) read.push(ivl);
        if (p.permType === PermType.WRITE || p.permType === PermType.READWRITE) write.push(ivl);
      }
    }
    return { read: IntervalSet.of(read), write: IntervalSet.of(write) };
  }
}

function readState(view: ReadView): State {
  const flag = view.get(AUTH_BUCKET, ENABLE_FLAG_KEY);
  const revBytes = view.get(AUTH_BUCKET, REVISION_KEY);
  // etcd commits revision 1 when it creates the auth store; an untouched store reads as 1 here too.
  const revision = revBytes === undefined ? 1 : decodeRevision(revBytes);
  const users = new Map<string, UserRecord>();
  for (const { value } of view.range(AUTH_USERS_BUCKET, {})) {
    const u = decodeUser(value);
    users.set(u.name, u);
  }
  const roles = new Map<string, RoleRecord>();
  for (const { value } of view.range(AUTH_ROLES_BUCKET, {})) {
    const r = decodeRole(value);
    roles.set(r.name, r);
  }
  return { enabled: flag !== undefined && flag.length === 1 && flag[0] === 1, revision, users, roles };
}

/** In u-mode a paired surrogate is one code point, so only lone surrogates match. */
const LONE_SURROGATE = /\p{Cs}/u;

const nameBytes = (s: string): Buffer => Buffer.from(s, "utf8");

/** Byte order of the UTF-8 names (Go's string order, LMDB's key order). */
function compareNames(a: string, b: string): number {
  return Buffer.compare(nameBytes(a), nameBytes(b));
}

function checkName(what: "user" | "role", name: string): void {
  // A lone surrogate would encode to U+FFFD and collide with another name in the bucket.
  if (LONE_SURROGATE.test(name))
    throw new Error(`auth: ${what} name ${JSON.stringify(name)} is not well-formed Unicode`);
  const n = nameBytes(name).length;
  // An error of the request (every member refuses it alike when the entry applies), never a crash of the member.
  if (n > MAX_AUTH_NAME_BYTES)
    throw new EtcdError("REQUEST_TOO_LARGE", `auth: ${what} name of ${n} bytes exceeds ${MAX_AUTH_NAME_BYTES}`);
}

function checkHash(hash: string): void {
  if (!isPasswordHash(hash))
    throw new Error("auth: password is not a hash from AuthStore.hashPassword (hash on the proposer)");
}

function samePermRange(p: PermissionRecord, key: Uint8Array, rangeEnd: Uint8Array): boolean {
  return compareBytes(p.key, key) === 0 && compareBytes(p.rangeEnd, rangeEnd) === 0;
}

function comparePerms(a: PermissionRecord, b: PermissionRecord): number {
  return compareBytes(a.key, b.key) || compareBytes(a.rangeEnd, b.rangeEnd);
}
