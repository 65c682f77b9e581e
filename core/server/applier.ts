// The applier: committed Raft entries become one backend write batch, committed with the last entry's index as
// the consistent index, so a restart resumes after it and never applies an entry twice. It turns each entry into
// a backend write (KV, lease, alarm, auth, publish, conf change), re-checks the proposer's permissions at apply
// time, refuses what grows the database while NOSPACE is raised (etcd's capped applier), and hands conf change
// outcomes back to Raft. Apply is total: a request that fails answers its proposer with an error.
import { EtcdError } from "../errors.js";
import type { Cluster } from "../membership/cluster.js";
import type { MemberChange } from "../membership/conf_change.js";
import type { Lessor } from "../lease/lessor.js";
import type { KvStore } from "../mvcc/kv_store.js";
import type { Effect, TxnRequest, WriteRequest, WriteResponse } from "../mvcc/types.js";
import { ConfChangeType, EntryType, decodeConfChange, type ConfChange, type Entry } from "../raft/index.js";
import type { WalStorage } from "../wal/wal_storage.js";
import type { AuthInfo } from "../auth/tokens.js";
import { AlarmAction, AlarmType, type AlarmStore } from "./alarms.js";
import { isAuthChange, type ServerAuth } from "./auth_apply.js";
import { isLeaseRequest, leaseEffect } from "./leases.js";
import { confChangeEffect, recordedOutcome, type ConfOutcome } from "./membership_apply.js";
import type { ServerMetrics } from "./metrics.js";
import type { V2Keys } from "./v2_keys.js";
import { decodePayload, type AlarmChange, type InternalRequest } from "./request_codec.js";

/** What the applier reads from its member; the stores are re-read on every use (a snapshot replaces them). */
export interface ApplyHost {
  readonly kv: KvStore;
  readonly storage: WalStorage;
  readonly metrics: ServerMetrics;
  readonly alarms: AlarmStore;
  readonly auth: ServerAuth;
  readonly lessor: Lessor;
  readonly cluster: Cluster;
  readonly v2: V2Keys;
  /** Raft's configuration follows a conf change (a refused one is applied as a no-op change). */
  applyConfChangeToRaft(cc: ConfChange): void;
  /** An accepted member change was applied here: the transport and the log follow it. */
  onMemberChange(change: MemberChange): void;
  /** The proposer waiting on `id` gets its answer. */
  answer(id: bigint, result: WriteResponse | EtcdError): void;
  /** A batch was applied up to `index` (time to consider a snapshot). */
  afterApply(index: number): void;
  /** Logs a warning (a committed request refused because it could not be applied). */
  warn?(message: string): void;
}

export class Applier {
  readonly #host: ApplyHost;
  #applied: number;
  readonly #appliedWaiters: { index: number; resolve: () => void }[] = [];
  /** Member changes proposed here, waiting for their conf change to apply: key type:nodeId. */
  readonly confWaiters = new Map<string, { resolve: (o: ConfOutcome) => void }>();

  constructor(host: ApplyHost, applied: number) {
    this.#host = host;
    this.#applied = applied;
  }

  get applied(): number {
    return this.#applied;
  }

  /** The backend was replaced (a snapshot installed): apply resumes after its index. */
  resetTo(index: number): void {
    this.#applied = index;
    this.#notifyApplied();
  }

  /** Resolves once the applied index reaches `index` (a linearizable read's wait). */
  waitApplied(index: number): Promise<void> {
    if (this.#applied >= index) return Promise.resolve();
    return new Promise((resolve) => this.#appliedWaiters.push({ index, resolve }));
  }

  #notifyApplied(): void {
    for (let i = this.#appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.#appliedWaiters[i];
      if (w !== undefined && w.index <= this.#applied) {
        this.#appliedWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  async apply(entries: readonly Entry[]): Promise<void> {
    const ids: bigint[] = [];
    const reqs: WriteRequest[] = [];
    // The request and proposer each slot's apply-time checks run on (undefined: none).
    const guarded: (InternalRequest | undefined)[] = [];
    const auths: (AuthInfo | undefined)[] = [];
    const confs: { cc: ConfChange; slot: number }[] = [];
    for (const e of entries) {
      if (e.index <= this.#applied) {
        // Already in the backend (replay after a restart or a snapshot): Raft still needs past conf changes,
        // with the outcome they had when they were applied.
        if (e.type === EntryType.ConfChange) this.#replayConfChange(e);
        continue;
      }
      if (e.type === EntryType.ConfChange) {
        const cc = confChangeOf(e);
        confs.push({ cc, slot: reqs.length });
        ids.push(0n);
        reqs.push({ effect: confChangeEffect(this.#host.cluster, cc, e.index) });
        guarded.push(undefined);
        auths.push(undefined);
      } else if (e.data.length > 0) {
        const p = decodeEntry(e);
        ids.push(p.id);
        reqs.push(p.req === undefined ? refusal(p.error) : this.#toWrite(p.req, e.index));
        guarded.push(p.req);
        auths.push(p.auth);
      }
    }
    const last = entries[entries.length - 1];
    if (last === undefined || last.index <= this.#applied) return;
    const results =
      reqs.length > 0
        ? await this.#host.kv.write(reqs, last.index, (slot) => this.#guard(guarded[slot], auths[slot]))
        : [];
    this.#applied = last.index;
    for (const { cc, slot } of confs) this.#afterConfChange(cc, results[slot]);
    results.forEach((res, i) => {
      if (res instanceof EtcdError && res.code === "APPLY_FAILED")
        this.#host.warn?.(`refused a committed request that could not be applied: ${res.detail ?? ""}`);
      this.#host.answer(ids[i] ?? 0n, res);
    });
    this.#notifyApplied();
    this.#host.afterApply(this.#applied);
  }

  /**
   * Raft restarts from its snapshot's configuration, and entries up to the backend's applied index are not handed
   * out again: the conf changes among them are given back to Raft here, with the outcome they had.
   */
  replayConfChanges(lo: number, hi: number): void {
    for (let i = lo; i <= hi; ) {
      const batch = this.#host.storage.entries(i, hi + 1, 64 * 1024 * 1024);
      for (const e of batch) if (e.type === EntryType.ConfChange) this.#replayConfChange(e);
      const last = batch[batch.length - 1];
      if (last === undefined) break;
      i = last.index + 1;
    }
  }

  #replayConfChange(e: Entry): void {
    const cc = confChangeOf(e);
    const accepted = this.#host.kv.backend.readNow((v) => recordedOutcome(v, e.index));
    if (accepted === undefined)
      throw new Error(
        `conf change at index ${e.index} is below the applied index ${this.#applied} but has no recorded outcome`,
      );
    this.#host.applyConfChangeToRaft(accepted ? cc : { ...cc, nodeId: 0n });
  }

  /** After the batch with a conf change committed: Raft, the transport and whoever proposed it learn the outcome. */
  #afterConfChange(cc: ConfChange, result: WriteResponse | EtcdError | undefined): void {
    const outcome =
      result !== undefined && !(result instanceof EtcdError) && "effect" in result
        ? (result.effect.value as ConfOutcome)
        : undefined;
    if (outcome === undefined)
      throw new Error(`conf change for ${cc.nodeId.toString(16)} was not applied: ${String(result)}`);
    this.#host.applyConfChangeToRaft(outcome.error === undefined ? cc : { ...cc, nodeId: 0n });
    const waiter = this.confWaiters.get(`${cc.type}:${cc.nodeId}`);
    this.confWaiters.delete(`${cc.type}:${cc.nodeId}`);
    waiter?.resolve(outcome);
    if (outcome.error !== undefined) return;
    this.#host.onMemberChange(outcome.change);
  }

  /** The backend write of one applied request. */
  #toWrite(req: InternalRequest, index: number): WriteRequest {
    if ("alarm" in req) return { effect: alarmEffect(this.#host.alarms, req) };
    if (isAuthChange(req)) return { effect: this.#host.auth.effect(req, index) };
    if ("v2" in req) return { effect: this.#host.v2.effect(req.v2) };
    if ("publish" in req) {
      const { memberId, name, clientUrls } = req.publish;
      return { effect: { run: (tx) => (this.#host.cluster.publish(tx, memberId, name, clientUrls), {}) } };
    }
    return isLeaseRequest(req) ? { effect: leaseEffect(this.#host.lessor, req) } : req;
  }

  /**
   * The checks a request passes just before it applies, in log order inside the batch, so that an auth change or
   * an alarm earlier in the same batch is seen exactly as it would be in a batch of its own: the proposer's
   * permissions (etcd's authApplierV3), then the CORRUPT alarm (every KV and lease write refused) and the NOSPACE
   * alarm (what grows the database refused: etcd's capped applier).
   */
  #guard(req: InternalRequest | undefined, auth: AuthInfo | undefined): void {
    if (req === undefined) return;
    const denied = auth !== undefined ? this.#applyTimeDenial(req, auth) : undefined;
    if (denied !== undefined) throw denied;
    const alarms = this.#host.alarms;
    if (alarms.has(AlarmType.CORRUPT) && isKvOrLeaseWrite(req)) throw new EtcdError("CORRUPT");
    if (alarms.has(AlarmType.NOSPACE) && growsDatabase(req)) throw new EtcdError("NO_SPACE");
  }

  /**
   * etcd checks a request's permissions again when it applies, with the user and auth revision it was proposed
   * with: a role or user changed in between (the auth revision moved) makes it fail with
   * "revision of auth store is old" (the client retries with a fresh token), a lost permission with "permission
   * denied".
   */
  #applyTimeDenial(req: InternalRequest, auth: AuthInfo): EtcdError | undefined {
    const store = this.#host.auth;
    if (!store.enabled) return undefined;
    try {
      if ("put" in req) store.checkPut(auth, req.put);
      else if ("deleteRange" in req) store.checkDeleteRange(auth, req.deleteRange);
      else if ("txn" in req) store.checkTxn(auth, req.txn);
      else if ("leaseRevoke" in req) store.checkLeaseKeys(auth, req.leaseRevoke.id);
      return undefined;
    } catch (err) {
      if (err instanceof EtcdError) return err;
      throw err;
    }
  }
}

function alarmEffect(alarms: AlarmStore, req: AlarmChange): Effect {
  const { action, memberId, type } = req.alarm;
  return {
    run: (tx) => ({
      value:
        action === AlarmAction.ACTIVATE
          ? alarms.activate(tx, memberId, type as AlarmType)
          : alarms.deactivate(tx, memberId, type as AlarmType),
    }),
  };
}

export function isTxnReadOnly(t: TxnRequest): boolean {
  return [...t.success, ...t.failure].every((op) => "range" in op || ("txn" in op && isTxnReadOnly(op.txn)));
}

/** The key and value bytes a txn writes (its cost against the quota). */
export function txnBytes(t: TxnRequest): number {
  let n = 0;
  for (const op of [...t.success, ...t.failure]) {
    if ("put" in op) n += op.put.key.length + op.put.value.length;
    else if ("txn" in op) n += txnBytes(op.txn);
  }
  return n;
}

/** etcd's capped applier refuses puts, txns that write, and lease grants while NOSPACE is raised. */
function growsDatabase(req: InternalRequest): boolean {
  return "put" in req || ("txn" in req && !isTxnReadOnly(req.txn)) || "leaseGrant" in req;
}

/** What etcd's corrupt applier refuses while CORRUPT is raised: KV writes, txns, compaction, lease grant/revoke. */
function isKvOrLeaseWrite(req: InternalRequest): boolean {
  return (
    "put" in req ||
    "deleteRange" in req ||
    "txn" in req ||
    "compact" in req ||
    "leaseGrant" in req ||
    "leaseRevoke" in req
  );
}

/** A Raft entry's payload, or why it could not be decoded (answered as a refused request, on every member alike). */
function decodeEntry(e: Entry): { id: bigint; req?: InternalRequest; auth?: AuthInfo; error: string } {
  try {
    const p = decodePayload(e.data);
    return { id: p.id, req: p.req, ...(p.auth !== undefined ? { auth: p.auth as AuthInfo } : {}), error: "" };
  } catch (err) {
    return { id: 0n, error: `entry ${e.index}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * A conf change entry's change; one that does not decode becomes a change of node 0, which the membership refuses
 * (and records as refused) and Raft applies as no change, on every member alike.
 */
function confChangeOf(e: Entry): ConfChange {
  try {
    return decodeConfChange(e.data);
  } catch {
    return { type: ConfChangeType.AddNode, nodeId: 0n, context: new Uint8Array(0) };
  }
}

/** A slot that applies nothing and answers APPLY_FAILED. */
function refusal(why: string): WriteRequest {
  return {
    effect: {
      run: () => {
        throw new EtcdError("APPLY_FAILED", why);
      },
    },
  };
}
