// A minimal protobuf writer for the hot responses (Range, Put, DeleteRange, Txn): they are framed around the
// stored mvccpb.KeyValue bytes with no decode and no re-encode (docs/ARCHITECTURE.md, "Design choices"). Two passes:
// sizes first, then one exact-size buffer.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

export function varintSize(n: number | bigint): number {
  let v = BigInt.asUintN(64, BigInt(n));
  if (v < 0x80n) return 1;
  let size = 0;
  while (v > 0n) {
    size++;
    v >>= 7n;
  }
  return size;
}

/** Size of a number varint (non-negative, < 2^53) without BigInt. */
function numVarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export class PbWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  #varintNumber(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  #varintBig(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  /** A varint field; zero values are omitted (proto3). */
  uint(field: number, n: number | bigint): void {
    if (n === 0 || n === 0n) return;
    this.#varintNumber((field << 3) | WIRE_VARINT);
    if (typeof n === "bigint") this.#varintBig(n);
    else this.#varintNumber(n);
  }

  bool(field: number, b: boolean): void {
    if (b) this.uint(field, 1);
  }

  /** A length-delimited field with the given bytes (emitted even when empty if `always`). */
  bytes(field: number, b: Uint8Array, always = false): void {
    if (b.length === 0 && !always) return;
    this.#varintNumber((field << 3) | WIRE_LEN);
    this.#varintNumber(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Bytes already in protobuf form (fields encoded elsewhere). */
  raw(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Starts a nested message of known size. */
  message(field: number, size: number): void {
    this.#varintNumber((field << 3) | WIRE_LEN);
    this.#varintNumber(size);
  }

  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`PbWriter: wrote ${this.pos} bytes into ${this.buf.length}`);
    return this.buf;
  }
}

export function uintFieldSize(field: number, n: number | bigint): number {
  if (n === 0 || n === 0n) return 0;
  return numVarintSize(field << 3) + (typeof n === "bigint" ? varintSize(n) : numVarintSize(n));
}

export function boolFieldSize(field: number, b: boolean): number {
  return b ? numVarintSize(field << 3) + 1 : 0;
}

export function bytesFieldSize(field: number, len: number, always = false): number {
  if (len === 0 && !always) return 0;
  return numVarintSize(field << 3) + numVarintSize(len) + len;
}
