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
/** Shared by decoded KeyValues whose key or value is absent; never written to. */
const EMPTY = new Uint8Array(0);

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
  // One field at a time, not a loop over a fresh array: this runs for every KeyValue written.
  if (kv.createRevision !== 0) size += 1 + numberVarintSize(kv.createRevision);
  if (kv.modRevision !== 0) size += 1 + numberVarintSize(kv.modRevision);
  if (kv.version !== 0) size += 1 + numberVarintSize(kv.version);
  if (kv.value.length > 0) size += 1 + numberVarintSize(kv.value.length) + kv.value.length;
  if (kv.lease !== 0n) size += 1 + varintSize(kv.lease);
  return size;
}

function checkRevision(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`encodeKeyValue: ${name}(${n}) is not a safe non-negative integer`);
}

/** Writes n (a safe non-negative integer) as a varint at pos; returns the position after it. */
function putNumber(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

function putBytes(out: Uint8Array, pos: number, field: number, b: Uint8Array): number {
  if (b.length === 0) return pos;
  out[pos++] = (field << 3) | WIRE_BYTES;
  pos = putNumber(out, pos, b.length);
  out.set(b, pos);
  return pos + b.length;
}

function putInt(out: Uint8Array, pos: number, field: number, n: number): number {
  if (n === 0) return pos;
  out[pos++] = (field << 3) | WIRE_VARINT;
  return putNumber(out, pos, n);
}

export function encodeKeyValue(kv: KeyValue): Uint8Array {
  checkRevision("createRevision", kv.createRevision);
  checkRevision("modRevision", kv.modRevision);
  checkRevision("version", kv.version);
  // Every byte is written (checked below); from node's pool, as a small typed array of its own costs a backing store.
  const out = Buffer.allocUnsafe(encodedSize(kv));
  let pos = putBytes(out, 0, 1, kv.key);
  pos = putInt(out, pos, 2, kv.createRevision);
  pos = putInt(out, pos, 3, kv.modRevision);
  pos = putInt(out, pos, 4, kv.version);
  pos = putBytes(out, pos, 5, kv.value);
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

/** Varints of up to this many bytes (49 bits) are read as numbers exactly; longer ones go through BigInt. */
const NUMBER_VARINT_BYTES = 7;

/** Decodes KeyValue bytes; unknown fields are skipped, a truncated field throws with its offset. */
export function decodeKeyValue(b: Uint8Array): KeyValue {
  let key: Uint8Array = EMPTY;
  let value: Uint8Array = EMPTY;
  let createRevision = 0;
  let modRevision = 0;
  let version = 0;
  let lease = 0n;
  let pos = 0;
  const truncated = (at: number): Error => new Error(`decodeKeyValue: truncated varint at ${at} of ${b.length}`);
  const readBigVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = b[pos++];
      if (byte === undefined) throw truncated(pos - 1);
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      shift += 7n;
    }
  };
  // Numbers without BigInt for the common short varint; the BigInt path (from the same start) for longer ones.
  const readVarint = (): number => {
    const start = pos;
    let n = 0;
    let mul = 1;
    for (let i = 0; i < NUMBER_VARINT_BYTES; i++) {
      const byte = b[pos++];
      if (byte === undefined) throw truncated(pos - 1);
      n += (byte & 0x7f) * mul;
      if (byte < 0x80) return n;
      mul *= 128;
    }
    pos = start;
    return Number(readBigVarint());
  };
  while (pos < b.length) {
    const tag = readVarint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === WIRE_BYTES) {
      const len = readVarint();
      if (pos + len > b.length)
        throw new Error(`decodeKeyValue: field ${field} length ${len} at ${pos} exceeds ${b.length}`);
      const bytes = b.subarray(pos, pos + len);
      pos += len;
      if (field === 1) key = bytes;
      else if (field === 5) value = bytes;
    } else if (wire === WIRE_VARINT) {
      if (field === 6) lease = BigInt.asIntN(64, readBigVarint());
      else {
        const v = readVarint();
        if (field === 2) createRevision = v;
        else if (field === 3) modRevision = v;
        else if (field === 4) version = v;
      }
    } else {
      throw new Error(`decodeKeyValue: unsupported wire type ${wire} for field ${field} at ${pos}`);
    }
  }
  return { key, createRevision, modRevision, version, value, lease };
}

/**
 * KeyValue bytes without their value field (a keys_only read), the other fields' bytes as they are; the bytes
 * themselves when there is no value field.
 */
export function withoutValue(b: Uint8Array): Uint8Array {
  let pos = 0;
  const skipVarint = (): number => {
    const start = pos;
    while (pos < b.length && (b[pos] as number) >= 0x80) pos++;
    if (pos >= b.length) throw new Error(`withoutValue: truncated varint at ${start} of ${b.length}`);
    pos++;
    return start;
  };
  const readLength = (): number => {
    let n = 0;
    let mul = 1;
    const start = skipVarint();
    for (let i = start; i < pos; i++, mul *= 128) n += ((b[i] as number) & 0x7f) * mul;
    return n;
  };
  while (pos < b.length) {
    const fieldAt = pos;
    const first = b[skipVarint()] as number; // a one-byte tag for fields 1 to 15
    const wire = first & 7;
    if (wire === WIRE_VARINT) skipVarint();
    else if (wire === WIRE_BYTES) {
      const length = readLength(); // before the sum: readLength moves pos
      pos += length;
      if (pos > b.length) throw new Error(`withoutValue: field at ${fieldAt} exceeds ${b.length}`);
      if (first === ((5 << 3) | WIRE_BYTES)) {
        const out = new Uint8Array(b.length - (pos - fieldAt));
        out.set(b.subarray(0, fieldAt));
        out.set(b.subarray(pos), fieldAt);
        return out;
      }
    } else throw new Error(`withoutValue: unsupported wire type ${wire} at ${fieldAt}`);
  }
  return b;
}
