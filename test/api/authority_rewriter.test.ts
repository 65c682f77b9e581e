// Proves core/api/http2/frames.ts without sockets: fixAuthority strips http(s)/unix(s) schemes and paths (and falls
// back to "localhost" for a socket path) and leaves host:port alone; a Go-like client byte stream (Huffman values,
// dynamic-table indexing across requests, PADDED + PRIORITY HEADERS split into CONTINUATIONs, DATA, PING, the ACK of
// the sniffer's SETTINGS) comes out with every :authority fixed as seen by a fresh decoder (nghttp2's side), all
// other frames byte-identical, the first ACK gone, the same output however the input is chunked; a fine
// :authority is reported "fine" and the raw output is the input minus that ACK; while sniffing a PING is answered
// by the rewriter and not passed on; large header blocks are re-framed
// within 16 KiB frames; protocol errors (bad preface, stray CONTINUATION, a frame inside a header block) throw.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CLIENT_PREFACE,
  ClientFrameRewriter,
  EMPTY_SETTINGS,
  Flag,
  FrameType,
  MIN_MAX_FRAME_BYTES,
  fixAuthority,
  frame,
  headerFrames,
} from "../../core/api/http2/frames.js";
import { HpackDecoder, encodeInteger, huffmanEncode, type HeaderField } from "../../core/api/http2/hpack.js";

const SEED = Number(process.env.FC_SEED ?? 9113);

describe("fixAuthority", () => {
  it("strips schemes and paths, keeps valid authorities", () => {
    const cases: [string, string | undefined][] = [
      ["http://127.0.0.1:2379", "127.0.0.1:2379"],
      ["https://[::1]:2379", "[::1]:2379"],
      ["HTTP://etcd-0:2379/", "etcd-0:2379"],
      ["unix://localhost:1234", "localhost:1234"],
      ["unixs://localhost:1234", "localhost:1234"],
      ["unix:///run/etcd.sock", "localhost"],
      ["127.0.0.1:2379", undefined],
      ["localhost", undefined],
      ["", undefined],
    ];
    for (const [input, want] of cases) expect(fixAuthority(input), input).toBe(want);
  });
});

/** A literal with incremental indexing, Huffman value (what Go's encoder writes for new fields). */
function indexedLiteral(nameIndex: number, value: string): number[] {
  const out: number[] = [];
  encodeInteger(out, nameIndex, 6, 0x40);
  const v = huffmanEncode(value);
  encodeInteger(out, v.length, 7, 0x80);
  return [...out, ...v];
}

/** A literal with incremental indexing and a new (raw) name. */
function newNameLiteral(name: string, value: string): number[] {
  return [0x40, name.length, ...Buffer.from(name, "latin1"), ...indexedLiteral(0, value).slice(1)];
}

/** The frames of one Go-like connection start: two requests on streams 1 and 3 sharing the dynamic table. */
function clientStream(authority: string): { bytes: Buffer; data: Buffer; ping: Buffer } {
  const block1 = Buffer.from([
    0x83,
    0x86,
    ...indexedLiteral(4, "/etcdserverpb.Maintenance/Status"),
    ...indexedLiteral(1, authority),
    ...indexedLiteral(31, "application/grpc"),
    ...newNameLiteral("te", "trailers"),
  ]);
  // Second request: :method POST, :scheme http, :path and :authority from the dynamic table (62 = newest = te).
  const block2 = Buffer.from([0x83, 0x86, 0x80 | 65, 0x80 | 64, 0x80 | 63, 0x80 | 62]);
  const padded = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 15]), block1.subarray(0, 10)]);
  const data = frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("\0\0\0\0\0"));
  const ping = frame(FrameType.PING, 0, 0, Buffer.alloc(8, 7));
  const bytes = Buffer.concat([
    CLIENT_PREFACE,
    EMPTY_SETTINGS,
    frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0)),
    frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, Buffer.concat([padded, Buffer.alloc(3)])),
    frame(FrameType.CONTINUATION, 0, 1, block1.subarray(10, 20)),
    frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block1.subarray(20)),
    data,
    ping,
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, block2),
    frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0)), // the ACK of nghttp2's SETTINGS: must pass
  ]);
  return { bytes, data, ping };
}

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function parseFrames(b: Buffer): Frame[] {
  expect(b.subarray(0, CLIENT_PREFACE.length).equals(CLIENT_PREFACE), "output starts with the preface").toBe(true);
  const out: Frame[] = [];
  for (let at = CLIENT_PREFACE.length; at < b.length; ) {
    const len = b.readUIntBE(at, 3);
    out.push({
      type: b[at + 3] ?? -1,
      flags: b[at + 4] ?? -1,
      streamId: b.readUInt32BE(at + 5),
      payload: b.subarray(at + 9, at + 9 + len),
    });
    at += 9 + len;
  }
  return out;
}

/** Decodes the header blocks of `frames` as nghttp2 would (one fresh decoder for the connection). */
function headerLists(frames: Frame[]): { streamId: number; fields: HeaderField[] }[] {
  const d = new HpackDecoder();
  const out: { streamId: number; fields: HeaderField[] }[] = [];
  let parts: Buffer[] = [];
  for (const f of frames) {
    if (f.type !== FrameType.HEADERS && f.type !== FrameType.CONTINUATION) continue;
    parts.push(f.type === FrameType.HEADERS && (f.flags & Flag.PRIORITY) !== 0 ? f.payload.subarray(5) : f.payload);
    if ((f.flags & Flag.END_HEADERS) === 0) continue;
    out.push({ streamId: f.streamId, fields: d.decode(Buffer.concat(parts)) });
    parts = [];
  }
  expect(d.dynamicTableBytes, "the rewritten blocks never index").toBe(0);
  return out;
}

function rewriteAll(
  input: Buffer,
  cuts: readonly number[] = [],
  answerPings = false,
): { rw: ClientFrameRewriter; raw: Buffer; rewritten: Buffer } {
  const rw = new ClientFrameRewriter();
  rw.answerPings = answerPings;
  let at = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b).concat(input.length)) {
    rw.push(input.subarray(at, c));
    at = c;
  }
  return { rw, ...rw.take() };
}

describe("ClientFrameRewriter", () => {
  it("fixes :authority in every header block, passes other frames, swallows only the first ACK", () => {
    const { bytes, data, ping } = clientStream("http://127.0.0.1:2379");
    const { rw, rewritten } = rewriteAll(bytes);
    expect(rw.first).toBe("fixed");
    expect(rw.ackSeen).toBe(true);
    const frames = parseFrames(rewritten);
    expect(frames.map((f) => f.type)).toEqual([
      FrameType.SETTINGS,
      FrameType.HEADERS,
      FrameType.DATA,
      FrameType.PING,
      FrameType.HEADERS,
      FrameType.SETTINGS,
    ]);
    expect(frames[5]?.flags, "the second ACK passes").toBe(Flag.ACK);
    expect(frames[1]?.flags, "PRIORITY kept, PADDED dropped, one frame").toBe(Flag.PRIORITY | Flag.END_HEADERS);
    expect(frames[1]?.payload.subarray(0, 5).toString("hex"), "priority fields").toBe("000000000f");
    expect(frames[4]?.flags).toBe(Flag.END_HEADERS | Flag.END_STREAM);
    expect(
      Buffer.concat([frame(FrameType.DATA, frames[2]?.flags ?? 0, 1, frames[2]?.payload ?? Buffer.alloc(0))]).equals(
        data,
      ),
    ).toBe(true);
    expect(frame(FrameType.PING, 0, 0, frames[3]?.payload ?? Buffer.alloc(0)).equals(ping)).toBe(true);
    const lists = headerLists(frames);
    const want: HeaderField[] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/etcdserverpb.Maintenance/Status"],
      [":authority", "127.0.0.1:2379"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    expect(lists).toEqual([
      { streamId: 1, fields: want },
      { streamId: 3, fields: want },
    ]);
  });

  it("gives the same output however the input is chunked", () => {
    const { bytes } = clientStream("https://etcd.example:2379");
    const whole = rewriteAll(bytes).rewritten;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 12 }), (cuts) => {
        const got = rewriteAll(bytes, cuts).rewritten;
        expect(got.equals(whole), `cuts ${cuts.join(",")}`).toBe(true);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("reports a fine :authority and keeps the raw bytes minus the sniffer's ACK", () => {
    const { bytes } = clientStream("127.0.0.1:2379");
    const { rw, raw } = rewriteAll(bytes, [5, 30, 77]);
    expect(rw.first).toBe("fine");
    const ackAt = CLIENT_PREFACE.length + EMPTY_SETTINGS.length;
    expect(
      raw.equals(Buffer.concat([bytes.subarray(0, ackAt), bytes.subarray(ackAt + 9)])),
      "raw = input without the first ACK",
    ).toBe(true);
  });

  it("while sniffing, answers a PING itself and keeps it from the server", () => {
    const { bytes, ping } = clientStream("127.0.0.1:2379");
    const { rw, raw } = rewriteAll(bytes, [], true);
    expect(
      rw.takeReplies()?.equals(frame(FrameType.PING, Flag.ACK, 0, ping.subarray(9))),
      "PING ACK with the same payload",
    ).toBe(true);
    expect(raw.includes(ping), "PING not passed on").toBe(false);
    expect(raw.length, "input minus the ACK and the PING").toBe(bytes.length - 9 - ping.length);
  });

  it("takeAll returns an incomplete frame too", () => {
    const { bytes } = clientStream("127.0.0.1:2379");
    const rw = new ClientFrameRewriter();
    rw.answerPings = false;
    rw.push(bytes.subarray(0, bytes.length - 4));
    const all = rw.takeAll();
    expect(all.length, "input minus the 9-byte ACK, minus the 4 bytes not pushed").toBe(bytes.length - 9 - 4);
  });

  it("refuses a bad preface, a stray CONTINUATION and a frame inside a header block", () => {
    expect(() => new ClientFrameRewriter().push(Buffer.from("GET / HTTP/1.1\r\n"))).toThrow(/preface/);
    const cont = Buffer.concat([
      CLIENT_PREFACE,
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.from([0x82])),
    ]);
    expect(() => new ClientFrameRewriter().push(cont)).toThrow(/outside a header block/);
    const inside = Buffer.concat([
      CLIENT_PREFACE,
      frame(FrameType.HEADERS, 0, 1, Buffer.from([0x82])),
      frame(FrameType.DATA, 0, 1, Buffer.alloc(1)),
    ]);
    expect(() => new ClientFrameRewriter().push(inside)).toThrow(/inside a header block/);
  });
});

describe("headerFrames", () => {
  it("splits a block into HEADERS + CONTINUATIONs of at most 16 KiB, END_HEADERS on the last only", () => {
    const block = Buffer.alloc(2 * MIN_MAX_FRAME_BYTES + 100, 0x61);
    const frames = headerFrames(5, true, Buffer.from([0, 0, 0, 1, 200]), block);
    expect(frames.length, "frames").toBe(3);
    const payloads = frames.map((f) => f.readUIntBE(0, 3));
    expect(Math.max(...payloads), "largest payload").toBe(MIN_MAX_FRAME_BYTES);
    expect(frames.map((f) => f[3])).toEqual([FrameType.HEADERS, FrameType.CONTINUATION, FrameType.CONTINUATION]);
    expect(frames.map((f) => f[4])).toEqual([Flag.END_STREAM | Flag.PRIORITY, 0, Flag.END_HEADERS]);
    expect(
      payloads.reduce((a, b) => a + b, 0),
      "all bytes plus the 5 priority bytes",
    ).toBe(block.length + 5);
  });
});
