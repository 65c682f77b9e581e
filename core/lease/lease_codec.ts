// How a lease is stored in the backend's LEASE_BUCKET: the key is the lease id as 8 bytes big-endian (two's
// complement, so every int64 id round-trips and ids sort as etcd's bucket does for positive ids); the value
// is 16 bytes: the granted TTL and the last checkpointed remaining TTL (0 = none), both unsigned 64-bit
// big-endian seconds. etcd 3.4 stored only {ID, TTL}; etcd-ts persists the remaining TTL too (etcd 3.5's
// --experimental-enable-lease-checkpoint-persist), so a checkpoint survives a restart of every member.

export const LEASE_KEY_BYTES = 8;
export const LEASE_VALUE_BYTES = 16;

export interface LeaseRecord {
  readonly ttlSeconds: number;
  readonly remainingTtlSeconds: number;
}

export function encodeLeaseKey(id: bigint): Uint8Array {
  const out = new Uint8Array(LEASE_KEY_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, id));
  return out;
}

export function decodeLeaseKey(key: Uint8Array): bigint {
  if (key.length !== LEASE_KEY_BYTES) throw new Error(`lease key: length ${key.length} != ${LEASE_KEY_BYTES}`);
  return BigInt.asIntN(64, new DataView(key.buffer, key.byteOffset, LEASE_KEY_BYTES).getBigUint64(0));
}

export function encodeLeaseValue(r: LeaseRecord): Uint8Array {
  assertSeconds("ttl", r.ttlSeconds);
  assertSeconds("remaining ttl", r.remainingTtlSeconds);
  const out = new Uint8Array(LEASE_VALUE_BYTES);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(r.ttlSeconds));
  v.setBigUint64(8, BigInt(r.remainingTtlSeconds));
  return out;
}

export function decodeLeaseValue(id: bigint, value: Uint8Array): LeaseRecord {
  if (value.length !== LEASE_VALUE_BYTES) {
    throw new Error(`lease ${id.toString(16)}: stored value has ${value.length} bytes, want ${LEASE_VALUE_BYTES}`);
  }
  const v = new DataView(value.buffer, value.byteOffset, LEASE_VALUE_BYTES);
  const ttl = v.getBigUint64(0);
  const remaining = v.getBigUint64(8);
  if (ttl > BigInt(Number.MAX_SAFE_INTEGER) || remaining > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Error(`lease ${id.toString(16)}: stored ttl ${ttl} / remaining ${remaining} out of range`);
  }
  return { ttlSeconds: Number(ttl), remainingTtlSeconds: Number(remaining) };
}

function assertSeconds(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`lease ${what}: ${n} is not a non-negative integer of seconds`);
}
