// Proves the transport's binary codec: every raft Message (all fields, entries, snapshot metadata with conf state,
// context, reject hints, optional fields absent vs empty) decodes to exactly what was encoded; every strict prefix
// of an encoding is refused with DECODE; and frames survive any split of the byte stream into chunks.
// Property tests run with a fixed seed (FC_SEED overrides; fast-check prints the seed of a failure).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Entry, Message, MessageType as MessageTypeT } from "../../core/raft/types.js";
import { MessageType } from "../../core/raft/types.js";
import { FrameParser, decodeMessage, encodeFrames, encodeMessage, encodedSize } from "../../core/transport/codec.js";
import { isTransportError } from "../../core/transport/errors.js";

const SEED = Number(process.env["FC_SEED"] ?? 20261125);
const nat = fc.maxSafeNat();
const id = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const bytes = fc.uint8Array({ maxLength: 64 });

const entry: fc.Arbitrary<Entry> = fc.record({
  term: nat,
  index: nat,
  type: fc.constantFrom(0 as const, 1 as const),
  data: bytes,
});

const snapshot = fc.record({
  metadata: fc.record({
    index: nat,
    term: nat,
    confState: fc.record({ voters: fc.array(id, { maxLength: 7 }), learners: fc.array(id, { maxLength: 3 }) }),
  }),
  data: bytes,
});

const message: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.constantFrom(...(Object.values(MessageType) as MessageTypeT[])),
    to: id,
    from: id,
    term: nat,
    logTerm: nat,
    index: nat,
    entries: fc.array(entry, { maxLength: 5 }),
    commit: nat,
    snapshot,
    reject: fc.boolean(),
    rejectHint: nat,
    context: bytes,
  },
  { requiredKeys: ["type", "to", "from", "term", "logTerm", "index", "entries", "commit", "reject", "rejectHint"] },
);

/** Normalises byte views to plain arrays so toEqual compares contents, not backing buffers. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe("codec", () => {
  it("round-trips every message exactly (property)", () => {
    fc.assert(
      fc.property(message, (m) => {
        const b = encodeMessage(m);
        expect(b.byteLength, `encoded ${b.byteLength} bytes, sized ${encodedSize(m)}`).toBe(encodedSize(m));
        const back = decodeMessage(b);
        expect(plain(back)).toEqual(plain(m));
        expect("snapshot" in back, `snapshot presence ${"snapshot" in m}`).toBe("snapshot" in m);
        expect("context" in back, `context presence ${"context" in m}`).toBe("context" in m);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it("refuses every strict prefix of an encoding with DECODE (property)", () => {
    fc.assert(
      fc.property(message, (m) => {
        const b = encodeMessage(m);
        for (let cut = 0; cut < b.byteLength; cut++) {
          let code: string | undefined;
          try {
            decodeMessage(b.subarray(0, cut));
          } catch (err) {
            code = isTransportError(err) ? err.code : String(err);
          }
          expect(code, `prefix of ${cut}/${b.byteLength} bytes`).toBe("DECODE");
        }
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it("keeps frames whole and in order across any chunking of the stream (property)", () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
        (msgs, cuts) => {
          const wire = encodeFrames(msgs);
          const got: Message[] = [];
          const parser = new FrameParser(1 << 20, (f) => got.push(decodeMessage(f)));
          let off = 0;
          for (let i = 0; off < wire.byteLength; i++) {
            const len = cuts[i % cuts.length] ?? 1;
            parser.push(wire.subarray(off, off + len));
            off += len;
          }
          expect(got.length, `${got.length} of ${msgs.length} frames`).toBe(msgs.length);
          expect(parser.pendingBytes, `${parser.pendingBytes} bytes left over`).toBe(0);
          expect(got.map(plain)).toEqual(msgs.map(plain));
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("copies a small frame out of a big chunk (no pinning), keeps a big frame as a view", () => {
    const small: Message = {
      type: MessageType.App,
      to: 1n,
      from: 2n,
      term: 1,
      logTerm: 1,
      index: 1,
      entries: [{ term: 1, index: 2, type: 0, data: new Uint8Array([5]) }],
      commit: 0,
      reject: false,
      rejectHint: 0,
    };
    const big: Message = { ...small, entries: [{ term: 1, index: 3, type: 0, data: new Uint8Array(200_000) }] };
    const chunk = encodeFrames([small, big]);
    const frames: Buffer[] = [];
    new FrameParser(1 << 20, (f) => frames.push(f)).push(chunk);
    expect(frames.length).toBe(2);
    expect(frames[0]?.buffer === chunk.buffer, "small frame copied").toBe(false);
    expect(frames[1]?.buffer === chunk.buffer, "big frame is a view").toBe(true);
    expect(decodeMessage(frames[0] ?? Buffer.alloc(0)).entries[0]?.data).toEqual(Buffer.from([5]));
  });

  it("refuses numbers the wire cannot carry, and frames over the limit", () => {
    const base: Message = {
      type: MessageType.App,
      to: 1n,
      from: 2n,
      term: 1,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    };
    for (const bad of [{ term: -1 }, { index: 1.5 }, { commit: 2 ** 53 }, { to: 1n << 64n }, { from: -1n }]) {
      let code: string | undefined;
      try {
        encodeMessage({ ...base, ...bad } as Message);
      } catch (err) {
        code = isTransportError(err) ? err.code : String(err);
      }
      expect(code, `encoding ${JSON.stringify(bad, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`).toBe(
        "ENCODE",
      );
    }
    const parser = new FrameParser(16, () => undefined);
    const big = Buffer.alloc(4);
    big.writeUInt32LE(17, 0);
    expect(() => parser.push(big)).toThrow(/17 bytes exceeds the limit 16/);
  });
});
