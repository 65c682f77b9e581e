// Member and cluster ids derived as etcd derives them, so `etcdctl member list` shows the ids an etcd user
// expects for the same flags: a member's id is the first 8 bytes (big-endian) of SHA-1 over its sorted peer URLs
// joined, the cluster token, and (for a member added at runtime) the Unix time in seconds; the cluster id is the
// first 8 bytes of SHA-1 over the sorted member ids, each as 8 big-endian bytes.
import { createHash } from "node:crypto";

export function computeMemberId(
  peerUrls: readonly string[],
  clusterToken: string,
  addedAtUnixSeconds?: number,
): bigint {
  const parts =
    [...peerUrls].sort().join("") + clusterToken + (addedAtUnixSeconds === undefined ? "" : String(addedAtUnixSeconds));
  const digest = createHash("sha1").update(parts, "utf8").digest();
  return digest.readBigUInt64BE(0);
}

export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, 8 * i));
  return createHash("sha1").update(buf).digest().readBigUInt64BE(0);
}

/** Ids print as etcd prints them: lower-case hex without leading zeros. */
export function idToHex(id: bigint): string {
  return id.toString(16);
}
