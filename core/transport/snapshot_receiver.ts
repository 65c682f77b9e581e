// Receiving one snapshot: the MsgSnap frame first, then the body's chunks written to a temp file in snapshotDir
// while hashing them, then the trailer. Only a body that arrived whole (trailer present, length and sha256 equal)
// is fsynced and renamed to its final name; anything else is deleted and reported as SNAPSHOT_CORRUPT, so the
// sender retries. Reading the request with `for await` pulls one chunk at a time: a slow disk slows the sender
// through HTTP/2 flow control instead of buffering the body in memory.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import type { ServerHttp2Stream } from "node:http2";
import { join } from "node:path";
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";
import { FrameParser, decodeMessage } from "./codec.js";
import { TransportError } from "./errors.js";
import { idToHex } from "./protocol.js";
import { SHA256_BYTES, SnapFrame, TRAILER_PAYLOAD_BYTES, sha256Hasher } from "./snapshot_frames.js";
import { MAX_FRAME_BYTES, SNAPSHOT_CHUNK_BYTES } from "./transport_limits.js";

export interface ReceivedSnapshot {
  readonly m: Message;
  readonly path: string;
  readonly bytes: number;
}

interface Trailer {
  readonly totalBytes: number;
  readonly sha256: Buffer;
}

/** The final file name of a snapshot body: its raft index in 16 hex digits, as etcd names `<index>.snap.db`. */
export function snapshotFileName(index: number): string {
  return `${index.toString(16).padStart(16, "0")}.snap.db`;
}

function corrupt(detail: string): TransportError {
  return new TransportError("SNAPSHOT_CORRUPT", detail);
}

function checkMsgSnap(m: Message, from: NodeId, self: NodeId): void {
  if (m.type !== MessageType.Snap || m.snapshot === undefined)
    throw corrupt(`first frame is ${m.type}, not a MsgSnap with a snapshot`);
  if (m.from !== from || m.to !== self) {
    throw corrupt(
      `MsgSnap from ${idToHex(m.from)} to ${idToHex(m.to)} on a request from ${idToHex(from)} to ${idToHex(self)}`,
    );
  }
}

/** receiveSnapshot reads the request body to the end; resolves with the whole, checked body on disk, or throws. */
export async function receiveSnapshot(
  stream: ServerHttp2Stream,
  from: NodeId,
  self: NodeId,
  snapshotDir: string,
): Promise<ReceivedSnapshot> {
  const tmp = join(snapshotDir, `.recv-${idToHex(from)}-${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "w");
  let closed = false;
  try {
    const hash = sha256Hasher();
    let m: Message | undefined;
    let trailer: Trailer | undefined;
    let total = 0;
    const frames: Buffer[] = [];
    const parser = new FrameParser(Math.max(MAX_FRAME_BYTES, SNAPSHOT_CHUNK_BYTES + 1), (f) => frames.push(f));
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      parser.push(chunk);
      for (const f of frames.splice(0)) {
        const kind = f[0];
        const payload = f.subarray(1);
        if (trailer !== undefined) throw corrupt(`a frame of kind ${String(kind)} after the trailer`);
        if (m === undefined) {
          if (kind !== SnapFrame.Msg) throw corrupt(`first frame of kind ${String(kind)}, want the MsgSnap`);
          m = decodeMessage(payload);
          checkMsgSnap(m, from, self);
        } else if (kind === SnapFrame.Chunk) {
          if (payload.byteLength === 0 || payload.byteLength > SNAPSHOT_CHUNK_BYTES)
            throw corrupt(`chunk of ${payload.byteLength} bytes`);
          hash.update(payload);
          total += payload.byteLength;
          await fh.write(payload);
        } else if (kind === SnapFrame.Trailer && payload.byteLength === TRAILER_PAYLOAD_BYTES) {
          trailer = { totalBytes: Number(payload.readBigUInt64LE(0)), sha256: payload.subarray(8, 8 + SHA256_BYTES) };
        } else {
          throw corrupt(`unexpected frame of kind ${String(kind)} and ${payload.byteLength} bytes`);
        }
      }
    }
    if (m === undefined) throw corrupt("the request ended before the MsgSnap");
    if (trailer === undefined)
      throw corrupt(
        `truncated: the body ended after ${total} bytes (+${parser.pendingBytes} partial) without its trailer`,
      );
    if (trailer.totalBytes !== total) throw corrupt(`the trailer says ${trailer.totalBytes} bytes, ${total} arrived`);
    const digest = hash.digest();
    if (!timingSafeEqual(digest, trailer.sha256)) {
      throw corrupt(
        `sha256 mismatch: got ${digest.toString("hex")}, the sender hashed ${trailer.sha256.toString("hex")}`,
      );
    }
    await fh.sync();
    await fh.close();
    closed = true;
    const path = join(snapshotDir, snapshotFileName(m.snapshot?.metadata.index ?? 0));
    await rename(tmp, path);
    return { m, path, bytes: total };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}
