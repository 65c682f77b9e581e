// The body of a snapshot request: frames (codec.ts's u32le length prefix) whose first byte says what they hold.
//   MSG      the MsgSnap itself (codec.ts encoding), exactly once, first
//   CHUNK    1..SNAPSHOT_CHUNK_BYTES bytes of the snapshot body, in order
//   TRAILER  u64le total body bytes, then the body's 32-byte sha256; last. A body without it was truncated.

import { createHash } from "node:crypto";
import { FRAME_HEADER_BYTES } from "./codec.js";

export const SnapFrame = { Msg: 1, Chunk: 2, Trailer: 3 } as const;
export type SnapFrame = (typeof SnapFrame)[keyof typeof SnapFrame];

export const SHA256_BYTES = 32;
export const TRAILER_PAYLOAD_BYTES = 8 + SHA256_BYTES;

/** The frame header (length + kind) to write before a payload of `payloadBytes`. */
export function snapFrameHeader(kind: SnapFrame, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1);
  b.writeUInt32LE(payloadBytes + 1, 0);
  b[FRAME_HEADER_BYTES] = kind;
  return b;
}

export function trailerFrame(totalBytes: number, sha256: Buffer): Buffer {
  const payload = Buffer.allocUnsafe(TRAILER_PAYLOAD_BYTES);
  payload.writeBigUInt64LE(BigInt(totalBytes), 0);
  sha256.copy(payload, 8);
  return Buffer.concat([snapFrameHeader(SnapFrame.Trailer, payload.byteLength), payload]);
}

export function sha256Hasher(): ReturnType<typeof createHash> {
  return createHash("sha256");
}
