// The auth buckets' records in etcd's own layout: bucket "auth" holds "authEnabled" (one byte, 1 or 0) and
// "authRevision" (8 bytes big-endian); "authUsers" maps a user name to an authpb.User and "authRoles" a role
// name to an authpb.Role, both protobuf-encoded with authpb's field numbers (core/api/proto/authpb/auth.proto).
// The password field holds a bcrypt hash string, as etcd's (see password.ts).

import { createHash } from "node:crypto";

export const AUTH_BUCKET = "auth";
export const AUTH_USERS_BUCKET = "authUsers";
export const AUTH_ROLES_BUCKET = "authRoles";

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export const ENABLE_FLAG_KEY = utf8.encode("authEnabled");
export const REVISION_KEY = utf8.encode("authRevision");

/** A user as stored: the password hash (undefined for --no-password users or users added without one). */
export interface UserRecord {
  readonly name: string;
  readonly passwordHash: string | undefined;
  /** Sorted, no duplicates (etcd keeps them sorted and searches them). */
  readonly roles: readonly string[];
  readonly noPassword: boolean;
}

export interface PermissionRecord {
  /** authpb.Permission.Type: 0 READ, 1 WRITE, 2 READWRITE. */
  readonly permType: number;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

export interface RoleRecord {
  readonly name: string;
  /** Sorted by key, then range end. */
  readonly permissions: readonly PermissionRecord[];
}

// --- a minimal protobuf writer/reader (varint and length-delimited fields are all authpb needs) ---

class PbWriter {
  private readonly parts: number[] = [];

  varint(field: number, value: number): void {
    this.tag(field, 0);
    this.rawVarint(value);
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, 2);
    this.rawVarint(value.length);
    for (const b of value) this.parts.push(b);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }

  private tag(field: number, wireType: number): void {
    this.rawVarint(field * 8 + wireType);
  }

  private rawVarint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`auth codec: varint ${n} out of range`);
    let v = n;
    while (v >= 0x80) {
      this.parts.push((v % 0x80) + 0x80);
      v = Math.floor(v / 0x80);
    }
    this.parts.push(v);
  }
}

interface PbField {
  readonly field: number;
  readonly varint: number;
  readonly bytes: Uint8Array | undefined;
}

function* readFields(buf: Uint8Array, what: string): Generator<PbField> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error(`auth codec: ${what}: truncated varint at byte ${pos}`);
      const b = buf[pos++] as number;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new Error(`auth codec: ${what}: varint longer than 10 bytes at byte ${pos}`);
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType === 0) {
      yield { field, varint: varint(), bytes: undefined };
    } else if (wireType === 2) {
      const len = varint();
      if (pos + len > buf.length)
        throw new Error(`auth codec: ${what}: field ${field} length ${len} past end ${buf.length}`);
      yield { field, varint: 0, bytes: buf.subarray(pos, pos + len) };
      pos += len;
    } else if (wireType === 1 || wireType === 5) {
      pos += wireType === 1 ? 8 : 4; // unknown fixed-width field: skip
    } else {
      throw new Error(`auth codec: ${what}: unsupported wire type ${wireType} for field ${field}`);
    }
  }
  if (pos !== buf.length) throw new Error(`auth codec: ${what}: ran ${pos - buf.length} bytes past the end`);
}

function text(b: Uint8Array | undefined): string {
  return b === undefined ? "" : utf8Strict.decode(b);
}

// --- records ---

export function encodeUser(u: UserRecord): Uint8Array {
  const w = new PbWriter();
  w.bytes(1, utf8.encode(u.name));
  if (u.passwordHash !== undefined) w.bytes(2, utf8.encode(u.passwordHash));
  for (const r of u.roles) w.bytes(3, utf8.encode(r));
  const opts = new PbWriter();
  if (u.noPassword) opts.varint(1, 1);
  w.bytes(4, opts.finish());
  return w.finish();
}

export function decodeUser(buf: Uint8Array): UserRecord {
  let name = "";
  let passwordHash: string | undefined;
  const roles: string[] = [];
  let noPassword = false;
  for (const f of readFields(buf, "authpb.User")) {
    if (f.field === 1) name = text(f.bytes);
    else if (f.field === 2) passwordHash = f.bytes !== undefined && f.bytes.length > 0 ? text(f.bytes) : undefined;
    else if (f.field === 3) roles.push(text(f.bytes));
    else if (f.field === 4 && f.bytes !== undefined) {
      for (const o of readFields(f.bytes, "authpb.UserAddOptions")) if (o.field === 1) noPassword = o.varint !== 0;
    }
  }
  return { name, passwordHash, roles, noPassword };
}

export function encodeRole(r: RoleRecord): Uint8Array {
  const w = new PbWriter();
  w.bytes(1, utf8.encode(r.name));
  for (const p of r.permissions) {
    const pw = new PbWriter();
    if (p.permType !== 0) pw.varint(1, p.permType);
    if (p.key.length > 0) pw.bytes(2, p.key);
    if (p.rangeEnd.length > 0) pw.bytes(3, p.rangeEnd);
    w.bytes(2, pw.finish());
  }
  return w.finish();
}

export function decodeRole(buf: Uint8Array): RoleRecord {
  let name = "";
  const permissions: PermissionRecord[] = [];
  for (const f of readFields(buf, "authpb.Role")) {
    if (f.field === 1) name = text(f.bytes);
    else if (f.field === 2 && f.bytes !== undefined) permissions.push(decodePermission(f.bytes));
  }
  return { name, permissions };
}

function decodePermission(buf: Uint8Array): PermissionRecord {
  let permType = 0;
  let key: Uint8Array = new Uint8Array(0);
  let rangeEnd: Uint8Array = new Uint8Array(0);
  for (const f of readFields(buf, "authpb.Permission")) {
    if (f.field === 1) permType = f.varint;
    else if (f.field === 2 && f.bytes !== undefined) key = new Uint8Array(f.bytes);
    else if (f.field === 3 && f.bytes !== undefined) rangeEnd = new Uint8Array(f.bytes);
  }
  if (permType > 2) throw new Error(`auth codec: authpb.Permission: permType ${permType} is not 0, 1 or 2`);
  return { permType, key, rangeEnd };
}

export function encodeRevision(rev: number): Uint8Array {
  if (!Number.isSafeInteger(rev) || rev < 0)
    throw new Error(`auth codec: revision ${rev} is not a safe non-negative integer`);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(rev / 2 ** 32));
  view.setUint32(4, rev >>> 0);
  return out;
}

export function decodeRevision(b: Uint8Array): number {
  if (b.length !== 8) throw new Error(`auth codec: authRevision is ${b.length} bytes, want 8`);
  const view = new DataView(b.buffer, b.byteOffset, 8);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}

/** Names up to this many UTF-8 bytes are their own bucket key (well under LMDB's 1,978-byte key limit). */
export const NAME_KEY_MAX_BYTES = 1024;
/** Starts the bucket key of a longer name: 0xFF occurs in no UTF-8 text, so it never collides with a short name. */
const LONG_NAME_MARK = 0xff;

/**
 * The bucket key of a user or role name (up to 32 KiB, as etcd): its UTF-8 bytes, or for a longer
 * name 0xFF + SHA-256 of them. Records are found by exact key and loaded by a scan of values (which hold the
 * names), so the key only has to be unique per name; listings sort the names themselves.
 */
export function encodeName(name: string): Uint8Array {
  const bytes = utf8.encode(name);
  if (bytes.length <= NAME_KEY_MAX_BYTES) return bytes;
  const out = new Uint8Array(33);
  out[0] = LONG_NAME_MARK;
  out.set(createHash("sha256").update(bytes).digest(), 1);
  return out;
}
