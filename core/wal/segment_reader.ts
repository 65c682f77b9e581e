// Reads a WAL segment from disk through one bounded window instead of loading it whole: a segment is
// preallocated to 64 MiB, and a buffer of its size stays in the process (as garbage) until a major GC. Whole
// records and the clean end are recognised here; anything else (a torn or corrupt record) is left to
// readRecord on the whole file, the rare path, so both paths classify a record exactly alike.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { crc32 } from "node:zlib";

import { MAX_RECORD_BYTES, RECORD_HEADER_BYTES, type ReadResult, isAllZero } from "./record.js";

/** Bytes read from the file at a time (a record larger than this is read on its own). */
export const READ_WINDOW_BYTES = 1024 * 1024;

const END: ReadResult = { kind: "end" };

export class SegmentReader {
  readonly size: number;
  private readonly fd: number;
  private readonly window = Buffer.allocUnsafe(READ_WINDOW_BYTES);
  /** The file range [start, end) the window holds. */
  private start = 0;
  private end = 0;

  constructor(readonly file: string) {
    this.fd = openSync(file, "r");
    try {
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  /** Bytes [at, at + n) of the file, which must lie within it; the view is valid until the next call. */
  bytes(at: number, n: number): Buffer {
    if (at >= this.start && at + n <= this.end) return this.window.subarray(at - this.start, at - this.start + n);
    if (n > this.window.length) {
      const out = Buffer.allocUnsafe(n);
      this.readFully(out, n, at);
      return out;
    }
    const len = Math.min(this.window.length, this.size - at);
    // Invalidate first: a failed read must not leave a window that claims bytes it does not hold.
    this.start = this.end = 0;
    this.readFully(this.window, len, at);
    this.start = at;
    this.end = at + len;
    return this.window.subarray(0, n);
  }

  /** Whether every byte from `from` to the end of the file is zero (the preallocated space, read a window at a time). */
  zerosFrom(from: number): boolean {
    for (let at = from; at < this.size; ) {
      const n = Math.min(this.window.length, this.size - at);
      if (!isAllZero(this.bytes(at, n))) return false;
      at += n;
    }
    return true;
  }

  close(): void {
    closeSync(this.fd);
  }

  private readFully(buf: Buffer, n: number, at: number): void {
    let done = 0;
    while (done < n) {
      const got = readSync(this.fd, buf, done, n - done, at + done);
      if (got === 0) throw new Error(`wal ${this.file}: file ended at ${at + done} while reading ${n} bytes at ${at}`);
      done += got;
    }
  }
}

/**
 * The record at `offset` when it is whole and CRC-valid, or the clean end of the log (zeros to the end of the
 * file); undefined when neither holds, and the caller classifies the damage with readRecord on the whole file.
 * The payload is a view valid until the reader's next call.
 */
export function readWholeRecord(reader: SegmentReader, offset: number): ReadResult | undefined {
  if (offset === reader.size) return END;
  if (offset + RECORD_HEADER_BYTES > reader.size) return undefined;
  const head = reader.bytes(offset, RECORD_HEADER_BYTES);
  const length = head.readUInt32LE(0);
  const want = head.readUInt32LE(4);
  if (length === 0) return reader.zerosFrom(offset) ? END : undefined;
  const next = offset + RECORD_HEADER_BYTES + length;
  if (length > MAX_RECORD_BYTES || next > reader.size) return undefined;
  const body = reader.bytes(offset + RECORD_HEADER_BYTES, length);
  if (crc32(body) !== want) return undefined;
  return { kind: "record", type: body[0] as number, payload: body.subarray(1), next };
}
