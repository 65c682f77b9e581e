// Reads an etcd 3.4 WAL (the `member/wal` of a data dir made by `etcdctl snapshot restore`, or of a member that
// has not yet cut a snapshot) for what a member needs to take the data dir over: its metadata (member and cluster
// id) and the membership changes among its entries. Facts from etcd's wal package: each record is framed by an
// 8-byte little-endian length whose top byte, when its high bit is set, holds the count of padding bytes (the
// frame is padded to 8 bytes); a record is walpb.Record {type=1, crc=2, data=3}, the crc a running CRC-32C of
// every record's data (a crc record restarts it from its value). Types: 1 metadata (etcdserverpb.Metadata
// {NodeID=1, ClusterID=2}), 2 raftpb.Entry {Type=1, Term=2, Index=3, Data=4}, 3 HardState, 4 crc, 5 snapshot.
import { readdirSync } from "node:fs";
import { join } from "node:path";

import { SegmentReader } from "../wal/segment_reader.js";

const RecordType = { Metadata: 1, Entry: 2, State: 3, Crc: 4, Snapshot: 5 } as const;
const ENTRY_CONF_CHANGE = 1;
const SEGMENT_RE = /^[0-9a-f]{16}-[0-9a-f]{16}\.wal$/;

/** raftpb.ConfChangeType numbers. */
export const EtcdConfChangeType = { AddNode: 0, RemoveNode: 1, UpdateNode: 2, AddLearnerNode: 3 } as const;

export interface EtcdConfChange {
  readonly index: number;
  readonly type: number;
  readonly nodeId: bigint;
  /** The member as etcd's JSON (empty for a removal). */
  readonly context: Uint8Array;
}

export interface EtcdWal {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** The index of the first snapshot record past 0: history before it is not in this WAL. */
  readonly snapshotIndex: number;
  readonly confChanges: readonly EtcdConfChange[];
  /** The last entry index written. */
  readonly lastIndex: number;
}

type Field = bigint | Uint8Array;

function readVarint(b: Uint8Array, pos: number): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    const byte = b[pos++];
    if (byte === undefined) throw new Error("etcd wal: truncated varint");
    v |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [BigInt.asUintN(64, v), pos];
  }
  throw new Error("etcd wal: varint too long");
}

/** The last value of each field of a protobuf message (varints and length-delimited; others skipped). */
function fields(b: Uint8Array): Map<number, Field> {
  const out = new Map<number, Field>();
  let pos = 0;
  while (pos < b.length) {
    const [tag, next] = readVarint(b, pos);
    pos = next;
    const field = Number(tag >> 3n);
    switch (Number(tag & 7n)) {
      case 0: {
        const [v, after] = readVarint(b, pos);
        out.set(field, v);
        pos = after;
        break;
      }
      case 2: {
        const [len, after] = readVarint(b, pos);
        const end = after + Number(len);
        if (end > b.length) throw new Error("etcd wal: field past its message");
        out.set(field, b.subarray(after, end));
        pos = end;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`etcd wal: unsupported wire type in field ${field}`);
    }
  }
  return out;
}

const num = (f: Map<number, Field>, n: number): bigint => {
  const v = f.get(n);
  return typeof v === "bigint" ? v : 0n;
};
const bytes = (f: Map<number, Field>, n: number): Uint8Array => {
  const v = f.get(n);
  return v instanceof Uint8Array ? v : new Uint8Array(0);
};

const CASTAGNOLI = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** Go's crc32.Update(crc, Castagnoli table, data). */
function crc32cUpdate(crc: number, data: Uint8Array): number {
  let c = ~crc >>> 0;
  for (const b of data) c = ((CASTAGNOLI[(c ^ b) & 0xff] as number) ^ (c >>> 8)) >>> 0;
  return ~c >>> 0;
}

/** Whether `walDir` holds etcd WAL segments (by name; etcd-ts names its own segments alike). */
export function walSegments(walDir: string): string[] {
  try {
    return readdirSync(walDir)
      .filter((n) => SEGMENT_RE.test(n))
      .sort();
  } catch {
    return [];
  }
}

export function readEtcdWal(walDir: string): EtcdWal {
  const found: Found = { crc: 0, metadata: undefined, snapshotIndex: 0, lastIndex: 0, confChanges: [] };
  for (const name of walSegments(walDir)) {
    // A bounded window, not the whole preallocated 64 MiB segment; its views last until the next read, so what
    // outlives a record is copied.
    const reader = new SegmentReader(join(walDir, name));
    try {
      readSegment(reader, name, found);
    } finally {
      reader.close();
    }
  }
  const { metadata, snapshotIndex, confChanges, lastIndex } = found;
  if (metadata === undefined) throw new Error(`etcd wal ${walDir}: no metadata record`);
  return { memberId: num(metadata, 1), clusterId: num(metadata, 2), snapshotIndex, confChanges, lastIndex };
}

interface Found {
  /** The running CRC-32C, carried from one segment to the next. */
  crc: number;
  metadata: Map<number, Field> | undefined;
  snapshotIndex: number;
  lastIndex: number;
  confChanges: EtcdConfChange[];
}

function readSegment(reader: SegmentReader, name: string, found: Found): void {
  let pos = 0;
  while (pos + 8 <= reader.size) {
    const lenField = reader.bytes(pos, 8).readBigUInt64LE(0);
    if (lenField === 0n) break; // preallocated zeros: the end of the log
    const size = Number(lenField & 0x00ffffffffffffffn);
    const pad = lenField >> 63n === 1n ? Number((lenField >> 56n) & 7n) : 0;
    if (pos + 8 + size + pad > reader.size)
      throw new Error(`etcd wal ${name}: record at ${pos} runs past the file (torn write)`);
    const rec = fields(reader.bytes(pos + 8, size));
    pos += 8 + size + pad;
    const type = Number(num(rec, 1));
    const data = bytes(rec, 3);
    const want = Number(num(rec, 2));
    if (type === RecordType.Crc) {
      if (found.crc !== 0 && want !== found.crc)
        throw new Error(`etcd wal ${name}: crc record ${want} does not continue ${found.crc}`);
      found.crc = want;
      continue;
    }
    found.crc = crc32cUpdate(found.crc, data);
    if (want !== found.crc) throw new Error(`etcd wal ${name}: record crc mismatch at ${pos}`);
    applyRecord(found, type, data);
  }
}

/** Takes what the import needs from one CRC-checked record; `data` is a view into the reader's window. */
function applyRecord(found: Found, type: number, data: Uint8Array): void {
  if (type === RecordType.Metadata) found.metadata = fields(new Uint8Array(data));
  else if (type === RecordType.Snapshot) {
    const index = Number(num(fields(data), 1));
    if (found.lastIndex === 0 && index > found.snapshotIndex) found.snapshotIndex = index;
  } else if (type === RecordType.Entry) {
    const e = fields(data);
    const index = Number(num(e, 3));
    const confChanges = found.confChanges;
    // A rewritten tail (a new leader's entries) replaces what followed.
    while (confChanges.length > 0 && (confChanges[confChanges.length - 1] as EtcdConfChange).index >= index)
      confChanges.pop();
    found.lastIndex = index;
    if (Number(num(e, 1)) === ENTRY_CONF_CHANGE) {
      const cc = fields(bytes(e, 4));
      confChanges.push({ index, type: Number(num(cc, 2)), nodeId: num(cc, 3), context: new Uint8Array(bytes(cc, 4)) });
    }
  }
}
