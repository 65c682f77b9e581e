// Proves etcd-ts counts a request's size as etcd 3.4 marshals it: for random puts, deletes, txns (nested, every
// compare target, ranges with every option, negative and large numbers), compactions, lease and alarm requests and
// every auth change, with and without a sender, the length request_size.ts counts equals the length protobufjs
// encodes for the same InternalRaftRequest (built from etcd's .proto field numbers); v2 writes and a publish equal
// the encoding of etcd's proto2 v2 Request. Proto3 zero values are left out of the encoded objects as gogo does.
// Through a member, a user add is sized with its plaintext password (etcd's proposal carries it; etcd-ts's, a hash).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import protobuf from "protobufjs";
import { afterEach, describe, expect, it } from "vitest";
import { PROTO_FILES, protoDir } from "../../core/api/proto/load.js";
import type { AuthInfo } from "../../core/auth/tokens.js";
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from "../../core/mvcc/types.js";
import type { AuthOp } from "../../core/server/auth_apply.js";
import type { InternalRequest } from "../../core/server/request_codec.js";
import { EtcdServer } from "../../core/server/etcd_server.js";
import { etcdRequestBytes } from "../../core/server/request_size.js";
import type { V2Request } from "../../core/v2store/index.js";

const { Field, Type } = protobuf;

/** etcd's .proto files plus the messages of raft_internal.proto and etcdserver.proto this test needs. */
function schema(): { internal: protobuf.Type; v2: protobuf.Type } {
  const dir = protoDir();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith("/") ? target : join(dir, target));
  root.loadSync(
    PROTO_FILES.map((f) => join(dir, f)),
    { keepCase: true },
  );
  const ns = root.lookup("etcdserverpb") as protobuf.Namespace;
  const header = new Type("RequestHeader")
    .add(new Field("ID", 1, "uint64"))
    .add(new Field("username", 2, "string"))
    .add(new Field("auth_revision", 3, "uint64"));
  const authn = new Type("InternalAuthenticateRequest")
    .add(new Field("name", 1, "string"))
    .add(new Field("password", 2, "string"))
    .add(new Field("simple_token", 3, "string"));
  const fields: [string, number, string][] = [
    ["header", 100, "RequestHeader"],
    ["put", 4, "PutRequest"],
    ["delete_range", 5, "DeleteRangeRequest"],
    ["txn", 6, "TxnRequest"],
    ["compaction", 7, "CompactionRequest"],
    ["lease_grant", 8, "LeaseGrantRequest"],
    ["lease_revoke", 9, "LeaseRevokeRequest"],
    ["alarm", 10, "AlarmRequest"],
    ["lease_checkpoint", 11, "LeaseCheckpointRequest"],
    ["auth_enable", 1000, "AuthEnableRequest"],
    ["auth_disable", 1011, "AuthDisableRequest"],
    ["authenticate", 1012, "InternalAuthenticateRequest"],
    ["auth_user_add", 1100, "AuthUserAddRequest"],
    ["auth_user_delete", 1101, "AuthUserDeleteRequest"],
    ["auth_user_change_password", 1103, "AuthUserChangePasswordRequest"],
    ["auth_user_grant_role", 1104, "AuthUserGrantRoleRequest"],
    ["auth_user_revoke_role", 1105, "AuthUserRevokeRoleRequest"],
    ["auth_role_add", 1200, "AuthRoleAddRequest"],
    ["auth_role_delete", 1201, "AuthRoleDeleteRequest"],
    ["auth_role_grant_permission", 1203, "AuthRoleGrantPermissionRequest"],
    ["auth_role_revoke_permission", 1204, "AuthRoleRevokePermissionRequest"],
  ];
  const internal = new Type("InternalRaftRequest");
  for (const [name, id, type] of fields) internal.add(new Field(name, id, type));
  // etcdserver.proto's Request is proto2 with non-nullable fields: present objects below carry every field.
  const v2 = new Type("Request");
  const v2Fields: [string, number, string][] = [
    ["ID", 1, "uint64"],
    ["Method", 2, "string"],
    ["Path", 3, "string"],
    ["Val", 4, "string"],
    ["Dir", 5, "bool"],
    ["PrevValue", 6, "string"],
    ["PrevIndex", 7, "uint64"],
    ["PrevExist", 8, "bool"],
    ["Expiration", 9, "int64"],
    ["Wait", 10, "bool"],
    ["Since", 11, "uint64"],
    ["Recursive", 12, "bool"],
    ["Sorted", 13, "bool"],
    ["Quorum", 14, "bool"],
    ["Time", 15, "int64"],
    ["Stream", 16, "bool"],
    ["Refresh", 17, "bool"],
  ];
  for (const [name, id, type] of v2Fields) v2.add(new Field(name, id, type));
  ns.add(header).add(authn).add(internal).add(v2);
  root.resolveAll();
  return { internal, v2 };
}

const { internal: INTERNAL, v2: V2 } = schema();

// ---- etcd-ts requests as etcd's protobuf objects (proto3: zero values absent) ----

type Obj = Record<string, unknown>;
const nz = (v: number | bigint | undefined): string | undefined =>
  v === undefined || v === 0 || v === 0n ? undefined : String(v);
/** An enum stays a number (protobufjs reads a string as the value's name). */
const ne = (v: number | undefined): number | undefined => (v === undefined || v === 0 ? undefined : v);
const nb = (b: Uint8Array | undefined): Uint8Array | undefined => (b === undefined || b.length === 0 ? undefined : b);
const nt = (b: boolean | undefined): true | undefined => (b === true ? true : undefined);
const ns = (s: string | undefined): string | undefined => (s === undefined || s === "" ? undefined : s);

function defined(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const putPb = (p: PutRequest): Obj =>
  defined({
    key: nb(p.key),
    value: nb(p.value),
    lease: nz(p.lease),
    prev_kv: nt(p.prevKv),
    ignore_value: nt(p.ignoreValue),
    ignore_lease: nt(p.ignoreLease),
  });

const rangePb = (r: RangeRequest & { serializable?: boolean }): Obj =>
  defined({
    key: nb(r.key),
    range_end: nb(r.rangeEnd),
    limit: nz(r.limit),
    revision: nz(r.revision),
    sort_order: ne(r.sortOrder),
    sort_target: ne(r.sortTarget),
    serializable: nt(r.serializable),
    keys_only: nt(r.keysOnly),
    count_only: nt(r.countOnly),
    min_mod_revision: nz(r.minModRevision),
    max_mod_revision: nz(r.maxModRevision),
    min_create_revision: nz(r.minCreateRevision),
    max_create_revision: nz(r.maxCreateRevision),
  });

/** The oneof member is present even when zero. */
const comparePb = (c: Compare): Obj =>
  defined({
    result: ne(c.result),
    target: ne(c.target),
    key: nb(c.key),
    range_end: nb(c.rangeEnd),
    version: c.version === undefined ? undefined : String(c.version),
    create_revision: c.createRevision === undefined ? undefined : String(c.createRevision),
    mod_revision: c.modRevision === undefined ? undefined : String(c.modRevision),
    value: c.value,
    lease: c.lease === undefined ? undefined : String(c.lease),
  });

function opPb(op: RequestOp): Obj {
  if ("range" in op) return { request_range: rangePb(op.range) };
  if ("put" in op) return { request_put: putPb(op.put) };
  if ("deleteRange" in op)
    return {
      request_delete_range: defined({
        key: nb(op.deleteRange.key),
        range_end: nb(op.deleteRange.rangeEnd),
        prev_kv: nt(op.deleteRange.prevKv),
      }),
    };
  return { request_txn: txnPb(op.txn) };
}

const txnPb = (t: TxnRequest): Obj => ({
  compare: t.compare.map(comparePb),
  success: t.success.map(opPb),
  failure: t.failure.map(opPb),
});

function authPb(a: AuthOp, password: string): Obj {
  switch (a.op) {
    case "enable":
      return { auth_enable: {} };
    case "disable":
      return { auth_disable: {} };
    case "authenticate":
      return { authenticate: defined({ name: ns(a.name), simple_token: ns(a.prefix) }) };
    case "userAdd":
      return {
        auth_user_add: defined({
          name: ns(a.name),
          password: ns(password),
          options: defined({ no_password: nt(a.noPassword) }),
        }),
      };
    case "userDelete":
      return { auth_user_delete: defined({ name: ns(a.name) }) };
    case "userChangePassword":
      return { auth_user_change_password: defined({ name: ns(a.name), password: ns(password) }) };
    case "userGrantRole":
      return { auth_user_grant_role: defined({ user: ns(a.name), role: ns(a.role) }) };
    case "userRevokeRole":
      return { auth_user_revoke_role: defined({ name: ns(a.name), role: ns(a.role) }) };
    case "roleAdd":
      return { auth_role_add: defined({ name: ns(a.name) }) };
    case "roleDelete":
      return { auth_role_delete: defined({ role: ns(a.name) }) };
    case "roleGrantPermission":
      return {
        auth_role_grant_permission: defined({
          name: ns(a.name),
          perm: defined({ permType: ne(a.perm.permType), key: nb(a.perm.key), range_end: nb(a.perm.rangeEnd) }),
        }),
      };
    case "roleRevokePermission":
      return { auth_role_revoke_permission: defined({ role: ns(a.name), key: nb(a.key), range_end: nb(a.rangeEnd) }) };
  }
}

function requestPb(req: InternalRequest, password: string): Obj {
  if ("put" in req) return { put: putPb(req.put) };
  if ("deleteRange" in req) return { delete_range: opPb(req).request_delete_range };
  if ("txn" in req) return { txn: txnPb(req.txn) };
  if ("compact" in req) return { compaction: defined({ revision: nz(req.compact.revision) }) };
  if ("leaseGrant" in req) return { lease_grant: defined({ TTL: nz(req.leaseGrant.ttl), ID: nz(req.leaseGrant.id) }) };
  if ("leaseRevoke" in req) return { lease_revoke: defined({ ID: nz(req.leaseRevoke.id) }) };
  if ("leaseCheckpoint" in req)
    return {
      lease_checkpoint: {
        checkpoints: req.leaseCheckpoint.checkpoints.map((c) =>
          defined({ ID: nz(c.id), remaining_TTL: nz(c.remainingTtl) }),
        ),
      },
    };
  if ("alarm" in req)
    return {
      alarm: defined({ action: ne(req.alarm.action), memberID: nz(req.alarm.memberId), alarm: ne(req.alarm.type) }),
    };
  if ("auth" in req) return authPb(req.auth, password);
  throw new Error(`not a v3 request: ${Object.keys(req).join()}`);
}

function encodedInternal(req: InternalRequest, id: bigint, sender: AuthInfo | undefined, password: string): number {
  const body = requestPb(req, password);
  const header = defined({
    ID: nz(id),
    username: ns(sender?.username),
    auth_revision: nz(sender?.revision),
  });
  const msg = INTERNAL.fromObject({ header, ...body });
  return INTERNAL.encode(msg).finish().length;
}

/** etcd's v2 Request for a write: every non-nullable field present. */
function encodedV2(r: V2Request, path: string, id: bigint): number {
  const msg = V2.fromObject({
    ID: String(id),
    Method: r.method,
    Path: path,
    Val: r.value ?? "",
    Dir: r.dir === true,
    PrevValue: r.prevValue ?? "",
    PrevIndex: r.prevIndex ?? 0,
    ...(r.prevExist !== undefined ? { PrevExist: r.prevExist } : {}),
    Expiration: String(r.expireNs ?? 0n),
    Wait: false,
    Since: 0,
    Recursive: r.recursive === true,
    Sorted: false,
    Quorum: false,
    Time: String(r.timeNs ?? 0n),
    Stream: false,
    ...(r.refresh !== undefined ? { Refresh: r.refresh } : {}),
  });
  return V2.encode(msg).finish().length;
}

// ---- arbitraries ----

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
const key = fc.uint8Array({ minLength: 1, maxLength: 300 });
/** Small, varint-boundary, large and negative int64 values. */
const int64 = fc.oneof(
  fc.constantFrom(0n, 1n, 127n, 128n, 16_383n, 16_384n, -1n, (1n << 63n) - 1n, -(1n << 63n)),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
);
const num = fc.oneof(fc.constantFrom(0, 1, 127, 128, -1, 2 ** 40), fc.integer({ min: -1_000_000, max: 1_000_000_000 }));

const put: fc.Arbitrary<PutRequest> = fc.record(
  {
    key,
    value: fc.oneof(bytes(200), bytes(20_000)),
    lease: int64,
    prevKv: fc.boolean(),
    ignoreValue: fc.boolean(),
    ignoreLease: fc.boolean(),
  },
  { requiredKeys: ["key", "value"] },
);

const range: fc.Arbitrary<RangeRequest & { serializable?: boolean }> = fc.record(
  {
    key,
    rangeEnd: bytes(300),
    limit: num,
    revision: num,
    sortOrder: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
    sortTarget: fc.constantFrom(0, 1, 2, 3, 4) as fc.Arbitrary<0 | 1 | 2 | 3 | 4>,
    serializable: fc.boolean(),
    keysOnly: fc.boolean(),
    countOnly: fc.boolean(),
    minModRevision: num,
    maxModRevision: num,
    minCreateRevision: num,
    maxCreateRevision: num,
  },
  { requiredKeys: ["key"] },
);

const deleteRange: fc.Arbitrary<DeleteRangeRequest> = fc.record(
  { key, rangeEnd: bytes(300), prevKv: fc.boolean() },
  { requiredKeys: ["key"] },
);

const compareBase = fc.record(
  {
    key,
    rangeEnd: bytes(300),
    target: fc.constantFrom(0, 1, 2, 3, 4) as fc.Arbitrary<0 | 1 | 2 | 3 | 4>,
    result: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>,
  },
  { requiredKeys: ["key", "target", "result"] },
);
const compare: fc.Arbitrary<Compare> = fc
  .tuple(
    compareBase,
    fc.oneof(
      fc.constant({}),
      num.map((version) => ({ version })),
      num.map((createRevision) => ({ createRevision })),
      num.map((modRevision) => ({ modRevision })),
      bytes(300).map((value) => ({ value })),
      int64.map((lease) => ({ lease })),
    ),
  )
  .map(([base, union]) => ({ ...base, ...union }));

const { txn } = fc.letrec<{ txn: TxnRequest; op: RequestOp }>((tie) => ({
  op: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    put.map((p) => ({ put: p })),
    range.map((r) => ({ range: r })),
    deleteRange.map((d) => ({ deleteRange: d })),
    tie("txn").map((t) => ({ txn: t as TxnRequest })),
  ),
  txn: fc.record({
    compare: fc.array(compare, { maxLength: 4 }),
    success: fc.array(tie("op") as fc.Arbitrary<RequestOp>, { maxLength: 4 }),
    failure: fc.array(tie("op") as fc.Arbitrary<RequestOp>, { maxLength: 4 }),
  }),
}));

const name = fc.string({ maxLength: 300, unit: "grapheme" });
const authOp: fc.Arbitrary<AuthOp> = fc.oneof(
  fc.constant({ op: "enable" as const }),
  fc.constant({ op: "disable" as const }),
  fc.record({ op: fc.constant("authenticate" as const), name, prefix: fc.string({ maxLength: 16 }) }),
  fc.record({
    op: fc.constant("userAdd" as const),
    name,
    hash: fc.constant(undefined),
    noPassword: fc.boolean(),
  }),
  fc.record({ op: fc.constant("userDelete" as const), name }),
  fc.record({ op: fc.constant("userChangePassword" as const), name, hash: fc.constant("$2a$10$hash") }),
  fc.record({ op: fc.constantFrom("userGrantRole" as const, "userRevokeRole" as const), name, role: name }),
  fc.record({ op: fc.constantFrom("roleAdd" as const, "roleDelete" as const), name }),
  fc.record({
    op: fc.constant("roleGrantPermission" as const),
    name,
    perm: fc.record({
      permType: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
      key: bytes(300),
      rangeEnd: bytes(300),
    }),
  }),
  fc.record({ op: fc.constant("roleRevokePermission" as const), name, key: bytes(300), rangeEnd: bytes(300) }),
);

const v3Request: fc.Arbitrary<InternalRequest> = fc.oneof(
  put.map((p) => ({ put: p })),
  deleteRange.map((d) => ({ deleteRange: d })),
  txn.map((t) => ({ txn: t })),
  num.map((revision) => ({ compact: { revision } })),
  fc.record({ id: int64, ttl: num }).map((g) => ({ leaseGrant: g })),
  int64.map((id) => ({ leaseRevoke: { id } })),
  fc
    .array(fc.record({ id: int64, remainingTtl: num }), { maxLength: 5 })
    .map((checkpoints) => ({ leaseCheckpoint: { checkpoints } })),
  fc
    .record({ action: fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>, memberId: int64, type: fc.constantFrom(0, 1, 2) })
    .map((alarm) => ({ alarm })),
  authOp.map((auth) => ({ auth })),
);

/** Request ids as etcd's generator makes them (member bits on top) and edge values. */
const requestId = fc.oneof(fc.constantFrom(1n, 127n, (1n << 64n) - 1n), fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }));
const sender = fc.option(fc.record({ username: name, revision: fc.integer({ min: 0, max: 2 ** 40 }) }), {
  nil: undefined,
});

describe("etcd's proposal size", () => {
  it("equals the protobuf length of the InternalRaftRequest for every v3 request kind", () => {
    fc.assert(
      fc.property(v3Request, requestId, sender, fc.string({ maxLength: 200 }), (req, id, auth, password) => {
        const pw = "auth" in req && (req.auth.op === "userAdd" || req.auth.op === "userChangePassword") ? password : "";
        const counted = etcdRequestBytes(req, id, auth, { passwordBytes: Buffer.byteLength(pw) });
        expect(counted).toBe(encodedInternal(req, id, auth, pw));
      }),
      { numRuns: 3_000 },
    );
  });

  it("counts an auth change's sender given beside it as if it were in the request", () => {
    const req: InternalRequest = { auth: { op: "roleAdd", name: "r" } };
    const sender = { username: "root", revision: 7 };
    expect(etcdRequestBytes(req, 5n, undefined, { sender })).toBe(encodedInternal(req, 5n, sender, ""));
    expect(etcdRequestBytes(req, 5n, undefined, { sender })).toBe(etcdRequestBytes(req, 5n, undefined) + 8);
  });

  it("sizes v2 writes and SYNC as etcd's v2 Request", () => {
    const v2: fc.Arbitrary<V2Request> = fc.record(
      {
        method: fc.constantFrom("PUT", "POST", "DELETE") as fc.Arbitrary<"PUT" | "POST" | "DELETE">,
        path: fc.string({ maxLength: 300 }).map((p) => `/${p}`),
        value: fc.string({ maxLength: 3000 }),
        dir: fc.boolean(),
        prevValue: fc.string({ maxLength: 50 }),
        prevIndex: fc.integer({ min: 0, max: 2 ** 40 }),
        prevExist: fc.boolean(),
        recursive: fc.boolean(),
        expireNs: fc.bigInt({ min: 0n, max: 1n << 62n }),
        refresh: fc.boolean(),
      },
      { requiredKeys: ["method", "path"] },
    );
    fc.assert(
      fc.property(v2, requestId, (r, id) => {
        expect(etcdRequestBytes({ v2: r }, id, undefined)).toBe(encodedV2(r, `/1${r.path}`, id));
      }),
      { numRuns: 1_000 },
    );
    const sync: V2Request = { method: "SYNC", path: "/", timeNs: 1_765_000_000_000_000_000n };
    expect(etcdRequestBytes({ v2: sync }, 9n, undefined)).toBe(encodedV2(sync, "", 9n));
  });

  it("sizes a publish as etcd's v2 PUT of the member's attributes", () => {
    const publish = { memberId: 0x8e9e05c52164694dn, name: "n<1>", clientUrls: ["http://127.0.0.1:2379"] };
    const value = '{"name":"n\\u003c1\\u003e","clientURLs":["http://127.0.0.1:2379"]}';
    const path = "/0/members/8e9e05c52164694d/attributes";
    expect(etcdRequestBytes({ publish }, 3n, undefined)).toBe(encodedV2({ method: "PUT", path, value }, path, 3n));
  });
});

describe("a member's size check of auth changes", () => {
  const dirs: string[] = [];
  const servers: EtcdServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("counts a user add's plaintext password, as etcd's proposal carries it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-size-"));
    dirs.push(dataDir);
    const s = await EtcdServer.start({
      name: "n1",
      dataDir,
      memberId: 0x3f87d1e9930d82d9n,
      clusterId: 0xc053a5fbc1c5ad1en,
      heartbeatIntervalMs: 10,
      electionTimeoutMs: 100,
      bcryptCost: 4,
      maxRequestBytes: 200,
    });
    servers.push(s);
    await s.whenLeader();
    // About 60 bytes of framing: a 100-byte password fits, a 190-byte one does not (its 60-byte hash would).
    await s.auth.userAdd(undefined, "short", "p".repeat(100), false);
    await expect(s.auth.userAdd(undefined, "long", "p".repeat(190), false)).rejects.toMatchObject({
      code: "REQUEST_TOO_LARGE",
    });
    expect(s.auth.store.userList()).toEqual(["short"]);
  });
});
