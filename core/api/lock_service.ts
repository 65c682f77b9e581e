// etcd 3.4's Lock service (v3lockpb.Lock): Lock waits for the named lock with the mutex recipe and answers the
// key that holds it; Unlock deletes that key. As in etcd, every error travels with code Unknown and etcd's text
// (etcd runs these services through an in-process client, whose errors lose their gRPC code).
import type * as grpc from "@grpc/grpc-js";
import type { EtcdServer } from "../server/etcd_server.js";
import { SortOrder } from "../mvcc/types.js";
import { authInfoOf } from "./auth_service.js";
import * as rc from "./recipes.js";
import { headerObject, int64, unary } from "./unary.js";

/** How etcd's recipe services report every failure: code Unknown, the error's own message. */
export function recipeStatus(err: unknown): Partial<grpc.StatusObject> {
  return { code: 2, details: err instanceof Error ? err.message : String(err) };
}

/** The recipe context of a call: its identity, and an abort when the caller cancels or goes away. */
export function recipeContext(
  s: EtcdServer,
  call: { readonly metadata?: grpc.Metadata; on?(event: string, fn: () => void): unknown },
): rc.RecipeContext {
  const abort = new AbortController();
  call.on?.("cancelled", () => abort.abort());
  return { s, auth: authInfoOf(s, call), signal: abort.signal };
}

export function bytesOf(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(0);
}

/**
 * The mutex recipe: join the waiters with a key on the session's lease (or find this session's key already
 * there), and hold the lock once every key created before it is gone. A caller that goes away while waiting
 * leaves no key behind.
 */
export async function lock(
  ctx: rc.RecipeContext,
  name: Uint8Array,
  lease: bigint,
): Promise<{ header: ReturnType<EtcdServer["header"]>; key: Uint8Array }> {
  const id = await rc.sessionLease(ctx, lease);
  const prefix = rc.prefixOf(name);
  const key = rc.contenderKey(prefix, id);
  const owner = { range: rc.byCreate(prefix, SortOrder.ASCEND) };
  const { header, response } = await rc.txn(ctx, {
    compare: [rc.createdAt(key, 0)],
    success: [{ put: { key, value: new Uint8Array(0), lease: id } }, owner],
    failure: [{ range: { key } }, owner],
  });
  const mine = response.succeeded
    ? header.revision
    : (rc.kvsOf(response.responses[0])[0]?.createRevision ?? header.revision);
  const holder = rc.kvsOf(response.responses[1])[0];
  if (holder === undefined || holder.createRevision === mine) return { header, key };
  try {
    return { header: await rc.waitDeletes(ctx, prefix, mine - 1), key };
  } catch (err) {
    await rc.deleteKey(rc.detached(ctx), key).catch(() => undefined);
    throw err;
  }
}

export function lockService(s: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    Lock: unary(async (req, call) => {
      const { header, key } = await lock(recipeContext(s, call), bytesOf(req["name"]), int64(req["lease"]));
      return { header: headerObject(header), key: Buffer.from(key) };
    }, recipeStatus),
    Unlock: unary(async (req, call) => {
      const header = await rc.deleteKey(recipeContext(s, call), bytesOf(req["key"]));
      return { header: headerObject(header) };
    }, recipeStatus),
  };
}
