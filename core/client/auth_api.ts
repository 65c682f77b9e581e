// Auth service wrappers: enable/disable, users (add, get, list, delete, change password, grant/revoke role) and
// roles (add, get, list, delete, grant/revoke a key-range permission). The client's own username/password
// (ConnectionOptions) authenticate every call, these included; the reads among them are repeatable.
import type * as pb from "../api/proto/types.js";
import type { Connection } from "./connection.js";
import { header, prefixEnd, toBuf, type Bytes, type ResponseHeader } from "./wire.js";

export const PERMISSION_TYPES = ["READ", "WRITE", "READWRITE"] as const;
export type PermissionType = (typeof PERMISSION_TYPES)[number];

export interface Permission {
  readonly permType: PermissionType;
  readonly key: Buffer;
  /** Absent for a single key; etcd's "\0" means every key >= key. */
  readonly rangeEnd: Buffer | undefined;
}

export interface PermissionSpec {
  readonly permType: PermissionType;
  readonly key: Bytes;
  readonly rangeEnd?: Bytes;
  /** Every key starting with `key` (sets rangeEnd to the prefix end). */
  readonly prefix?: boolean;
}

/** The Auth responses that carry only a header (the rest carry more, read by their own methods). */
interface HeaderOnly {
  readonly header: pb.ResponseHeader__Output | null;
}

function rangeEndOf(spec: { key: Bytes; rangeEnd?: Bytes; prefix?: boolean }): Buffer {
  if (spec.prefix === true) return prefixEnd(toBuf(spec.key));
  return spec.rangeEnd === undefined ? Buffer.alloc(0) : toBuf(spec.rangeEnd);
}

export class AuthApi {
  constructor(private readonly conn: Connection) {}

  private async call<Req>(method: string, req: Req): Promise<ResponseHeader> {
    return header((await this.conn.unary<Req, HeaderOnly>("Auth", method, req)).header);
  }

  /** authEnable needs a `root` user holding the `root` role (ROOT_USER_NOT_EXIST / ROOT_ROLE_NOT_EXIST otherwise). */
  authEnable(): Promise<ResponseHeader> {
    return this.call("AuthEnable", {});
  }

  authDisable(): Promise<ResponseHeader> {
    return this.call("AuthDisable", {});
  }

  /** userAdd creates a user; `noPassword` makes one that can only authenticate by certificate CN. */
  userAdd(name: string, password: string, opts: { noPassword?: boolean } = {}): Promise<ResponseHeader> {
    return this.call("UserAdd", { name, password, options: { no_password: opts.noPassword ?? false } });
  }

  async userGet(name: string): Promise<{ header: ResponseHeader; roles: string[] }> {
    const res = await this.conn.unary<pb.AuthUserGetRequest, pb.AuthUserGetResponse__Output>("Auth", "UserGet", {
      name,
    });
    return { header: header(res.header), roles: res.roles };
  }

  async userList(): Promise<string[]> {
    return (await this.conn.unary<pb.AuthUserListRequest, pb.AuthUserListResponse__Output>("Auth", "UserList", {}))
      .users;
  }

  userDelete(name: string): Promise<ResponseHeader> {
    return this.call("UserDelete", { name });
  }

  userChangePassword(name: string, password: string): Promise<ResponseHeader> {
    return this.call("UserChangePassword", { name, password });
  }

  userGrantRole(user: string, role: string): Promise<ResponseHeader> {
    return this.call("UserGrantRole", { user, role });
  }

  userRevokeRole(user: string, role: string): Promise<ResponseHeader> {
    return this.call("UserRevokeRole", { name: user, role });
  }

  roleAdd(name: string): Promise<ResponseHeader> {
    return this.call("RoleAdd", { name });
  }

  async roleGet(role: string): Promise<{ header: ResponseHeader; permissions: Permission[] }> {
    const res = await this.conn.unary<pb.AuthRoleGetRequest, pb.AuthRoleGetResponse__Output>("Auth", "RoleGet", {
      role,
    });
    return {
      header: header(res.header),
      permissions: res.perm.map((p) => ({
        permType: p.permType,
        key: p.key,
        rangeEnd: p.range_end.length === 0 ? undefined : p.range_end,
      })),
    };
  }

  async roleList(): Promise<string[]> {
    return (await this.conn.unary<pb.AuthRoleListRequest, pb.AuthRoleListResponse__Output>("Auth", "RoleList", {}))
      .roles;
  }

  roleDelete(role: string): Promise<ResponseHeader> {
    return this.call("RoleDelete", { role });
  }

  roleGrantPermission(role: string, perm: PermissionSpec): Promise<ResponseHeader> {
    return this.call("RoleGrantPermission", {
      name: role,
      perm: { permType: perm.permType, key: toBuf(perm.key), range_end: rangeEndOf(perm) },
    });
  }

  roleRevokePermission(
    role: string,
    key: Bytes,
    opts: { rangeEnd?: Bytes; prefix?: boolean } = {},
  ): Promise<ResponseHeader> {
    return this.call("RoleRevokePermission", { role, key: toBuf(key), range_end: rangeEndOf({ key, ...opts }) });
  }
}
