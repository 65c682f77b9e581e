// Request checks etcd makes before applying (v3rpc's checkRequest* and the txn interval check): empty keys,
// value/lease given with ignore_value/ignore_lease, too many ops in a txn, a key written twice in one txn
// (or written and inside a deleted range), and requests over the size limit. They throw EtcdError with
// etcd's codes, before any write, so a refused request changes nothing.
import { EtcdError } from "../errors.js";
import { MAX_REQUEST_BYTES, MAX_TXN_OPS } from "../limits.js";
import { compareBytes } from "./layout.js";
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "./types.js";

export function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw new EtcdError("EMPTY_KEY", "range");
}

/**
 * The configured bounds (--max-request-bytes, --max-txn-ops; etcd's defaults when absent). They are the
 * proposer's to check: at apply time they would make the outcome depend on a member's flags.
 */
export interface RequestLimits {
  readonly maxRequestBytes?: number;
  readonly maxTxnOps?: number;
}

/** No bounds: what the apply path checks (only what does not depend on configuration). */
export const UNLIMITED: RequestLimits = { maxRequestBytes: Infinity, maxTxnOps: Infinity };

export function checkPut(r: PutRequest, limits: RequestLimits = {}): void {
  if (r.key.length === 0) throw new EtcdError("EMPTY_KEY", "put");
  if (r.ignoreValue === true && r.value.length !== 0)
    throw new EtcdError("VALUE_PROVIDED", `value length ${r.value.length}`);
  if (r.ignoreLease === true && (r.lease ?? 0n) !== 0n) throw new EtcdError("LEASE_PROVIDED", `lease ${r.lease}`);
  const size = r.key.length + r.value.length;
  const max = limits.maxRequestBytes ?? MAX_REQUEST_BYTES;
  if (size > max) throw new EtcdError("REQUEST_TOO_LARGE", `put of ${size} bytes > ${max}`);
}

export function checkDelete(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw new EtcdError("EMPTY_KEY", "delete range");
}

export function checkTxn(r: TxnRequest, limits: RequestLimits = {}): void {
  checkTxnShape(
    r,
    { maxTxnOps: limits.maxTxnOps ?? MAX_TXN_OPS, maxRequestBytes: limits.maxRequestBytes ?? MAX_REQUEST_BYTES },
    { bytes: 0 },
  );
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

function checkTxnShape(r: TxnRequest, limits: Required<RequestLimits>, size: { bytes: number }): void {
  const { maxTxnOps, maxRequestBytes } = limits;
  const n = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (n > maxTxnOps) throw new EtcdError("TOO_MANY_OPS", `${n} ops > ${maxTxnOps}`);
  for (const c of r.compare) if (c.key.length === 0) throw new EtcdError("EMPTY_KEY", "compare");
  for (const op of [...r.success, ...r.failure]) {
    if ("range" in op) checkRange(op.range);
    else if ("put" in op) {
      checkPut(op.put, limits);
      size.bytes += op.put.key.length + op.put.value.length;
      if (size.bytes > maxRequestBytes)
        throw new EtcdError("REQUEST_TOO_LARGE", `txn puts of ${size.bytes} bytes > ${maxRequestBytes}`);
    } else if ("deleteRange" in op) checkDelete(op.deleteRange);
    else checkTxnShape(op.txn, limits, size);
  }
}

/** A deleted interval [key, end); end undefined = ∞ (range end "\0"); a single key is [key, key+"\0"). */
type Interval = { readonly key: Uint8Array; readonly end: Uint8Array | undefined };

function intervalOf(r: DeleteRangeRequest): Interval {
  const end = r.rangeEnd;
  if (end === undefined || end.length === 0) {
    const single = new Uint8Array(r.key.length + 1);
    single.set(r.key);
    return { key: r.key, end: single };
  }
  if (end.length === 1 && end[0] === 0) return { key: r.key, end: undefined };
  return { key: r.key, end };
}

function covers(dels: readonly Interval[], k: Uint8Array): boolean {
  return dels.some((d) => compareBytes(d.key, k) <= 0 && (d.end === undefined || compareBytes(k, d.end) < 0));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/**
 * etcd's rule: within one branch, no key may be put twice, and no put may fall inside a range deleted in
 * the same branch or in a nested txn's branch; the success and failure branches of a nested txn exclude
 * each other, so the same key in both is allowed. Returns the branch's puts (hex keys) and deletes.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) if ("deleteRange" in op) dels.push(intervalOf(op.deleteRange));
  const puts = new Set<string>();
  const dup = (k: string): never => {
    throw new EtcdError("DUPLICATE_KEY", `key ${k}`);
  };
  for (const op of ops) {
    if (!("txn" in op)) continue;
    const then = checkIntervals(op.txn.success);
    const other = checkIntervals(op.txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || covers(dels, Buffer.from(k, "hex"))) dup(k);
      puts.add(k);
    }
    for (const k of other.puts) {
      if (puts.has(k) && !then.puts.has(k)) dup(k);
      if (covers(dels, Buffer.from(k, "hex"))) dup(k);
      puts.add(k);
    }
    dels.push(...then.dels, ...other.dels);
  }
  for (const op of ops) {
    if (!("put" in op)) continue;
    const k = hex(op.put.key);
    if (puts.has(k) || covers(dels, op.put.key)) dup(k);
    puts.add(k);
  }
  return { puts, dels };
}
