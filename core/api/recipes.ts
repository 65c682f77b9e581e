// The lock and election recipes etcd 3.4 runs inside the server for its Lock and Election services, over the
// member's own KV, lease and watch, as its clientv3 concurrency package does on the client side: a contender's
// key is `<name>/<lease id in hex>`, the oldest create revision under `<name>/` holds the lock (or leads), and a
// waiter watches only the newest key created before its own until it is deleted, then looks again.
import type { AuthInfo } from "../auth/auth_store.js";
import { EtcdError } from "../errors.js";
import { MAX_TXN_OPS } from "../limits.js";
import { decodeKeyValue, type KeyValue } from "../mvcc/kv_codec.js";
import {
  CompareResult,
  CompareTarget,
  SortOrder,
  SortTarget,
  type RangeRequest,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "../mvcc/types.js";
import { checkDelete, checkRange, checkTxn } from "../mvcc/validate.js";
import { EventType, type WatchResponse } from "../mvcc/watchable_store.js";
import type { EtcdServer, ResponseHeader, WithHeader } from "../server/etcd_server.js";

/** The TTL of the lease a recipe grants when the request names none (the concurrency package's session TTL). */
export const RECIPE_SESSION_TTL_SECONDS = 60;

/** One recipe call: the member, the caller's identity (checked as for its own KV calls) and its cancellation. */
export interface RecipeContext {
  readonly s: EtcdServer;
  readonly auth: AuthInfo | undefined;
  /** Aborted when the caller goes away: a waiting recipe stops and undoes what it wrote. */
  readonly signal: AbortSignal;
}

/** The context for clean-up after a caller went away: same member and identity, never aborted. */
export function detached(ctx: RecipeContext): RecipeContext {
  return { ...ctx, signal: new AbortController().signal };
}

const SLASH = 0x2f;

/** `<name>/`: every contender's key starts with it. */
export function prefixOf(name: Uint8Array): Uint8Array {
  const out = new Uint8Array(name.length + 1);
  out.set(name);
  out[name.length] = SLASH;
  return out;
}

/** A contender's key: the prefix and its lease id in lowercase hex (Go's %x of the signed id). */
export function contenderKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  const hex = new TextEncoder().encode(lease.toString(16));
  const out = new Uint8Array(prefix.length + hex.length);
  out.set(prefix);
  out.set(hex, prefix.length);
  return out;
}

/** The range end selecting every key with `prefix` (etcd's rule: increment the last byte below 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const b = prefix[i] ?? 0xff;
    if (b < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i] = b + 1;
      return end;
    }
  }
  return Uint8Array.of(0);
}

/** The key under `prefix` with the lowest (ASCEND) or highest (DESCEND) create revision, up to `maxCreate`. */
export function byCreate(prefix: Uint8Array, order: SortOrder, maxCreate?: number): RangeRequest {
  return {
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    sortTarget: SortTarget.CREATE,
    sortOrder: order,
    limit: 1,
    ...(maxCreate === undefined ? {} : { maxCreateRevision: maxCreate }),
  };
}

/** A compare that holds while `key`'s create revision is `rev` (0: the key does not exist). */
export function createdAt(key: Uint8Array, rev: number): TxnRequest["compare"][number] {
  return { key, target: CompareTarget.CREATE, result: CompareResult.EQUAL, createRevision: rev };
}

/** The lease a recipe writes with: the one asked for, or a new one granted as a session would (id 0). */
export async function sessionLease(ctx: RecipeContext, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  const { response } = await ctx.s.leaseGrant(0n, RECIPE_SESSION_TTL_SECONDS);
  return response.id;
}

export async function range(ctx: RecipeContext, r: RangeRequest): Promise<{ header: ResponseHeader; kvs: KeyValue[] }> {
  checkRange(r);
  ctx.s.auth.checkRange(ctx.auth, r);
  const { header, response } = await ctx.s.range(r);
  const kvs = response.kvs.map(decodeKeyValue);
  response.release?.();
  return { header, kvs };
}

export async function txn(ctx: RecipeContext, r: TxnRequest): Promise<WithHeader<TxnResponse>> {
  checkTxn(r, { maxTxnOps: MAX_TXN_OPS });
  ctx.s.auth.checkTxn(ctx.auth, r);
  return ctx.s.txn(r, ctx.auth);
}

export async function deleteKey(ctx: RecipeContext, key: Uint8Array): Promise<ResponseHeader> {
  const r = { key };
  checkDelete(r);
  ctx.s.auth.checkDeleteRange(ctx.auth, r);
  return (await ctx.s.deleteRange(r, ctx.auth)).header;
}

/** The key-values of a txn's range response. */
export function kvsOf(op: ResponseOp | undefined): KeyValue[] {
  if (op === undefined || !("range" in op)) return [];
  const kvs = op.range.kvs.map(decodeKeyValue);
  op.range.release?.();
  return kvs;
}

/**
 * Waits until no key under `prefix` was created at or below `maxCreate`: watches the newest such key until it is
 * deleted, then looks again. Answers the header of the last look.
 */
export async function waitDeletes(ctx: RecipeContext, prefix: Uint8Array, maxCreate: number): Promise<ResponseHeader> {
  for (;;) {
    const { header, kvs } = await range(ctx, byCreate(prefix, SortOrder.DESCEND, maxCreate));
    const newest = kvs[0];
    if (newest === undefined) return header;
    await watchUntil(ctx, { key: newest.key, startRevision: header.revision }, (resp) =>
      resp.events.some((e) => e.type === EventType.DELETE),
    );
  }
}

export interface WatchSpan {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly startRevision: number;
}

/**
 * Watches `span` until `done` says so for a response. Rejects when the caller goes away or the start revision
 * was compacted (the watch then ends as a client's would).
 */
export function watchUntil(ctx: RecipeContext, span: WatchSpan, done: (resp: WatchResponse) => boolean): Promise<void> {
  ctx.s.auth.checkRange(ctx.auth, {
    key: span.key,
    ...(span.rangeEnd === undefined ? {} : { rangeEnd: span.rangeEnd }),
  });
  return new Promise<void>((resolve, reject) => {
    let id = -1;
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      ctx.signal.removeEventListener("abort", onAbort);
      if (id >= 0) ctx.s.watchable.cancel(id);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = (): void => finish(new Error("context canceled"));
    if (ctx.signal.aborted) {
      onAbort();
      return;
    }
    ctx.signal.addEventListener("abort", onAbort);
    id = ctx.s.watchable.watch({
      ...span,
      send: (resp) => {
        if (finished) return true;
        if (resp.compactRevision > 0) finish(new EtcdError("COMPACTED"));
        else if (resp.events.length > 0 && done(resp)) finish();
        return true;
      },
    });
    if (finished) ctx.s.watchable.cancel(id); // answered while registering (caught up from history)
  });
}
