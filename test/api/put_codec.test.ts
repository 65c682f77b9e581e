// Proves the hand-written codecs of the put path give exactly what the general ones give: decodePutRequest the
// object proto-loader's deserializer builds (unknown fields skipped, 64-bit leases exact, truncated input
// refused), encodePutResponse the bytes of serialize(putResponse(...)), and the WAL's writeEntryRecord the bytes
// of frame(Entry, encodeEntry(e)).
import { describe, expect, it } from "vitest";
import { decodePutRequest, encodePutResponse, putResponse, serialize } from "../../core/api/kv_codec.js";
import { PbWriter } from "../../core/api/pb_writer.js";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { EntryType } from "../../core/raft/index.js";
import { RecordType, encodeEntry, entryRecordBytes, frame, writeEntryRecord, writeU64 } from "../../core/wal/record.js";

const put = loadEtcdProto().services.KV.service.Put!;
const viaProtobufjs = (b: Buffer): unknown => put.requestDeserialize(b);
const encode = (o: Record<string, unknown>): Buffer => put.requestSerialize(o) as Buffer;

/** A deterministic stream of numbers for the generated cases. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function bytesOf(n: number, next: () => number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

describe("decodePutRequest", () => {
  it("builds proto-loader's object for generated requests", () => {
    const next = rng(7);
    const leases = ["0", "1", "127", "128", "7587861231346623755", "-1", "-9223372036854775808", "9223372036854775807"];
    for (let i = 0; i < 300; i++) {
      const lease = leases[i % leases.length] as string;
      const req = {
        key: bytesOf(Math.floor(next() * 80), next),
        value: bytesOf(Math.floor(next() * 400), next),
        lease,
        prev_kv: next() < 0.5,
        ignore_value: next() < 0.3,
        ignore_lease: next() < 0.3,
      };
      const wire = encode(req);
      expect(decodePutRequest(wire), `case ${i}`).toEqual(viaProtobufjs(wire));
    }
  });

  it("fills defaults for an empty message and skips unknown fields of every wire type", () => {
    expect(decodePutRequest(Buffer.alloc(0))).toEqual(viaProtobufjs(Buffer.alloc(0)));
    const w = new PbWriter(64);
    w.uint(9, 300); // varint
    w.raw(Buffer.from([(10 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8])); // fixed64
    w.bytes(11, Buffer.from("skipped")); // length-delimited
    w.raw(Buffer.from([(12 << 3) | 5, 1, 2, 3, 4])); // fixed32
    w.raw(Buffer.from([(13 << 3) | 3, (1 << 3) | 0, 5, (13 << 3) | 4])); // group with a varint inside
    w.bytes(1, Buffer.from("k"));
    w.uint(3, 42);
    w.bool(4, true);
    const wire = w.buf.subarray(0, w.pos);
    const got = decodePutRequest(wire);
    expect(got).toEqual(viaProtobufjs(wire));
    expect(got.key.toString()).toBe("k");
    expect(got.lease).toBe("42");
  });

  it("keeps the last of a repeated field, as protobufjs does", () => {
    const wire = Buffer.concat([encode({ key: Buffer.from("a"), lease: "5" }), encode({ key: Buffer.from("b") })]);
    expect(decodePutRequest(wire)).toEqual(viaProtobufjs(wire));
    expect(decodePutRequest(wire).key.toString()).toBe("b");
  });

  it("refuses truncated messages and bad wire types, as protobufjs does", () => {
    const whole = encode({ key: Buffer.from("key"), value: Buffer.from("value"), lease: "1234567" });
    for (let n = 1; n < whole.length; n++) {
      const cut = whole.subarray(0, n);
      let theirs: unknown;
      try {
        theirs = viaProtobufjs(cut);
      } catch {
        theirs = "threw";
      }
      if (theirs === "threw") expect(() => decodePutRequest(cut), `cut at ${n}`).toThrow();
      else expect(decodePutRequest(cut), `cut at ${n}`).toEqual(theirs);
    }
    const badWire = Buffer.from([(9 << 3) | 7, 0]);
    expect(() => viaProtobufjs(badWire)).toThrow();
    expect(() => decodePutRequest(badWire)).toThrow(/wire type/);
  });
});

describe("encodePutResponse", () => {
  it("gives serialize(putResponse(...))'s bytes, with and without a previous key-value", () => {
    const headers = [
      { clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn, revision: 1, raftTerm: 2 },
      { clusterId: 1n, memberId: 2n, revision: 0, raftTerm: 0 },
      { clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn, revision: 2 ** 40, raftTerm: 300 },
    ];
    for (const h of headers) {
      for (const prevKv of [undefined, Buffer.alloc(0), Buffer.from("stored key-value bytes")]) {
        const r = prevKv === undefined ? { revision: h.revision } : { revision: h.revision, prevKv };
        expect(encodePutResponse(h, r).equals(serialize(putResponse(h, r)))).toBe(true);
      }
    }
  });
});

describe("writeEntryRecord", () => {
  it("writes 64-bit fields as little-endian u64, as writeBigUInt64LE does", () => {
    for (const n of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 47 + 12345, Number.MAX_SAFE_INTEGER]) {
      const ours = Buffer.alloc(8);
      writeU64(ours, 0, n);
      const want = Buffer.alloc(8);
      want.writeBigUInt64LE(BigInt(n));
      expect(ours.equals(want), String(n)).toBe(true);
    }
    expect(() => writeU64(Buffer.alloc(8), 0, 2 ** 53)).toThrow(/safe/);
  });

  it("writes frame(Entry, encodeEntry(e))'s bytes back to back", () => {
    const entries = [
      { term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) },
      { term: 7, index: 2 ** 33 + 5, type: EntryType.ConfChange, data: Buffer.from("conf") },
      { term: 2 ** 40, index: 2 ** 52, type: EntryType.Normal, data: bytesOf(1000, rng(3)) },
    ];
    const out = Buffer.alloc(entries.reduce((n, e) => n + entryRecordBytes(e), 0));
    let at = 0;
    for (const e of entries) at = writeEntryRecord(out, at, e);
    expect(at).toBe(out.length);
    expect(out.equals(Buffer.concat(entries.map((e) => frame(RecordType.Entry, encodeEntry(e)))))).toBe(true);
  });
});
