// HPACK (RFC 7541), as much as the :authority fix needs: a full decoder (static + dynamic table, integer and
// string coding, Huffman) that follows one client's encoder, and an encoder that only writes literals without
// indexing and without Huffman, so the table of the decoder it feeds (nghttp2's) stays empty and never drifts.
// Header names and values are latin1 strings: one char per octet, so any octets survive a decode/encode round.

export type HeaderField = readonly [name: string, value: string];

/** RFC 7541 §4.1: each dynamic table entry costs its name and value octets plus 32. */
const ENTRY_OVERHEAD_BYTES = 32;
/** Integers above this are refused (a header block never needs more; keeps the arithmetic exact). */
const MAX_INTEGER = 2 ** 31 - 1;

/** RFC 7541 Appendix A. Index 1 is STATIC_TABLE[0]. */
export const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/**
 * Code length in bits of each symbol 0..256 (256 = EOS), RFC 7541 Appendix B. The code is canonical (codes of one
 * length are consecutive and in symbol order, shorter lengths first), so the lengths alone define every code;
 * `huffmanCode` rebuilds them and the build asserts the last code is EOS's all-ones 30 bits.
 */
const HUFFMAN_BITS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
];
const EOS = 256;
const MAX_CODE_BITS = 30;

interface Canonical {
  /** Symbols ordered by (length, symbol). */
  readonly sorted: readonly number[];
  /** Per length: the first code of that length, the number of codes, and the offset of its first symbol in sorted. */
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly offset: Int32Array;
  /** Per symbol: its code (LSB-aligned). */
  readonly codes: Int32Array;
}

function buildCanonical(): Canonical {
  if (HUFFMAN_BITS.length !== 257) throw new Error(`hpack: ${HUFFMAN_BITS.length} Huffman lengths, want 257`);
  const sorted = HUFFMAN_BITS.map((_, sym) => sym).sort(
    (a, b) => (HUFFMAN_BITS[a] ?? 0) - (HUFFMAN_BITS[b] ?? 0) || a - b,
  );
  const first = new Int32Array(MAX_CODE_BITS + 1);
  const count = new Int32Array(MAX_CODE_BITS + 1);
  const offset = new Int32Array(MAX_CODE_BITS + 1);
  const codes = new Int32Array(257);
  let code = 0;
  let len = 0;
  sorted.forEach((sym, i) => {
    const bits = HUFFMAN_BITS[sym] ?? 0;
    if (bits !== len) {
      code <<= bits - len;
      len = bits;
      first[len] = code;
      offset[len] = i;
    }
    codes[sym] = code;
    count[len] = (count[len] ?? 0) + 1;
    code++;
  });
  // The code is complete (Kraft equality) exactly when the last code of the longest length is all ones.
  if (codes[EOS] !== 2 ** MAX_CODE_BITS - 1 || code !== 2 ** MAX_CODE_BITS)
    throw new Error(`hpack: Huffman table is not complete (EOS ${codes[EOS]})`);
  return { sorted, first, count, offset, codes };
}

const HUFFMAN = buildCanonical();

/** The Huffman code of a symbol (for tests against RFC 7541 Appendix B). */
export function huffmanCode(sym: number): { readonly code: number; readonly bits: number } {
  return { code: HUFFMAN.codes[sym] ?? -1, bits: HUFFMAN_BITS[sym] ?? 0 };
}

/** Decodes a Huffman-coded string (RFC 7541 §5.2): padding must be < 8 bits of EOS's leading ones; EOS is an error. */
export function huffmanDecode(input: Uint8Array): string {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of input) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const k = code - (HUFFMAN.first[len] ?? 0);
      if (k >= 0 && k < (HUFFMAN.count[len] ?? 0)) {
        const sym = HUFFMAN.sorted[(HUFFMAN.offset[len] ?? 0) + k] ?? EOS;
        if (sym === EOS) throw new Error("hpack: EOS inside a Huffman string");
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_CODE_BITS) {
        throw new Error(`hpack: no Huffman code of ${len} bits`);
      }
    }
  }
  if (len > 7) throw new Error(`hpack: Huffman padding of ${len} bits (max 7)`);
  if (code !== (1 << len) - 1) throw new Error("hpack: Huffman padding is not EOS's leading ones");
  return Buffer.from(out).toString("latin1");
}

/** Huffman-encodes a latin1 string (tests use it to build client-style blocks). */
export function huffmanEncode(s: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let accBits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    const bits = HUFFMAN_BITS[sym] ?? 0;
    const code = HUFFMAN.codes[sym] ?? 0;
    for (let b = bits - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++accBits === 8) {
        out.push(acc);
        acc = 0;
        accBits = 0;
      }
    }
  }
  if (accBits > 0) out.push(((acc << (8 - accBits)) | ((1 << (8 - accBits)) - 1)) & 0xff);
  return Buffer.from(out);
}

/** Appends an integer with an N-bit prefix (RFC 7541 §5.1); `flags` fills the octet's bits above the prefix. */
export function encodeInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/** Reads header blocks with one peer's compression context. Throws on anything RFC 7541 calls a decoding error. */
export class HpackDecoder {
  /** Newest entry last. Invariant: size = Σ(entry octets + 32) ≤ tableSize ≤ maxTableSize. */
  private readonly entries: HeaderField[] = [];
  private size = 0;
  private tableSize: number;
  private pos = 0;
  private block: Uint8Array = new Uint8Array(0);

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE this side advertised (HTTP/2's default 4096). */
  constructor(private maxTableSize = 4096) {
    this.tableSize = maxTableSize;
  }

  /** This side's SETTINGS_HEADER_TABLE_SIZE changed: the peer's updates may go up to it. */
  setMaxTableSize(bytes: number): void {
    this.maxTableSize = bytes;
    if (this.tableSize > bytes) this.resize(bytes);
  }

  get dynamicTableBytes(): number {
    return this.size;
  }

  decode(block: Uint8Array): HeaderField[] {
    this.block = block;
    this.pos = 0;
    const fields: HeaderField[] = [];
    while (this.pos < block.length) {
      const b = block[this.pos] ?? 0;
      if (b & 0x80) {
        fields.push(this.field(this.integer(7)));
      } else if (b & 0x40) {
        const f = this.literal(6);
        this.add(f);
        fields.push(f);
      } else if (b & 0x20) {
        if (fields.length > 0) throw new Error("hpack: dynamic table size update after a header field");
        const bytes = this.integer(5);
        if (bytes > this.maxTableSize) throw new Error(`hpack: table size update to ${bytes} > ${this.maxTableSize}`);
        this.resize(bytes);
      } else {
        fields.push(this.literal(4)); // without indexing (0000) or never indexed (0001): same for a decoder
      }
    }
    return fields;
  }

  private field(index: number): HeaderField {
    if (index === 0) throw new Error("hpack: index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as HeaderField;
    const f = this.entries[this.entries.length - (index - STATIC_TABLE.length)];
    if (f === undefined) throw new Error(`hpack: index ${index} beyond the ${this.entries.length}-entry dynamic table`);
    return f;
  }

  private literal(prefixBits: number): HeaderField {
    const index = this.integer(prefixBits);
    const name = index === 0 ? this.string() : this.field(index)[0];
    return [name, this.string()];
  }

  private integer(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = (this.block[this.pos++] ?? 0) & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.block.length) throw new Error("hpack: integer runs past the block");
      const b = this.block[this.pos++] ?? 0;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER) throw new Error(`hpack: integer above ${MAX_INTEGER}`);
      if ((b & 0x80) === 0) return value;
    }
  }

  private string(): string {
    if (this.pos >= this.block.length) throw new Error("hpack: string expected at the end of the block");
    const huffman = ((this.block[this.pos] ?? 0) & 0x80) !== 0;
    const length = this.integer(7);
    if (this.pos + length > this.block.length) throw new Error(`hpack: string of ${length} octets runs past the block`);
    const raw = this.block.subarray(this.pos, this.pos + length);
    this.pos += length;
    return huffman ? huffmanDecode(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString("latin1");
  }

  private add(f: HeaderField): void {
    const bytes = f[0].length + f[1].length + ENTRY_OVERHEAD_BYTES;
    this.entries.push(f);
    this.size += bytes;
    this.evict();
    // RFC 7541 §4.4: an entry larger than the table empties it and is not kept.
    if (bytes > this.tableSize) {
      this.entries.length = 0;
      this.size = 0;
    }
  }

  private resize(bytes: number): void {
    this.tableSize = bytes;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.tableSize && this.entries.length > 0) {
      const old = this.entries.shift() as HeaderField;
      this.size -= old[0].length + old[1].length + ENTRY_OVERHEAD_BYTES;
    }
  }
}

/**
 * Encodes header fields as literals without indexing, raw (no Huffman): the receiver's dynamic table is never
 * touched, so no state has to be kept in sync with it. Names found in the static table are sent by index.
 */
export function encodeLiterals(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  const pushString = (s: string): void => {
    encodeInteger(out, s.length, 7, 0);
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
  };
  for (const [name, value] of fields) {
    const index = STATIC_NAME_INDEX.get(name);
    if (index === undefined) {
      out.push(0);
      pushString(name);
    } else {
      encodeInteger(out, index, 4, 0);
    }
    pushString(value);
  }
  return Buffer.from(out);
}
