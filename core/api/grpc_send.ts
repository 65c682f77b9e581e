// Sending a large response without grpc-js copying it.
//
// grpc-js turns every response into a gRPC message by allocating a new buffer of length + 5 and copying the
// serialized bytes behind its 5-byte prefix (BaseServerInterceptingCall.serializeMessage in grpc-js 1.14).
// For a LIST of 50,000 × 2 KiB pods that is a fresh 100 MB allocation and copy on the main thread — about
// 60 ms during which no commit is applied and no other request is answered — although the range task already
// leaves free room in front of the framed kvs (RANGE_FRAME_HEAD_BYTES).
//
// `prefixed(buf)` writes the gRPC prefix into the 5 bytes in front of `buf` (which the caller owns) and marks
// `buf`; the patched serializeMessage hands a marked buffer to the stream as the view that starts at the prefix,
// with no copy. `prefixed(buf, onWritten)` also has the patched sendMessage call onWritten once the stream has
// written the message out (its write callback: Node's HTTP/2 layer no longer holds the bytes), which is when a
// Range's lent output slab can be reused (core/backend/read_view.ts). If the message is never written (the call
// was cancelled, the write failed), onWritten is not called and the slab is reclaimed by the garbage collector.
// Anything else — every response not marked, and every method whose serializer is not the identity — goes
// through grpc-js's own code. If grpc-js no longer has the method (another version), the patch
// is not installed and marked buffers are copied as before: slower, never wrong (`noCopySendInstalled` says
// which; a test pins it for the version in package-lock.json).
import { createRequire } from "node:module";

/** Bytes of gRPC's message prefix: 1 compressed flag + 4 length (big-endian). */
export const GRPC_PREFIX_BYTES = 5;

/** Marked buffers, each with its onWritten hook (or undefined). */
const marked = new WeakMap<Buffer, (() => void) | undefined>();

type SerializingCall = { handler: { serialize(value: unknown): Buffer } };
type SerializeMessage = (this: SerializingCall, value: unknown) => Buffer;
type SendMessage = (this: unknown, message: unknown, callback: () => void) => void;

function install(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const mod = require("@grpc/grpc-js/build/src/server-interceptors.js") as {
      BaseServerInterceptingCall?: { prototype: Record<string, unknown> };
    };
    const proto = mod.BaseServerInterceptingCall?.prototype;
    const original = proto?.["serializeMessage"];
    const originalSend = proto?.["sendMessage"];
    if (proto === undefined || typeof original !== "function" || typeof originalSend !== "function") return false;
    if ((original as { etcdTsNoCopy?: boolean }).etcdTsNoCopy === true) return true;
    const patched: SerializeMessage & { etcdTsNoCopy?: boolean } = function (
      this: SerializingCall,
      value: unknown,
    ): Buffer {
      if (Buffer.isBuffer(value) && marked.has(value)) {
        marked.delete(value);
        return Buffer.from(value.buffer, value.byteOffset - GRPC_PREFIX_BYTES, value.byteLength + GRPC_PREFIX_BYTES);
      }
      return (original as SerializeMessage).call(this, value);
    };
    patched.etcdTsNoCopy = true;
    const send: SendMessage = function (this: unknown, message: unknown, callback: () => void): void {
      const hook = Buffer.isBuffer(message) ? marked.get(message) : undefined;
      if (hook === undefined) return (originalSend as SendMessage).call(this, message, callback);
      (originalSend as SendMessage).call(this, message, () => {
        hook();
        callback();
      });
    };
    proto["serializeMessage"] = patched;
    proto["sendMessage"] = send;
    return true;
  } catch {
    return false;
  }
}

/** Whether grpc-js sends marked buffers without copying them (false: it copies them, as any response). */
export const noCopySendInstalled: boolean = install();

/**
 * Marks `buf` to be sent as it is: the 5 bytes before it in its ArrayBuffer must be free and owned by the
 * caller (they are overwritten with the prefix), and nothing may write into `buf` afterwards. `onWritten` is
 * called once the message has been written to the stream (never if it is not sent). Returns `buf`.
 */
export function prefixed(buf: Buffer, onWritten?: () => void): Buffer {
  if (buf.byteOffset < GRPC_PREFIX_BYTES)
    throw new Error(`prefixed: no room for the gRPC prefix (offset ${buf.byteOffset})`);
  const head = Buffer.from(buf.buffer, buf.byteOffset - GRPC_PREFIX_BYTES, GRPC_PREFIX_BYTES);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(buf.byteLength, 1);
  marked.set(buf, noCopySendInstalled ? onWritten : undefined);
  return buf;
}

/** For a marked buffer consumed without being sent (the JSON gateway decodes it): runs its onWritten now. */
export function readWithoutSending(buf: Buffer): void {
  const hook = marked.get(buf);
  marked.delete(buf);
  hook?.();
}

/**
 * For a sender other than grpc-js (lean_unary.ts): a marked buffer as the whole gRPC message (prefix included,
 * no copy) with its onWritten hook, unmarked; undefined for an unmarked buffer.
 */
export function takeMarked(
  buf: Buffer,
): { readonly message: Buffer; readonly onWritten: (() => void) | undefined } | undefined {
  if (!marked.has(buf)) return undefined;
  const onWritten = marked.get(buf);
  marked.delete(buf);
  const message = Buffer.from(buf.buffer, buf.byteOffset - GRPC_PREFIX_BYTES, buf.byteLength + GRPC_PREFIX_BYTES);
  return { message, onWritten };
}
