// etcd 3.4's Election service (v3electionpb.Election) over the election recipe: Campaign waits to lead and
// answers the leader key (name, key, create revision, lease); Proclaim and Resign act on that key only while it
// still has that create revision; Leader and Observe read the oldest key under `<name>/`. Errors travel as etcd's
// do (code Unknown): "election: not leader", "election: no leader", `"leader" field must be provided`.
import type * as grpc from "@grpc/grpc-js";
import { decodeKeyValue, type KeyValue } from "../mvcc/kv_codec.js";
import { SortOrder } from "../mvcc/types.js";
import { EventType } from "../mvcc/watchable_store.js";
import type { EtcdServer, ResponseHeader } from "../server/etcd_server.js";
import { bytesOf, recipeContext, recipeStatus } from "./lock_service.js";
import * as rc from "./recipes.js";
import { headerObject, int64, unary } from "./unary.js";

export const ELECTION_NOT_LEADER = "election: not leader";
export const ELECTION_NO_LEADER = "election: no leader";
export const MISSING_LEADER_KEY = '"leader" field must be provided';

export interface LeaderKey {
  readonly name: Uint8Array;
  readonly key: Uint8Array;
  readonly rev: number;
  readonly lease: bigint;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Puts `value` on the leader key if it still has its create revision. */
export async function proclaim(ctx: rc.RecipeContext, leader: LeaderKey, value: Uint8Array): Promise<ResponseHeader> {
  const { header, response } = await rc.txn(ctx, {
    compare: [rc.createdAt(leader.key, leader.rev)],
    success: [{ put: { key: leader.key, value, lease: leader.lease } }],
    failure: [],
  });
  if (!response.succeeded) throw new Error(ELECTION_NOT_LEADER);
  return header;
}

/** Deletes the leader key if it still has its create revision; a key that moved on is left alone (no error). */
export async function resign(ctx: rc.RecipeContext, leader: LeaderKey): Promise<ResponseHeader> {
  const { header } = await rc.txn(ctx, {
    compare: [rc.createdAt(leader.key, leader.rev)],
    success: [{ deleteRange: { key: leader.key } }],
    failure: [],
  });
  return header;
}

/**
 * Joins the election with a key on the session's lease (an existing key of this session is reused, its value
 * proclaimed), then waits until every key created before it is gone. A caller that goes away resigns.
 */
export async function campaign(
  ctx: rc.RecipeContext,
  name: Uint8Array,
  lease: bigint,
  value: Uint8Array,
): Promise<{ header: ResponseHeader; leader: LeaderKey }> {
  const id = await rc.sessionLease(ctx, lease);
  const prefix = rc.prefixOf(name);
  const key = rc.contenderKey(prefix, id);
  const { header, response } = await rc.txn(ctx, {
    compare: [rc.createdAt(key, 0)],
    success: [{ put: { key, value, lease: id } }],
    failure: [{ range: { key } }],
  });
  let leader: LeaderKey = { name, key, rev: header.revision, lease: id };
  const existing = response.succeeded ? undefined : rc.kvsOf(response.responses[0])[0];
  if (existing !== undefined) {
    leader = { ...leader, rev: existing.createRevision };
    if (!sameBytes(existing.value, value)) {
      try {
        await proclaim(ctx, leader, value);
      } catch (err) {
        await resign(rc.detached(ctx), leader).catch(() => undefined);
        throw err;
      }
    }
  }
  try {
    await rc.waitDeletes(ctx, prefix, leader.rev - 1);
  } catch (err) {
    if (ctx.signal.aborted) await resign(rc.detached(ctx), leader).catch(() => undefined);
    throw err;
  }
  return { header, leader };
}

/** The oldest key under `<name>/`: the leader. */
export async function currentLeader(
  ctx: rc.RecipeContext,
  name: Uint8Array,
): Promise<{ header: ResponseHeader; kv: KeyValue }> {
  const { header, kvs } = await rc.range(ctx, rc.byCreate(rc.prefixOf(name), SortOrder.ASCEND));
  const kv = kvs[0];
  if (kv === undefined) throw new Error(ELECTION_NO_LEADER);
  return { header, kv };
}

function kvObject(kv: KeyValue): Record<string, unknown> {
  return {
    key: Buffer.from(kv.key),
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
    value: Buffer.from(kv.value),
    lease: kv.lease.toString(),
  };
}

function leaderKeyOf(v: unknown): LeaderKey {
  if (v === null || v === undefined || typeof v !== "object") throw new Error(MISSING_LEADER_KEY);
  const o = v as Record<string, unknown>;
  return { name: bytesOf(o["name"]), key: bytesOf(o["key"]), rev: Number(int64(o["rev"])), lease: int64(o["lease"]) };
}

export function electionService(s: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    Campaign: unary(async (req, call) => {
      const { header, leader } = await campaign(
        recipeContext(s, call),
        bytesOf(req["name"]),
        int64(req["lease"]),
        bytesOf(req["value"]),
      );
      return {
        header: headerObject(header),
        leader: {
          name: Buffer.from(leader.name),
          key: Buffer.from(leader.key),
          rev: String(leader.rev),
          lease: leader.lease.toString(),
        },
      };
    }, recipeStatus),
    Proclaim: unary(async (req, call) => {
      const leader = leaderKeyOf(req["leader"]);
      const ctx = recipeContext(s, call);
      const lease = await rc.sessionLease(ctx, leader.lease);
      return { header: headerObject(await proclaim(ctx, { ...leader, lease }, bytesOf(req["value"]))) };
    }, recipeStatus),
    Resign: unary(async (req, call) => {
      const leader = leaderKeyOf(req["leader"]);
      const ctx = recipeContext(s, call);
      await rc.sessionLease(ctx, leader.lease); // etcd opens a session here too: lease 0 grants one
      return { header: headerObject(await resign(ctx, leader)) };
    }, recipeStatus),
    Leader: unary(async (req, call) => {
      const { header, kv } = await currentLeader(recipeContext(s, call), bytesOf(req["name"]));
      return { header: headerObject(header), kv: kvObject(kv) };
    }, recipeStatus),
    Observe: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      const ctx = recipeContext(s, call);
      call.on("error", () => undefined);
      const send = (header: ResponseHeader, kv: KeyValue): void => {
        if (!call.writableEnded) call.write({ header: headerObject(header), kv: kvObject(kv) });
      };
      observe(ctx, bytesOf(call.request["name"]), send).then(
        () => call.end(),
        (err: unknown) =>
          ctx.signal.aborted ? undefined : call.emit("error", Object.assign(new Error(String(err)), recipeStatus(err))),
      );
    },
  };
}

/**
 * etcd's Observe: the current leader's key-value, then each new value of that key, and when it is deleted the
 * next leader's (waiting for a first put when there is none). Runs until the caller goes away.
 */
export async function observe(
  ctx: rc.RecipeContext,
  name: Uint8Array,
  send: (header: ResponseHeader, kv: KeyValue) => void,
): Promise<void> {
  const prefix = rc.prefixOf(name);
  while (!ctx.signal.aborted) {
    const { header, kvs } = await rc.range(ctx, rc.byCreate(prefix, SortOrder.ASCEND));
    let leader = kvs[0];
    let rev = header.revision;
    if (leader === undefined) {
      leader = await firstPut(ctx, prefix, header.revision);
      rev = leader.modRevision;
    }
    send(ctx.s.header(rev), leader);
    await rc.watchUntil(ctx, { key: leader.key, startRevision: rev + 1 }, (resp) => {
      for (const e of resp.events) {
        if (e.type === EventType.DELETE) return true;
        send(ctx.s.header(resp.revision), decodeKeyValue(e.kv));
      }
      return false;
    });
  }
}

/** The first key put under `prefix` from revision `from` on (a delete is no leader: it is skipped). */
async function firstPut(ctx: rc.RecipeContext, prefix: Uint8Array, from: number): Promise<KeyValue> {
  let found: KeyValue | undefined;
  await rc.watchUntil(ctx, { key: prefix, rangeEnd: rc.prefixEnd(prefix), startRevision: from }, (resp) => {
    const put = resp.events.find((e) => e.type === EventType.PUT);
    if (put !== undefined) found = decodeKeyValue(put.kv);
    return put !== undefined;
  });
  if (found === undefined) throw new Error("election: watch ended without a put");
  return found;
}
