// The client → server half of an HTTP/2 connection, frame by frame (RFC 9113 §4, §6), for the :authority fix:
// every header block (HEADERS + CONTINUATIONs) is decoded with the client's HPACK context, its :authority repaired
// when it carries a scheme, and re-encoded as raw literals; every other frame passes through byte for byte, except
// the client's first SETTINGS ACK, which answers the SETTINGS frame the sniffer sent itself (see authority_fix.ts)
// and must not reach nghttp2, which never sent it, and PINGs sent while sniffing, which the sniffer answers.
import { HpackDecoder, encodeLiterals, type HeaderField } from "./hpack.js";

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER_BYTES = 9;
/** SETTINGS_MAX_FRAME_SIZE's floor: every HTTP/2 peer accepts frames this large, whatever it advertised. */
export const MIN_MAX_FRAME_BYTES = 16_384;
/** A frame above this is refused (2^24-1 is HTTP/2's ceiling; nghttp2 advertises 16 KiB and would refuse it too). */
const MAX_FRAME_BYTES = 1 << 24;
/** A header block above this (HEADERS + CONTINUATIONs) is refused; nghttp2's own limit is far lower (64 KiB). */
const MAX_HEADER_BLOCK_BYTES = 1 << 20;

export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

/** An empty SETTINGS frame: a server preface that changes nothing (every setting keeps its HTTP/2 default). */
const EMPTY = Buffer.alloc(0);
export const EMPTY_SETTINGS = frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0));

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, payload.length, type, flags, streamId);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A frame's 9-byte header alone, for a payload sent as a separate buffer (a view of a larger message). */
export function frameHeader(type: number, flags: number, streamId: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(out, length, type, flags, streamId);
  return out;
}

/** A WINDOW_UPDATE frame (streamId 0: the connection). */
export function windowUpdate(streamId: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  out.writeUInt32BE(increment & 0x7fffffff, FRAME_HEADER_BYTES);
  return out;
}

function writeFrameHeader(out: Buffer, length: number, type: number, flags: number, streamId: number): void {
  out.writeUIntBE(length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId & 0x7fffffff, 5);
}

/** Characters nghttp2 accepts in :authority (RFC 3986 reg-name, IP literals, port, userinfo). */
const AUTHORITY_RE = /^[A-Za-z0-9\-._~!$&'()*+,;=:%@[\]]*$/;
const SCHEME_RE = /^(?:https?|unixs?):\/\//i;

/**
 * The :authority to use instead of `value`, or undefined when `value` is fine. etcd 3.4's clientv3 sends the whole
 * endpoint ("http://127.0.0.1:2379"); Go's server ignores it, nghttp2 refuses it. The scheme and any path go; what
 * is left must be a valid authority, else "localhost" (a unix socket path such as unix:///run/etcd.sock).
 */
export function fixAuthority(value: string): string | undefined {
  if (!SCHEME_RE.test(value)) return undefined;
  const host = value.replace(SCHEME_RE, "").split("/")[0] ?? "";
  return host !== "" && AUTHORITY_RE.test(host) ? host : "localhost";
}

interface PendingBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly priority: Buffer | undefined;
  readonly fragments: Buffer[];
  bytes: number;
}

/**
 * Takes some client streams away from the server behind the rewriter (http2/lane.ts): a claimed stream's frames go
 * to the claimer, never to the server; the claimer also sees the client's SETTINGS and decides how much of each
 * connection-level WINDOW_UPDATE the server is told about (the rest paid back what the claimer itself sent).
 */
export interface StreamClaimer {
  /** A new stream's decoded header block: true when the claimer serves the stream itself. */
  claim(streamId: number, fields: readonly HeaderField[], endStream: boolean): boolean;
  /** Whether frames on `streamId` are the claimer's (claimed, or claimed and closed recently). */
  owns(streamId: number): boolean;
  /** A frame on an owned stream; a header block (trailers) arrives decoded, as type HEADERS with no payload. */
  frame(type: number, flags: number, streamId: number, payload: Buffer): void;
  /** A PING from the client (not an ACK): the claimer answers it, the server never sees it. */
  ping(payload: Buffer): void;
  /** The client's SETTINGS (not an ACK); the frame still reaches the server. */
  settings(payload: Buffer): void;
  /** A connection-level WINDOW_UPDATE from the client: the increment to pass on to the server (0: none). */
  connectionWindow(increment: number): number;
}

/** What the first header block of the connection said about :authority. */
export type FirstBlock = "pending" | "fine" | "fixed";

/**
 * Parses client bytes (starting with the connection preface) into frames. Two outputs are kept while the sniffer
 * has not decided yet: `raw` (the input minus the swallowed SETTINGS ACK) and `rewritten`; once it has chosen
 * (`keepRaw = false`) only the rewritten stream is built.
 */
export class ClientFrameRewriter {
  readonly decoder: HpackDecoder;
  first: FirstBlock = "pending";
  /** Whether the client has acknowledged the sniffer's own SETTINGS (its first SETTINGS ACK, dropped). */
  ackSeen = false;
  keepRaw = true;
  /** While sniffing nobody else answers the client's PINGs (keepalive of an idle client): the rewriter does. */
  answerPings = true;
  private buffered: Buffer = Buffer.alloc(0);
  private prefaceLeft = CLIENT_PREFACE.length;
  private pending: PendingBlock | undefined;
  private raw: Buffer[] = [];
  private rewritten: Buffer[] = [];
  private replies: Buffer[] = [];
  /** Set before the first frame (lane mode): some streams are served by it instead of the server. */
  claimer: StreamClaimer | undefined;
  /** The highest client stream id seen in a header block (a new stream must be above it). */
  private lastStreamId = 0;

  /** `decoderTableBytes`: the SETTINGS_HEADER_TABLE_SIZE the server advertised (grpc-js leaves nghttp2's 4096). */
  constructor(decoderTableBytes = 4096) {
    this.decoder = new HpackDecoder(decoderTableBytes);
  }

  /** Feeds client bytes; throws on a protocol or compression error (the caller drops the connection). */
  push(chunk: Buffer): void {
    let data = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, data.length);
      const at = CLIENT_PREFACE.length - this.prefaceLeft;
      if (!data.subarray(0, n).equals(CLIENT_PREFACE.subarray(at, at + n)))
        throw new Error("http2: bad client preface");
      this.emit(data.subarray(0, n), data.subarray(0, n));
      this.prefaceLeft -= n;
      data = data.subarray(n);
    }
    let at = 0;
    while (data.length - at >= FRAME_HEADER_BYTES) {
      const length = data.readUIntBE(at, 3);
      if (length > MAX_FRAME_BYTES) throw new Error(`http2: frame of ${length} bytes`);
      const end = at + FRAME_HEADER_BYTES + length;
      if (end > data.length) break;
      this.onFrame(data.subarray(at, end));
      at = end;
    }
    this.buffered = at === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(at));
  }

  /** Takes what was produced so far: the raw stream (only while keepRaw) and the rewritten one. */
  /** The rewritten bytes produced so far (lane mode: the raw stream is not kept). */
  takeRewritten(): Buffer[] {
    const out = this.rewritten;
    this.rewritten = [];
    return out;
  }

  take(): { raw: Buffer; rewritten: Buffer } {
    const out = { raw: Buffer.concat(this.raw), rewritten: Buffer.concat(this.rewritten) };
    this.raw = [];
    this.rewritten = [];
    return out;
  }

  /** Frames to send back to the client (PING ACKs while answerPings). */
  takeReplies(): Buffer | undefined {
    if (this.replies.length === 0) return undefined;
    const out = Buffer.concat(this.replies);
    this.replies = [];
    return out;
  }

  /** Everything read so far minus the swallowed ACK, incomplete frame included: what a raw handover puts back. */
  takeAll(): Buffer {
    const out = Buffer.concat([...this.raw, this.buffered]);
    this.raw = [];
    this.rewritten = [];
    this.buffered = Buffer.alloc(0);
    return out;
  }

  /** Bytes held: produced but not taken, plus an incomplete frame. */
  get heldBytes(): number {
    let n = this.buffered.length;
    for (const b of this.raw) n += b.length;
    for (const b of this.rewritten) n += b.length;
    return n;
  }

  private emit(raw: Buffer | undefined, rewritten: Buffer | undefined): void {
    if (raw !== undefined && raw.length > 0 && this.keepRaw) this.raw.push(Buffer.from(raw));
    // A socket's chunks are never reused by node, so once only the rewritten stream is kept a view will do.
    if (rewritten !== undefined && rewritten.length > 0)
      this.rewritten.push(this.keepRaw ? Buffer.from(rewritten) : rewritten);
  }

  private onFrame(f: Buffer): void {
    const type = f[3] ?? 0;
    const flags = f[4] ?? 0;
    const streamId = f.readUInt32BE(5) & 0x7fffffff;
    const payload = f.subarray(FRAME_HEADER_BYTES);
    if (this.pending !== undefined) {
      if (type !== FrameType.CONTINUATION || streamId !== this.pending.streamId) {
        throw new Error(
          `http2: frame type ${type} on stream ${streamId} inside a header block of stream ${this.pending.streamId}`,
        );
      }
      this.addFragment(f, payload, flags);
      return;
    }
    if (type === FrameType.SETTINGS && (flags & Flag.ACK) !== 0 && !this.ackSeen) {
      this.ackSeen = true; // answers the sniffer's SETTINGS: nghttp2 must not see it
      return;
    }
    if (type === FrameType.PING && (flags & Flag.ACK) === 0 && payload.length === 8 && this.answerPings) {
      this.replies.push(frame(FrameType.PING, Flag.ACK, 0, payload));
      return;
    }
    if (type === FrameType.CONTINUATION)
      throw new Error(`http2: CONTINUATION on stream ${streamId} outside a header block`);
    const claimer = this.claimer;
    if (claimer !== undefined && type !== FrameType.HEADERS) {
      if (streamId !== 0 && claimer.owns(streamId)) {
        claimer.frame(type, flags, streamId, payload);
        return;
      }
      if (type === FrameType.PING && (flags & Flag.ACK) === 0 && payload.length === 8) {
        claimer.ping(payload);
        return;
      }
      if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0) claimer.settings(payload);
      else if (type === FrameType.WINDOW_UPDATE && streamId === 0 && payload.length === 4) {
        const pass = claimer.connectionWindow(payload.readUInt32BE(0) & 0x7fffffff);
        if (pass > 0) this.emit(undefined, windowUpdate(0, pass));
        return;
      }
    }
    if (type !== FrameType.HEADERS) {
      this.emit(f, f);
      return;
    }
    const { priority, fragment } = splitHeaders(payload, flags);
    this.pending = { streamId, endStream: (flags & Flag.END_STREAM) !== 0, priority, fragments: [], bytes: 0 };
    this.addFragment(f, fragment, flags);
  }

  private addFragment(f: Buffer, fragment: Buffer, flags: number): void {
    const p = this.pending as PendingBlock;
    p.fragments.push(fragment);
    p.bytes += fragment.length;
    if (p.bytes > MAX_HEADER_BLOCK_BYTES)
      throw new Error(`http2: header block of ${p.bytes} bytes on stream ${p.streamId}`);
    this.emit(f, undefined);
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.pending = undefined;
    const fields = this.decoder.decode(
      p.fragments.length === 1 ? (p.fragments[0] as Buffer) : Buffer.concat(p.fragments, p.bytes),
    );
    const claimer = this.claimer;
    if (claimer !== undefined) {
      // Decoded either way: the client's compression context covers every block, claimed or not.
      if (claimer.owns(p.streamId)) {
        claimer.frame(FrameType.HEADERS, p.endStream ? Flag.END_STREAM : 0, p.streamId, EMPTY);
        return;
      }
      if (p.streamId > this.lastStreamId) {
        this.lastStreamId = p.streamId;
        if (claimer.claim(p.streamId, fields, p.endStream)) return;
      }
    }
    let fixed = false;
    const out = fields.map(([name, value]): HeaderField => {
      const repl = name === ":authority" ? fixAuthority(value) : undefined;
      if (repl === undefined) return [name, value];
      fixed = true;
      return [name, repl];
    });
    if (this.first === "pending") this.first = fixed ? "fixed" : "fine";
    for (const fr of headerFrames(p.streamId, p.endStream, p.priority, encodeLiterals(out))) this.emit(undefined, fr);
  }
}

/** A HEADERS payload's PRIORITY fields (5 bytes, if flagged) and fragment (without pad length and padding). */
function splitHeaders(payload: Buffer, flags: number): { priority: Buffer | undefined; fragment: Buffer } {
  let start = 0;
  let padBytes = 0;
  if ((flags & Flag.PADDED) !== 0) {
    padBytes = payload[0] ?? 0;
    start = 1;
  }
  let priority: Buffer | undefined;
  if ((flags & Flag.PRIORITY) !== 0) {
    priority = Buffer.from(payload.subarray(start, start + 5));
    start += 5;
  }
  if (start + padBytes > payload.length)
    throw new Error(`http2: HEADERS needs ${start + padBytes} bytes, has ${payload.length}`);
  return { priority, fragment: payload.subarray(start, payload.length - padBytes) };
}

/** A header block as HEADERS (+ CONTINUATIONs), no padding, each frame within MIN_MAX_FRAME_BYTES. */
export function headerFrames(
  streamId: number,
  endStream: boolean,
  priority: Buffer | undefined,
  block: Buffer,
): Buffer[] {
  const out: Buffer[] = [];
  const firstRoom = MIN_MAX_FRAME_BYTES - (priority?.length ?? 0);
  let at = Math.min(firstRoom, block.length);
  const last = at === block.length;
  const flags =
    (endStream ? Flag.END_STREAM : 0) | (priority !== undefined ? Flag.PRIORITY : 0) | (last ? Flag.END_HEADERS : 0);
  out.push(
    frame(
      FrameType.HEADERS,
      flags,
      streamId,
      priority === undefined ? block.subarray(0, at) : Buffer.concat([priority, block.subarray(0, at)]),
    ),
  );
  while (at < block.length) {
    const end = Math.min(at + MIN_MAX_FRAME_BYTES, block.length);
    out.push(
      frame(FrameType.CONTINUATION, end === block.length ? Flag.END_HEADERS : 0, streamId, block.subarray(at, end)),
    );
    at = end;
  }
  return out;
}
