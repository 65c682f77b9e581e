// Proves core/api/http2/hpack.ts against RFC 7541: the integer examples of C.1, the single fields of C.2, the request
// sequences of C.3 (raw) and C.4 (Huffman) sharing one dynamic table, the response sequence of C.6 with a 256-octet
// table (evictions, table sizes 222/222/215), Huffman codes rebuilt from the lengths equal Appendix B's, the
// decoder's refusals (bad padding, EOS, index past the table, size updates too large or after a field), and, as
// properties, that encodeLiterals → decode and huffmanEncode → huffmanDecode give back any latin1 input while the
// decoder's dynamic table stays empty.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  HpackDecoder,
  encodeInteger,
  encodeLiterals,
  huffmanCode,
  huffmanDecode,
  huffmanEncode,
  type HeaderField,
} from "../../core/api/http2/hpack.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const SEED = Number(process.env.FC_SEED ?? 7541);

describe("RFC 7541 C.1 integers", () => {
  it("10 and 1337 with a 5-bit prefix, 42 at an octet boundary", () => {
    const cases: [number, number, string][] = [
      [10, 5, "0a"],
      [1337, 5, "1f9a0a"],
      [42, 8, "2a"],
    ];
    for (const [value, prefix, want] of cases) {
      const out: number[] = [];
      encodeInteger(out, value, prefix, 0);
      expect(Buffer.from(out).toString("hex"), `${value} with ${prefix}-bit prefix`).toBe(want);
    }
  });
});

describe("RFC 7541 C.2 single fields", () => {
  it("C.2.1 literal with indexing enters the dynamic table (55 octets)", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))).toEqual([
      ["custom-key", "custom-header"],
    ]);
    expect(d.dynamicTableBytes, "table size after C.2.1").toBe(55);
    expect(d.decode(hex("be"))).toEqual([["custom-key", "custom-header"]]);
  });
  it("C.2.2 literal without indexing, C.2.3 never indexed, C.2.4 indexed: table stays empty", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468"))).toEqual([[":path", "/sample/path"]]);
    expect(d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))).toEqual([["password", "secret"]]);
    expect(d.decode(hex("82"))).toEqual([[":method", "GET"]]);
    expect(d.dynamicTableBytes, "table size after C.2.2-4").toBe(0);
  });
  it("encodeLiterals writes C.2.2's bytes exactly", () => {
    expect(encodeLiterals([[":path", "/sample/path"]]).toString("hex")).toBe("040c2f73616d706c652f70617468");
  });
});

const REQUESTS: HeaderField[][] = [
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ],
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ],
  [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ],
];

describe("RFC 7541 C.3/C.4 request sequences", () => {
  const run = (blocks: string[]): void => {
    const d = new HpackDecoder();
    const sizes = [57, 110, 164];
    blocks.forEach((b, i) => {
      expect(d.decode(hex(b)), `request ${i + 1}`).toEqual(REQUESTS[i]);
      expect(d.dynamicTableBytes, `table size after request ${i + 1}`).toBe(sizes[i]);
    });
  };
  it("C.3 without Huffman", () =>
    run([
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]));
  it("C.4 with Huffman", () =>
    run([
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]));
});

describe("RFC 7541 C.6 responses with a 256-octet table", () => {
  it("evicts as the RFC shows", () => {
    const d = new HpackDecoder(256);
    const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
    const loc = "https://www.example.com";
    const blocks = [
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ];
    const want: HeaderField[][] = [
      [
        [":status", "302"],
        ["cache-control", "private"],
        ["date", date1],
        ["location", loc],
      ],
      [
        [":status", "307"],
        ["cache-control", "private"],
        ["date", date1],
        ["location", loc],
      ],
      [
        [":status", "200"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
        ["location", loc],
        ["content-encoding", "gzip"],
        ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
      ],
    ];
    const sizes = [222, 222, 215];
    blocks.forEach((b, i) => {
      expect(d.decode(hex(b)), `response ${i + 1}`).toEqual(want[i]);
      expect(d.dynamicTableBytes, `table size after response ${i + 1}`).toBe(sizes[i]);
    });
  });
});

describe("Huffman code", () => {
  it("codes rebuilt from lengths match Appendix B", () => {
    const rows: [number, number, number][] = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [52, 0x1a, 6],
      [88, 0xfc, 8],
      [92, 0x7fff0, 19],
      [127, 0xffffffc, 28],
      [192, 0x3ffffe0, 26],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, bits] of rows) expect(huffmanCode(sym), `symbol ${sym}`).toEqual({ code, bits });
  });
  it("refuses padding over 7 bits, padding that is not ones, and EOS", () => {
    expect(() => huffmanDecode(hex("ff ff"))).toThrow(/padding/);
    expect(() => huffmanDecode(hex("00"))).toThrow(/padding/); // '0' (00000) then 000: not EOS's ones
    expect(() => huffmanDecode(hex("ff ff ff ff"))).toThrow(/EOS/);
  });
  it("round-trips any latin1 string", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const s = Buffer.from(bytes).toString("latin1");
        expect(huffmanDecode(huffmanEncode(s))).toBe(s);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe("decoder refusals", () => {
  it("index past the dynamic table, index 0, size update above the limit or after a field, truncated string", () => {
    expect(() => new HpackDecoder().decode(hex("be"))).toThrow(/index 62/);
    expect(() => new HpackDecoder().decode(hex("80"))).toThrow(/index 0/);
    expect(() => new HpackDecoder(4096).decode(hex("3fe2 1f"))).toThrow(/4097 > 4096/); // update to 4097 (4096 = 3fe11f is fine)
    expect(() => new HpackDecoder().decode(hex("82 20"))).toThrow(/after a header field/);
    expect(() => new HpackDecoder().decode(hex("040c 2f73"))).toThrow(/runs past/);
  });
  it("a size update to 0 empties the table", () => {
    const d = new HpackDecoder();
    d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    expect(d.decode(hex("20 82"))).toEqual([[":method", "GET"]]);
    expect(d.dynamicTableBytes, "after update to 0").toBe(0);
  });
});

describe("encodeLiterals", () => {
  it("round-trips any header list through a decoder that keeps an empty table", () => {
    const name = fc.oneof(
      fc.constantFrom(":authority", ":path", "content-type", "te", "grpc-timeout", "user-agent"),
      fc.string({ minLength: 1, maxLength: 20 }),
    );
    const value = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1"));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 12 }), (fields) => {
        const d = new HpackDecoder();
        expect(d.decode(encodeLiterals(fields))).toEqual(fields);
        expect(d.dynamicTableBytes).toBe(0);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
