// The recorded history of one robustness run, one JSON object per line: the run's parameters, every client
// operation (invoke/complete times, outcome, what it answered), every watch response, every fault, the members'
// status polls and the final per-member reads and HashKV. Revisions are plain numbers (safe far beyond any run).
// The checker reads only this file, so a failing run can be re-checked offline.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";

/** A key-value pair as a response or a watch event carries it. */
export interface Kv {
  readonly key: string;
  readonly value: string;
  readonly mod: number;
  readonly create: number;
  readonly ver: number;
  /** The lease id as a decimal string ("0": none): etcd's ids use all 63 bits. */
  readonly lease: string;
}

/** ok: the answer arrived; failed: a definite error (it did not happen); unknown: it may or may not have. */
export type Outcome = "ok" | "failed" | "unknown";

export type OpInput =
  | { readonly kind: "put"; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly kind: "get"; readonly key: string; readonly serializable: boolean }
  | { readonly kind: "range"; readonly prefix: string; readonly limit: number; readonly serializable: boolean }
  | { readonly kind: "delete"; readonly key: string }
  /** Compare mod_revision(key) == expectMod; then put key=value, else get key. */
  | { readonly kind: "cas"; readonly key: string; readonly expectMod: number; readonly value: string }
  | { readonly kind: "grant"; readonly ttl: number }
  | { readonly kind: "revoke"; readonly lease: string }
  | { readonly kind: "compact"; readonly rev: number };

export interface OpOutput {
  /** The response header's revision and the answering member (hex). */
  readonly rev: number;
  readonly member: string;
  /** get/range/cas-else: the key-values read; range: count and more. */
  readonly kvs?: readonly Kv[];
  readonly count?: number;
  readonly more?: boolean;
  /** delete: how many keys it deleted. */
  readonly deleted?: number;
  readonly succeeded?: boolean;
  /** grant: the lease id. */
  readonly lease?: string;
}

export interface OpRecord {
  readonly t: "op";
  readonly id: number;
  readonly client: number;
  readonly input: OpInput;
  /** ms since the run started (monotonic clock). */
  readonly invoke: number;
  readonly complete: number;
  readonly outcome: Outcome;
  readonly output?: OpOutput;
  readonly error?: string;
}

export interface WatchEventRec {
  readonly type: "PUT" | "DELETE";
  readonly kv: Kv;
  readonly prev?: Kv;
}

/** One response on one watch stream; `watch` names the logical watch, `session` its stream (a resume opens a new one). */
export interface WatchRecord {
  readonly t: "watch";
  readonly watch: number;
  readonly session: number;
  readonly time: number;
  readonly member: string;
  readonly rev: number;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compactRev?: number;
  readonly events: readonly WatchEventRec[];
}

/** A watch stream being opened: the logical watch, its filter and the revision asked for. */
export interface WatchOpenRecord {
  readonly t: "watch-open";
  readonly watch: number;
  readonly session: number;
  readonly time: number;
  readonly prefix: string;
  /** 0: from "now" (the created response's revision + 1). */
  readonly startRev: number;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  /** Why this stream was opened: a new watch, a resume after a break, or a restart after compaction. */
  readonly reason: "new" | "resume" | "compacted";
}

export interface FaultRecord {
  readonly t: "fault";
  readonly name: string;
  readonly members: readonly number[];
  readonly start: number;
  readonly end: number;
  readonly error?: string;
  /** A failpoint crash: the point, the hit it was armed to kill at, how the process ended (absent: not reached). */
  readonly failpoint?: FailpointNote;
}

export interface FailpointNote {
  readonly point: string;
  readonly hit: number;
  readonly exit?: string;
  readonly firedAfterMs?: number;
}

/** One Status answer from a member: the revision it served at that moment. */
export interface StatusRecord {
  readonly t: "status";
  readonly member: number;
  readonly time: number;
  readonly rev: number;
}

/** After the final heal: every member's HashKV at one common revision and its serializable read of all keys. */
export interface FinalRecord {
  readonly t: "final";
  readonly member: number;
  /** The member's own revision once the run settled (equal on every member unless one fell behind). */
  readonly head: number;
  /** The revision hash and kvs were taken at. */
  readonly rev: number;
  readonly hash: number;
  readonly compactRev: number;
  readonly kvs: readonly Kv[];
}

export interface MetaRecord {
  readonly t: "meta";
  readonly target: string;
  readonly members: number;
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: readonly string[];
  readonly mix: string;
  /** Every key the workload touches starts with this. */
  readonly prefix: string;
}

export type HistoryRecord =
  | MetaRecord
  | OpRecord
  | WatchOpenRecord
  | WatchRecord
  | FaultRecord
  | StatusRecord
  | FinalRecord;

export interface History {
  readonly meta: MetaRecord | undefined;
  readonly ops: OpRecord[];
  readonly watchOpens: WatchOpenRecord[];
  readonly watches: WatchRecord[];
  readonly faults: FaultRecord[];
  readonly statuses: StatusRecord[];
  readonly finals: FinalRecord[];
}

export function emptyHistory(): History {
  return { meta: undefined, ops: [], watchOpens: [], watches: [], faults: [], statuses: [], finals: [] };
}

/** addRecord files one record into its list. */
export function addRecord(h: History, r: HistoryRecord): History {
  switch (r.t) {
    case "meta":
      return { ...h, meta: r };
    case "op":
      h.ops.push(r);
      return h;
    case "watch-open":
      h.watchOpens.push(r);
      return h;
    case "watch":
      h.watches.push(r);
      return h;
    case "fault":
      h.faults.push(r);
      return h;
    case "status":
      h.statuses.push(r);
      return h;
    case "final":
      h.finals.push(r);
      return h;
  }
}

export function historyOf(records: readonly HistoryRecord[]): History {
  return records.reduce(addRecord, emptyHistory());
}

export function readHistory(path: string): History {
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0);
  return historyOf(lines.map((l) => JSON.parse(l) as HistoryRecord));
}

/** HistoryWriter keeps the records in memory and appends them to the file in batches. */
export class HistoryWriter {
  readonly records: HistoryRecord[] = [];
  private pending: string[] = [];

  constructor(private readonly path: string) {
    writeFileSync(path, "");
  }

  add(r: HistoryRecord): void {
    this.records.push(r);
    this.pending.push(JSON.stringify(r));
    if (this.pending.length >= 256) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    appendFileSync(this.path, this.pending.join("\n") + "\n");
    this.pending = [];
  }
}
