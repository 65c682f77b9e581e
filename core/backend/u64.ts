// The 8-byte big-endian unsigned integers the buckets store (the consistent index, revisions, log indexes):
// big-endian so byte order is numeric order, as etcd's backend stores them.

export function encodeU64(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`encodeU64: ${n} is not a safe non-negative integer`);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(n / 2 ** 32));
  view.setUint32(4, n >>> 0);
  return out;
}

export function decodeU64(b: Uint8Array): number {
  if (b.length !== 8) throw new Error(`decodeU64: length ${b.length} != 8`);
  const view = new DataView(b.buffer, b.byteOffset, 8);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}
