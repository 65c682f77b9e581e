// A minimal protobuf reader for the hot requests (Put): fields go straight from the message bytes into the
// object proto-loader would build, without protobufjs's reader, message instance and toObject pass. As
// protobufjs's generated decoders do, a known field is read as its declared type whatever its wire type, and an
// unknown field is skipped by its wire type; bytes fields are views into the message, not copies.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

/** Nested groups skipped before a message is refused (protobufjs's recursion limit). */
const MAX_GROUP_DEPTH = 100;

export class PbReader {
  pos = 0;

  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  #byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError(`index out of range: ${this.pos} + 1 > ${this.buf.length}`);
    return this.buf[this.pos++] as number;
  }

  /** A varint as a number: exact up to 2^53 (tags, lengths, bools); longer varints are consumed whole. */
  uint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.#byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new Error("invalid varint encoding");
  }

  /** A varint as a signed 64-bit integer in decimal (proto-loader's `longs: String`). */
  int64String(): string {
    const start = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      const b = this.#byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return String(value);
      scale *= 128;
    }
    // Past 49 bits (a lease id, a negative number): exact arithmetic.
    this.pos = start;
    let big = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.#byte();
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return String(BigInt.asIntN(64, big));
      shift += 7n;
    }
    throw new Error("invalid varint encoding");
  }

  bool(): boolean {
    return this.uint() !== 0;
  }

  /** A length-delimited field's bytes, as a view into the message. */
  bytes(): Buffer {
    const n = this.uint();
    const end = this.pos + n;
    if (end > this.buf.length) throw new RangeError(`index out of range: ${this.pos} + ${n} > ${this.buf.length}`);
    const b = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n);
    this.pos = end;
    return b;
  }

  /** Skips an unknown field's value of the given wire type. */
  skip(wireType: number, depth = 0): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.uint();
        return;
      case WIRE_FIXED64:
        this.#advance(8);
        return;
      case WIRE_LEN:
        this.#advance(this.uint());
        return;
      case WIRE_START_GROUP: {
        if (depth >= MAX_GROUP_DEPTH) throw new Error("maximum nesting depth exceeded");
        for (;;) {
          const tag = this.uint();
          if ((tag & 7) === WIRE_END_GROUP) return;
          this.skip(tag & 7, depth + 1);
        }
      }
      case WIRE_FIXED32:
        this.#advance(4);
        return;
      default:
        throw new Error(`invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }

  #advance(n: number): void {
    if (this.pos + n > this.buf.length)
      throw new RangeError(`index out of range: ${this.pos} + ${n} > ${this.buf.length}`);
    this.pos += n;
  }
}
