// mvccpb.KeyValue in its protobuf wire form, hand-rolled: each revision's value is stored as these bytes, so a
// Range response or a watch event can be framed from stored bytes without decode and re-encode.
// Fields (etcd's kv.proto): key=1 bytes, create_revision=2 int64, mod_revision=3 int64, version=4 int64,
// value=5 bytes, lease=6 int64. proto3: zero values and empty bytes are omitted.

export interface KeyValue {
  readonly key: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly value: Uint8Array;
  /** Lease id (64-bit, as etcd); 0n = no lease. */
  readonly lease: bigint;
}

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

function varintSize(n: bigint): number {
  let size = 1;
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) {
    v >>= 7n;
    size += 1;
  }
  return size;
}

function numberVarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size += 1;
  }
  return size;
}

export function encodedSize(kv: KeyValue): number {
  let size = 0;
  if (kv.key.length > 0) size += 1 + numberVarintSize(kv.key.length) + kv.key.length;
  for (const n of [kv.createRevision, kv.modRevision, kv.version]) if (n !== 0) size += 1 + numberVarintSize(n);
  if (kv.value.length > 0) size += 1 + numberVarintSize(kv.value.length) + kv.value.length;
  if (kv.lease !== 0n) size += 1 + varintSize(kv.lease);
  return size;
}

export function encodeKeyValue(kv: KeyValue): Uint8Array {
  for (const [name, n] of [
    ["createRevision", kv.createRevision],
    ["modRevision", kv.modRevision],
    ["version", kv.version],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`encodeKeyValue: ${name}(${n}) is not a safe non-negative integer`);
  }
  const out = new Uint8Array(encodedSize(kv));
  let pos = 0;
  const putNumber = (n: number): void => {
    while (n >= 0x80) {
      out[pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    out[pos++] = n;
  };
  const putBytes = (field: number, b: Uint8Array): void => {
    if (b.length === 0) return;
    out[pos++] = (field << 3) | WIRE_BYTES;
    putNumber(b.length);
    out.set(b, pos);
    pos += b.length;
  };
  const putInt = (field: number, n: number): void => {
    if (n === 0) return;
    out[pos++] = (field << 3) | WIRE_VARINT;
    putNumber(n);
  };
  putBytes(1, kv.key);
  putInt(2, kv.createRevision);
  putInt(3, kv.modRevision);
  putInt(4, kv.version);
  putBytes(5, kv.value);
  if (kv.lease !== 0n) {
    out[pos++] = (6 << 3) | WIRE_VARINT;
    let v = BigInt.asUintN(64, kv.lease);
    while (v >= 0x80n) {
      out[pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    out[pos++] = Number(v);
  }
  if (pos !== out.length) throw new Error(`encodeKeyValue: wrote ${pos} bytes, sized ${out.length}`);
  return out;
}

/** Decodes KeyValue bytes; unknown fields are skipped, a truncated field throws with its offset. */
export function decodeKeyValue(b: Uint8Array): KeyValue {
  let key: Uint8Array = new Uint8Array(0);
  let value: Uint8Array = new Uint8Array(0);
  let createRevision = 0;
  let modRevision = 0;
  let version = 0;
  let lease = 0n;
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = b[pos++];
      if (byte === undefined) throw new Error(`decodeKeyValue: truncated varint at ${pos - 1} of ${b.length}`);
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      shift += 7n;
    }
  };
  while (pos < b.length) {
    const tag = Number(readVarint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_BYTES) {
      const len = Number(readVarint());
      if (pos + len > b.length)
        throw new Error(`decodeKeyValue: field ${field} length ${len} at ${pos} exceeds ${b.length}`);
      const bytes = b.subarray(pos, pos + len);
      pos += len;
      if (field === 1) key = bytes;
      else if (field === 5) value = bytes;
    } else if (wire === WIRE_VARINT) {
      const v = readVarint();
      if (field === 2) createRevision = Number(v);
      else if (field === 3) modRevision = Number(v);
      else if (field === 4) version = Number(v);
      else if (field === 6) lease = BigInt.asIntN(64, v);
    } else {
      throw new Error(`decodeKeyValue: unsupported wire type ${wire} for field ${field} at ${pos}`);
    }
  }
  return { key, createRevision, modRevision, version, value, lease };
}
