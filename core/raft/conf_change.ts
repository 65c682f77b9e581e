// A compact binary encoding of ConfChange for ConfChange log entries (our own format, not etcd's protobuf):
//   byte 0: format version (1) · byte 1: type · bytes 2..9: nodeId as unsigned 64-bit big-endian ·
//   then the context length as an unsigned LEB128 varint, then the context bytes. Nothing may follow.

import { assert } from "./errors.js";
import type { ConfChange, ConfChangeType } from "./types.js";
import { ConfChangeType as CCT } from "./types.js";

const FORMAT_VERSION = 1;
const HEADER_BYTES = 10;
const MAX_U64 = (1n << 64n) - 1n;
const TYPES: ReadonlySet<number> = new Set(Object.values(CCT));

export function encodeConfChange(cc: ConfChange): Uint8Array {
  assert(cc.nodeId >= 0n && cc.nodeId <= MAX_U64, `conf change nodeId(${cc.nodeId}) is not an unsigned 64-bit id`);
  assert(TYPES.has(cc.type), `unknown conf change type(${cc.type})`);
  const len = cc.context.length;
  const out = new Uint8Array(HEADER_BYTES + varintSize(len) + len);
  out[0] = FORMAT_VERSION;
  out[1] = cc.type;
  new DataView(out.buffer).setBigUint64(2, cc.nodeId, false);
  let p = HEADER_BYTES;
  let v = len;
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[p++] = v;
  out.set(cc.context, p);
  return out;
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  assert(b.length >= HEADER_BYTES + 1, `conf change too short: ${b.length} bytes`);
  assert(b[0] === FORMAT_VERSION, `conf change format version ${b[0]}, want ${FORMAT_VERSION}`);
  const type = b[1]!;
  assert(TYPES.has(type), `unknown conf change type(${type})`);
  const nodeId = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(2, false);
  let p = HEADER_BYTES;
  let len = 0;
  let scale = 1;
  for (;;) {
    assert(p < b.length && scale <= 2 ** 49, `conf change: truncated or oversized context length at byte ${p}`);
    const byte = b[p++]!;
    len += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) break;
  }
  assert(p + len === b.length, `conf change: context length ${len} does not match ${b.length - p} remaining bytes`);
  return { type: type as ConfChangeType, nodeId, context: b.slice(p, p + len) };
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}
