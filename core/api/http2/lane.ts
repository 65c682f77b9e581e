// The lane: a client connection served partly by etcd-ts's own HTTP/2 code and partly by node:http2 (grpc-js).
// node:http2 costs tens of microseconds per stream in JS objects (a Duplex per stream, header maps, respond and
// trailers), most of a Put. On the lane, the hot unary KV calls are answered here, frame by frame; every other
// stream (watches, leases, maintenance, the rest of KV's cases that the lean handler declines) goes to grpc-js
// through a pipe, as on the :authority fix's pipe (authority_fix.ts), which the lane extends.
//
// Sharing one connection between two HTTP/2 endpoints needs three things kept straight:
// - Compression. Client → server, the pipe decodes every header block with the client's context and re-encodes
//   the ones it passes on as literals (frames.ts), so claimed blocks can be left out. Server → client, node's
//   blocks pass untouched and the lane's own use no dynamic-table entry (static indices and literals without
//   indexing), so they change nothing in the client's decoder; they are never put inside node's HEADERS +
//   CONTINUATION sequence.
// - Stream ids. Claimed ids never reach node; HTTP/2 lets a server see ids skip. A GOAWAY from node names the
//   highest claimed id too, so a client does not retry a call the lane already answered.
// - Flow control. What the client receives is bounded by its windows, whoever sends. The lane tracks the
//   client's connection window and sends node's DATA only within it (queued otherwise); the lane's own DATA also
//   respects the client's stream windows. Client WINDOW_UPDATEs on the connection first pay back what the lane
//   sent, the rest reaches node, so node's view of the window exceeds the real one by at most that debt: the most
//   the lane ever queues of node's output. DATA of claimed streams is credited back to the client in 16 KiB steps.
// The client's PINGs (Go's client sends one per response it reads, to size its windows) are answered by the lane
// with its next write instead of a round through nghttp2 and a write of their own.
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import {
  Flag,
  FrameType,
  FRAME_HEADER_BYTES,
  frame,
  frameHeader,
  windowUpdate,
  type ClientFrameRewriter,
  type StreamClaimer,
} from "./frames.js";
import type { HeaderField } from "./hpack.js";

/** HTTP/2's initial flow-control window, for the connection and for each stream until SETTINGS change it. */
const INITIAL_WINDOW = 65_535;
const DEFAULT_MAX_FRAME = 16_384;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
/**
 * Connection credit for claimed DATA is returned in steps of this size rather than per frame (a write each). Held
 * back, it stays far below the 64 KiB every client starts with, so the client never waits for it.
 */
const CREDIT_BATCH = 16_384;
/** Claimed ids remembered after the stream ends, so late frames for them (a WINDOW_UPDATE, a RST) go nowhere. */
const RECENT_CLOSED = 1024;
const RST_NO_ERROR = Buffer.from([0, 0, 0, 0]);

/** What the lane needs from one claimed stream's server. */
export interface OwnStream {
  /** DATA payload (padding removed). */
  data(chunk: Buffer): void;
  /** The client finished sending (END_STREAM). */
  end(): void;
  /** The client reset the stream or the connection went away. */
  cancel(): void;
}

/** How a claimed stream answers: header blocks come pre-encoded (see encodeLiterals: no dynamic-table entry). */
export interface OwnReply {
  /** Response headers, one message, trailers: the whole answer. `onWritten` once the message is on the socket. */
  send(headers: Buffer, message: Buffer, trailers: Buffer, onWritten?: () => void): void;
  /** A header block that ends the stream (gRPC's trailers-only answer). */
  sendOnly(block: Buffer): void;
  readonly closed: boolean;
}

/** Serves the streams it wants: `open` returns undefined to leave a stream to grpc-js. */
export interface OwnStreamServer {
  open(fields: readonly HeaderField[], reply: OwnReply, socket: Socket): OwnStream | undefined;
}

interface OutStream {
  readonly id: number;
  window: number;
  headers: Buffer | undefined;
  message: Buffer | undefined;
  /** Bytes of `message` sent. */
  at: number;
  trailers: Buffer | undefined;
  onWritten: (() => void) | undefined;
  /** RST_STREAM(NO_ERROR) after the answer: the client had not finished sending. */
  readonly reset: boolean;
}

/** Client side in, node's output out, with the claimed streams answered in between. */
export class LanePipe extends Duplex implements StreamClaimer {
  private readonly claimed = new Map<number, Claimed>();
  private readonly recent: number[] = [];
  private readonly recentSet = new Set<number>();
  private highestClaimed = 0;
  // server → client
  private connWindow = INITIAL_WINDOW;
  private debt = 0;
  private streamWindow = INITIAL_WINDOW;
  private maxFrame = DEFAULT_MAX_FRAME;
  private readonly nodeQueue: Buffer[] = [];
  private nodePartial: Buffer | undefined;
  /** node's last frame sent opened a header block whose CONTINUATIONs are still to come. */
  private nodeBlockOpen = false;
  private readonly out: OutStream[] = [];
  /** Bytes to write with the next flush; a function is the write callback of the bytes before it. */
  private writing: (Buffer | (() => void))[] = [];
  /** Frames outside flow control (WINDOW_UPDATE, RST_STREAM), held while node's header block is open. */
  private controls: Buffer[] = [];
  private credit = 0;

  constructor(
    private readonly socket: Socket,
    rw: ClientFrameRewriter,
    private readonly own: OwnStreamServer,
  ) {
    super();
    rw.claimer = this;
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy()); // a client gone mid-write (EPIPE, ECONNRESET) ends its connection only
    socket.on("data", (chunk: Buffer) => {
      try {
        rw.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      if (this.credit >= CREDIT_BATCH) this.flushCredit();
      this.flush();
      const parts = rw.takeRewritten();
      if (parts.length === 0) return;
      const out = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      if (!this.push(out)) socket.pause();
    });
    socket.once("end", () => this.push(null));
    socket.once("close", () => {
      for (const c of this.claimed.values()) c.stream?.cancel();
      this.claimed.clear();
      this.destroy();
    });
  }

  /** Claimed streams' answers not yet fully written (waiting for the client's windows). */
  get queuedAnswers(): number {
    return this.out.length;
  }

  // --- client → server (StreamClaimer) ---

  claim(streamId: number, fields: readonly HeaderField[], endStream: boolean): boolean {
    const c = new Claimed(this, streamId);
    this.claimed.set(streamId, c); // before open: it may answer at once (a bad grpc-timeout)
    const stream = this.own.open(fields, c, this.socket);
    if (stream === undefined) {
      this.claimed.delete(streamId);
      return false;
    }
    c.stream = stream;
    this.highestClaimed = streamId;
    if (endStream) c.clientEnded();
    return true;
  }

  owns(streamId: number): boolean {
    return this.claimed.has(streamId) || this.recentSet.has(streamId);
  }

  frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    const c = this.claimed.get(streamId);
    if (type === FrameType.WINDOW_UPDATE) {
      if (payload.length !== 4) return;
      const o = this.out.find((s) => s.id === streamId);
      if (o !== undefined) o.window += payload.readUInt32BE(0) & 0x7fffffff;
      return;
    }
    if (type === FrameType.DATA) {
      // Credit the connection back whether or not the stream is still open: the client counted the bytes.
      this.credit += payload.length;
      if (c === undefined || c.receivedEnd) return;
      let body = payload;
      if ((flags & Flag.PADDED) !== 0) {
        const pad = payload[0] ?? 0;
        if (pad + 1 > payload.length) {
          this.socket.destroy();
          return;
        }
        body = payload.subarray(1, payload.length - pad);
      }
      if ((flags & Flag.END_STREAM) === 0 && payload.length > 0) c.creditStream(payload.length);
      if (body.length > 0) c.stream?.data(body);
      if ((flags & Flag.END_STREAM) !== 0) c.clientEnded();
      return;
    }
    if (type === FrameType.RST_STREAM) {
      // An answer still waiting for window (a large Range the client gave up on) is dropped, not kept until close.
      const i = this.out.findIndex((o) => o.id === streamId);
      if (i >= 0) this.out.splice(i, 1);
      c?.reset();
      return;
    }
    if (c === undefined) return;
    if (type === FrameType.HEADERS && (flags & Flag.END_STREAM) !== 0) c.clientEnded();
  }

  ping(payload: Buffer): void {
    this.controls.push(frame(FrameType.PING, Flag.ACK, 0, payload));
  }

  settings(payload: Buffer): void {
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        const delta = value - this.streamWindow;
        this.streamWindow = value;
        for (const o of this.out) o.window += delta;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) this.maxFrame = value;
    }
  }

  connectionWindow(increment: number): number {
    this.connWindow += increment;
    const repaid = Math.min(increment, this.debt);
    this.debt -= repaid;
    return increment - repaid;
  }

  // --- claimed streams ---

  /** Queues a claimed stream's answer. */
  enqueue(
    id: number,
    headers: Buffer,
    message: Buffer | undefined,
    trailers: Buffer | undefined,
    reset: boolean,
    onWritten?: () => void,
  ): void {
    this.out.push({ id, window: this.streamWindow, headers, message, at: 0, trailers, onWritten, reset });
    this.flush();
  }

  /** Sends a frame that is not flow-controlled (a stream's WINDOW_UPDATE) with the next flush. */
  control(f: Buffer): void {
    this.controls.push(f);
  }

  finished(c: Claimed): void {
    if (this.claimed.get(c.id) !== c) return;
    this.claimed.delete(c.id);
    this.recent.push(c.id);
    this.recentSet.add(c.id);
    if (this.recent.length > RECENT_CLOSED) this.recentSet.delete(this.recent.shift() as number);
  }

  private flushCredit(): void {
    if (this.credit === 0) return;
    this.controls.push(windowUpdate(0, this.credit));
    this.credit = 0;
  }

  // --- server → client ---

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    const data = this.nodePartial === undefined ? chunk : Buffer.concat([this.nodePartial, chunk]);
    this.nodePartial = undefined;
    let at = 0;
    while (data.length - at >= FRAME_HEADER_BYTES) {
      const end = at + FRAME_HEADER_BYTES + data.readUIntBE(at, 3);
      if (end > data.length) break;
      this.nodeQueue.push(data.subarray(at, end));
      at = end;
    }
    if (at < data.length) this.nodePartial = Buffer.from(data.subarray(at));
    this.flush();
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.flush();
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }

  /** Writes what the windows allow: node's frames in order, then the claimed streams' answers. */
  private flush(): void {
    this.drainNode();
    if (!this.nodeBlockOpen) {
      if (this.controls.length > 0) {
        for (const c of this.controls) this.writing.push(c);
        this.controls = [];
      }
      this.drainOwn();
    }
    if (this.writing.length === 0) return;
    const parts = this.writing;
    this.writing = [];
    if (this.socket.destroyed) return;
    this.socket.cork();
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as Buffer;
      const next = parts[i + 1];
      if (typeof next === "function") {
        this.socket.write(p, () => next());
        i++;
      } else this.socket.write(p);
    }
    this.socket.uncork();
  }

  private drainNode(): void {
    const q = this.nodeQueue;
    let i = 0;
    for (; i < q.length; i++) {
      let f = q[i] as Buffer;
      const type = f[3];
      const length = f.length - FRAME_HEADER_BYTES;
      if (type === FrameType.DATA && length > 0) {
        if (this.connWindow <= 0) break;
        if (length > this.connWindow) {
          if (((f[4] ?? 0) & Flag.PADDED) !== 0) break; // node does not pad; a padded frame waits whole
          // Split: the part that fits goes now (without END_STREAM), the rest stays at the head of the queue.
          const n = this.connWindow;
          const head = frame(
            FrameType.DATA,
            0,
            f.readUInt32BE(5),
            f.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + n),
          );
          const rest = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length - n);
          f.copy(rest, 0, 0, FRAME_HEADER_BYTES);
          rest.writeUIntBE(length - n, 0, 3);
          f.copy(rest, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + n);
          q[i] = rest;
          this.connWindow = 0;
          this.writing.push(head);
          break;
        }
        this.connWindow -= length;
      } else if (type === FrameType.GOAWAY && length >= 8) {
        const last = f.readUInt32BE(FRAME_HEADER_BYTES) & 0x7fffffff;
        if (this.highestClaimed > last) {
          f = Buffer.from(f);
          f.writeUInt32BE(this.highestClaimed, FRAME_HEADER_BYTES);
        }
      }
      if (type === FrameType.HEADERS || type === FrameType.CONTINUATION || type === FrameType.PUSH_PROMISE)
        this.nodeBlockOpen = ((f[4] ?? 0) & Flag.END_HEADERS) === 0;
      this.writing.push(f);
    }
    if (i > 0) q.splice(0, i);
  }

  private drainOwn(): void {
    let done = 0;
    for (const o of this.out) {
      if (o.headers !== undefined) {
        const endStream = o.message === undefined && o.trailers === undefined;
        this.pushBlock(o.id, o.headers, endStream);
        o.headers = undefined;
        if (endStream) {
          if (o.reset) this.writing.push(frame(FrameType.RST_STREAM, 0, o.id, RST_NO_ERROR));
          done++;
          continue;
        }
      }
      const m = o.message;
      if (m !== undefined) {
        while (o.at < m.length) {
          const n = Math.min(m.length - o.at, this.maxFrame, this.connWindow, o.window);
          if (n <= 0) break;
          this.writing.push(frameHeader(FrameType.DATA, 0, o.id, n), m.subarray(o.at, o.at + n));
          o.at += n;
          o.window -= n;
          this.connWindow -= n;
          this.debt += n;
        }
        if (o.at < m.length) continue; // waits for window; later streams may still send their headers
        o.message = undefined;
        if (o.onWritten !== undefined && m.length > 0) this.writing.push(o.onWritten);
      }
      if (o.trailers !== undefined) this.pushBlock(o.id, o.trailers, true);
      o.trailers = undefined;
      if (o.reset) this.writing.push(frame(FrameType.RST_STREAM, 0, o.id, RST_NO_ERROR));
      done++;
    }
    if (done === 0) return;
    // Remove finished entries, keeping the order of the rest.
    let w = 0;
    for (const o of this.out)
      if (o.headers !== undefined || o.message !== undefined || o.trailers !== undefined) this.out[w++] = o;
    this.out.length = w;
  }

  private pushBlock(id: number, block: Buffer, endStream: boolean): void {
    // Header blocks of the lane are small (a few dozen bytes): one HEADERS frame within the minimum frame size.
    this.writing.push(frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), id, block));
  }
}

/** One claimed stream's state on the lane. */
class Claimed implements OwnReply {
  stream: OwnStream | undefined;
  receivedEnd = false;
  /** Answered, reset or gone: an answered stream is done at once (afterAnswer). */
  private ended = false;

  constructor(
    private readonly lane: LanePipe,
    readonly id: number,
  ) {}

  get closed(): boolean {
    return this.ended;
  }

  send(headers: Buffer, message: Buffer, trailers: Buffer, onWritten?: () => void): void {
    if (this.ended) return;
    this.lane.enqueue(this.id, headers, message, trailers, !this.receivedEnd, onWritten);
    this.afterAnswer();
  }

  sendOnly(block: Buffer): void {
    if (this.ended) return;
    this.lane.enqueue(this.id, block, undefined, undefined, !this.receivedEnd);
    this.afterAnswer();
  }

  clientEnded(): void {
    if (this.receivedEnd) return;
    this.receivedEnd = true;
    this.stream?.end();
  }

  creditStream(bytes: number): void {
    this.lane.control(windowUpdate(this.id, bytes));
  }

  reset(): void {
    if (this.ended) return;
    this.stream?.cancel();
    this.close();
  }

  /**
   * The stream is done once answered: if the client had not finished sending (an error, a deadline), the answer is
   * followed by RST_STREAM(NO_ERROR), as gRPC servers do, and whatever it still sends is dropped.
   */
  private afterAnswer(): void {
    if (!this.receivedEnd) this.stream?.cancel();
    this.close();
  }

  private close(): void {
    this.ended = true;
    this.lane.finished(this);
  }
}
