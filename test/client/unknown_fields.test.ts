// Proves the client reads responses from a newer server: an in-process gRPC server answers a Range with
// etcd's encoding plus fields this proto does not know (a varint, a length-delimited and a fixed64 field, at
// the top level and inside a KeyValue); the decoded Range and the byte-level summary both ignore them.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { EtcdClient } from "../../core/client/index.js";

/** Field 99 varint 7, field 100 bytes "new", field 101 fixed64: wire types 0, 2 and 1 with tags above etcd's. */
const UNKNOWN = Buffer.from([0x98, 0x06, 0x07, 0xa2, 0x06, 0x03, 0x6e, 0x65, 0x77, 0xa9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);

let server: grpc.Server;
let endpoint: string;

beforeAll(async () => {
  const range = (loadEtcdProto().packageDefinition["etcdserverpb.KV"] as grpc.ServiceDefinition)["Range"]!;
  const kvBytes = (key: string, value: string): Buffer => {
    const k = Buffer.from(key);
    const v = Buffer.from(value);
    // KeyValue: key(1), mod_revision(3) = 5, value(5), then the unknown fields.
    return Buffer.concat([
      Buffer.from([0x0a, k.length]),
      k,
      Buffer.from([0x18, 5]),
      Buffer.from([0x2a, v.length]),
      v,
      UNKNOWN,
    ]);
  };
  const encode = (): Buffer => {
    const header = Buffer.concat([Buffer.from([0x18, 5]), UNKNOWN]); // ResponseHeader.revision(3) = 5
    const kv = kvBytes("/k", "v");
    return Buffer.concat([
      Buffer.from([0x0a, header.length]),
      header,
      Buffer.from([0x12, kv.length]),
      kv,
      Buffer.from([0x20, 1]),
      UNKNOWN,
    ]);
  };
  server = new grpc.Server();
  server.register(
    range.path,
    (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, encode()),
    (b: Buffer) => b,
    (b: Buffer) => b,
    "unary",
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err !== null ? reject(err) : resolve(p),
    ),
  );
  endpoint = `127.0.0.1:${port}`;
});

afterAll(() => server?.forceShutdown());

describe("unknown fields", () => {
  it("are ignored by the decoded Range and by rangeSummary", async () => {
    const c = new EtcdClient({ endpoints: [endpoint] });
    try {
      const r = await c.get("/k");
      expect([r.header.revision, r.count, r.kvs.length]).toEqual([5n, 1n, 1]);
      expect([r.kvs[0]?.key.toString(), r.kvs[0]?.value.toString(), r.kvs[0]?.modRevision]).toEqual(["/k", "v", 5n]);
      const s = await c.rangeSummary("/k");
      expect([s.revision, s.kvCount, s.count, s.lastKey?.toString()]).toEqual([5n, 1, 1n, "/k"]);
    } finally {
      c.close();
    }
  });
});
