// Linearizability of a recorded etcd KV history: the Wing–Gong search with Lowe's memoisation (the line of
// Porcupine and Knossos), made fast by etcd's revisions. Every answered operation names the revision it ran at,
// so the model only accepts it when the state is at exactly that revision; an operation of unknown outcome is
// only placed where it changes the state into a revision no answered operation claims; a put of unknown
// outcome whose unique value some read or watch saw is pinned to the revision it was seen at and must be placed
// before that sighting. Serializable reads are not linearizable by design and are checked afterwards against
// the reconstructed revisions (reconstruct.ts).
import type { History, Kv, OpInput, OpOutput, OpRecord } from "./history.js";
import { claimsRevision, initialState, step, type KvEvent, type KvState, type StepResult } from "./kv_model.js";

export interface LinOp {
  readonly rec: OpRecord;
  readonly input: OpInput;
  readonly output: OpOutput | undefined;
  readonly invoke: number;
  /** Infinity: unknown outcome, may be left out. */
  readonly ret: number;
}

export interface LinearizeResult {
  readonly ok: boolean;
  /** True when the search hit its step bound without an answer. */
  readonly gaveUp: boolean;
  /** The order found (ok), or the longest prefix found (not ok). */
  readonly order: readonly LinOp[];
  /** The events of that order, revision by revision. */
  readonly events: readonly KvEvent[];
  /** Not ok: the answered operation that no extension of the longest prefix could place, and the state there. */
  readonly stuck?: { readonly op: LinOp; readonly rev: number; readonly kvs: Kv[] };
  readonly steps: number;
}

/** prepareOps turns the recorded client operations into the search's input (failed and serializable ones out). */
export function prepareOps(h: History, opts: { finalRead?: boolean } = {}): LinOp[] {
  const seen = observedPuts(h);
  const deletes = observedDeletes(h);
  const ops: LinOp[] = [];
  for (const rec of h.ops) {
    if (rec.outcome === "failed") continue;
    const input = rec.input;
    if ((input.kind === "get" || input.kind === "range") && input.serializable) continue;
    if (rec.outcome === "ok") {
      ops.push({ rec, input, output: rec.output, invoke: rec.invoke, ret: rec.complete });
      continue;
    }
    if (input.kind === "get" || input.kind === "range" || input.kind === "grant" || input.kind === "compact") continue;
    const sighting =
      input.kind === "put" || input.kind === "cas"
        ? seen.get(input.value)
        : input.kind === "delete"
          ? deletes.get(rec.id)
          : undefined;
    if (sighting === undefined) {
      ops.push({ rec, input, output: undefined, invoke: rec.invoke, ret: Infinity });
      continue;
    }
    // It happened: at the revision it was seen with, before the sighting completed.
    const output: OpOutput = {
      rev: sighting.rev,
      member: "",
      ...(input.kind === "cas" ? { succeeded: true } : input.kind === "delete" ? { deleted: 1 } : {}),
    };
    ops.push({ rec, input, output, invoke: rec.invoke, ret: Math.max(rec.invoke, sighting.time) });
  }
  const final = opts.finalRead === false ? undefined : finalRead(h);
  if (final !== undefined) ops.push(final);
  return ops;
}

/**
 * finalRead: the members' contents after the run, once they all reached the same revision, read as one more
 * linearizable range over every key after every other operation (nothing writes any more by then). Without it
 * a change of unknown outcome that nobody read afterwards could be left out although the end state shows it.
 */
function finalRead(h: History): LinOp | undefined {
  const f = h.finals[0];
  if (f === undefined || !h.finals.every((x) => x.head === f.head && x.rev === f.head)) return undefined;
  // A loop, not Math.max(...times): a long history has more times than a call's arguments may hold.
  let last = 0;
  for (const o of h.ops) last = Math.max(last, o.outcome === "unknown" ? o.invoke : o.complete);
  for (const w of h.watches) last = Math.max(last, w.time);
  const end = last + 1;
  const input: OpInput = { kind: "range", prefix: "", limit: 0, serializable: false };
  const output: OpOutput = { rev: f.rev, member: "", kvs: f.kvs, count: f.kvs.length, more: false };
  const rec: OpRecord = { t: "op", id: -1, client: -1, input, invoke: end, complete: end + 1, outcome: "ok", output };
  return { rec, input, output, invoke: end, ret: end + 1 };
}

/** observedPuts: every value any answer or watch event carried → its mod revision and earliest sighting. */
function observedPuts(h: History): Map<string, { rev: number; time: number }> {
  const out = new Map<string, { rev: number; time: number }>();
  const see = (kv: Kv, time: number): void => {
    const cur = out.get(kv.value);
    if (cur === undefined || time < cur.time) out.set(kv.value, { rev: kv.mod, time });
  };
  for (const op of h.ops) if (op.outcome === "ok") for (const kv of op.output?.kvs ?? []) see(kv, op.complete);
  for (const w of h.watches) for (const e of w.events) if (e.type === "PUT") see(e.kv, w.time);
  return out;
}

/**
 * observedDeletes pins a delete of unknown outcome to a DELETE a watch saw, when nothing else explains that event:
 * no answered delete at that revision, and this the only unknown delete of that key invoked before the sighting
 * (with two candidates either could be it, and the search decides). Operation id → revision and sighting.
 */
function observedDeletes(h: History): Map<number, { rev: number; time: number }> {
  const answered = new Set<number>();
  for (const op of h.ops)
    if (op.outcome === "ok" && op.output !== undefined && (op.input.kind === "delete" || op.input.kind === "revoke"))
      answered.add(op.output.rev);
  const sightings = new Map<string, { key: string; rev: number; time: number }>();
  for (const w of h.watches) {
    for (const e of w.events) {
      const k = `${e.kv.mod}/${e.kv.key}`;
      const cur = sightings.get(k);
      if (e.type === "DELETE" && !answered.has(e.kv.mod) && (cur === undefined || w.time < cur.time))
        sightings.set(k, { key: e.kv.key, rev: e.kv.mod, time: w.time });
    }
  }
  const unknownByKey = new Map<string, OpRecord[]>();
  for (const op of h.ops) {
    if (op.outcome !== "unknown" || op.input.kind !== "delete") continue;
    const list = unknownByKey.get(op.input.key) ?? [];
    list.push(op);
    unknownByKey.set(op.input.key, list);
  }
  const out = new Map<number, { rev: number; time: number }>();
  const used = new Set<number>();
  for (const s of [...sightings.values()].sort((a, b) => a.rev - b.rev)) {
    const candidates = (unknownByKey.get(s.key) ?? []).filter((op) => op.invoke < s.time && !used.has(op.id));
    if (candidates.length !== 1) continue;
    used.add(candidates[0]!.id);
    out.set(candidates[0]!.id, { rev: s.rev, time: s.time });
  }
  return out;
}

interface Entry {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  prev: Entry | undefined;
  next: Entry | undefined;
  match: Entry | undefined;
}

/** buildList: the calls and returns of ops (numbered by ids) as a doubly linked list in time order. */
function buildList(ops: readonly LinOp[], ids: readonly number[]): Entry | undefined {
  const entries: Entry[] = [];
  ops.forEach((op, k) => {
    const i = ids[k]!;
    const call: Entry = { op: i, isCall: true, time: op.invoke, prev: undefined, next: undefined, match: undefined };
    const ret: Entry = { op: i, isCall: false, time: op.ret, prev: undefined, next: undefined, match: call };
    call.match = ret;
    entries.push(call, ret);
  });
  // Calls before returns at equal times: operations that touch in time are treated as concurrent.
  entries.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.op - b.op);
  for (let i = 0; i < entries.length; i++) {
    entries[i]!.prev = entries[i - 1];
    entries[i]!.next = entries[i + 1];
  }
  return entries[0];
}

/** A tiny seeded generator for the Zobrist keys of the linearized set. */
function zobrist(n: number): Uint32Array {
  const out = new Uint32Array(n * 2);
  let x = 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 0;
  }
  return out;
}

export interface LinearizeOptions {
  readonly maxSteps?: number;
  readonly init?: KvState;
  readonly observed?: Observed;
  /** Stop at the first dead end this many operations deep and return that prefix (the failure report's rerun). */
  readonly captureDepth?: number;
}

type Frame =
  | { readonly kind: "main"; readonly entry: Entry; readonly res: StepResult; readonly op: number }
  | { readonly kind: "unknown"; readonly pos: number; readonly res: StepResult; readonly op: number };

/**
 * linearize searches for an order. Answered operations sit in Lowe's list of calls and returns; operations of
 * unknown outcome (which never return) are kept apart in a pool sorted by invoke time, and are only tried when
 * the next revision is free and they were invoked before the earliest pending return.
 */
export function linearize(ops: readonly LinOp[], opts: LinearizeOptions = {}): LinearizeResult {
  const observed = opts.observed ?? new Map<number, string>();
  const maxSteps = opts.maxSteps ?? 20_000_000;
  const claimed = new Set<number>();
  for (const op of ops) if (op.output !== undefined && claimsRevision(op.input, op.output)) claimed.add(op.output.rev);
  const z = zobrist(ops.length);
  const st = opts.init ?? initialState();
  const known = ops.map((op, i) => ({ op, i })).filter((x) => x.op.ret !== Infinity);
  const pool = ops
    .map((op, i) => ({ op, i }))
    .filter((x) => x.op.ret === Infinity)
    .sort((a, b) => a.op.invoke - b.op.invoke)
    .map((x) => x.i);
  const head: Entry = {
    op: -1,
    isCall: false,
    time: -Infinity,
    prev: undefined,
    next: buildList(
      known.map((x) => x.op),
      known.map((x) => x.i),
    ),
    match: undefined,
  };
  if (head.next !== undefined) head.next.prev = head;
  const cache = new Set<string>();
  const stack: Frame[] = [];
  let hA = 0;
  let hB = 0;
  let best: { depth: number; stuck: LinOp; rev: number; kvs: Kv[] } | undefined;
  let steps = 0;
  let cursor: { inMain: boolean; u: number; entry: Entry | undefined } = { inMain: false, u: 0, entry: head.next };

  const needs = new Needs(ops);
  /**
   * place records op i as linearized if (set, state) is new and every answered operation still to place can
   * still be: revisions only grow, so one needing an earlier revision than the model's makes the branch dead.
   */
  const place = (i: number, res: StepResult): boolean => {
    const a = (hA ^ z[i * 2]!) >>> 0;
    const b = (hB ^ z[i * 2 + 1]!) >>> 0;
    const key = `${st.rev}:${st.fpA}:${st.fpB}:${a}:${b}`;
    needs.remove(i);
    if (cache.has(key) || needs.min() < st.rev) {
      needs.add(i);
      res.undo();
      return false;
    }
    cache.add(key);
    hA = a;
    hB = b;
    return true;
  };
  const unplace = (i: number): void => {
    needs.add(i);
    hA = (hA ^ z[i * 2]!) >>> 0;
    hB = (hB ^ z[i * 2 + 1]!) >>> 0;
  };
  const firstReturn = (): number => {
    for (let e = head.next; e !== undefined; e = e.next) if (!e.isCall) return e.time;
    return Infinity;
  };

  while (head.next !== undefined) {
    if (++steps > maxSteps) return result(false, true);
    if (!cursor.inMain) {
      const before = firstReturn();
      let placed = false;
      if (!claimed.has(st.rev + 1)) {
        for (; cursor.u < pool.length && ops[pool[cursor.u]!]!.invoke <= before; cursor.u++) {
          const i = pool[cursor.u]!;
          const res = tryStep(st, ops[i]!, claimed, observed);
          if (res === undefined || !place(i, res)) continue;
          stack.push({ kind: "unknown", pos: cursor.u, res, op: i });
          pool.splice(cursor.u, 1);
          placed = true;
          break;
        }
      }
      cursor = placed ? { inMain: false, u: 0, entry: head.next } : { inMain: true, u: 0, entry: head.next };
      continue;
    }
    const entry = cursor.entry;
    if (entry === undefined) throw new Error("linearize: walked off the list");
    const op = ops[entry.op]!;
    if (entry.isCall) {
      const res = tryStep(st, op, claimed, observed);
      if (res !== undefined && place(entry.op, res)) {
        stack.push({ kind: "main", entry, res, op: entry.op });
        lift(entry);
        cursor = { inMain: false, u: 0, entry: head.next };
      } else {
        cursor.entry = entry.next;
      }
      continue;
    }
    // A return: the operation it closes was not placed; back up one step.
    if (stack.length === opts.captureDepth) {
      return {
        ok: false,
        gaveUp: false,
        order: stack.map((f) => ops[f.op]!),
        events: [],
        steps,
        stuck: { op, rev: st.rev, kvs: [...st.kvs.values()] },
      };
    }
    if (best === undefined || stack.length > best.depth)
      best = { depth: stack.length, stuck: op, rev: st.rev, kvs: [...st.kvs.values()] };
    const top = stack.pop();
    if (top === undefined) return result(false, false);
    top.res.undo();
    unplace(top.op);
    if (top.kind === "main") {
      unlift(top.entry);
      cursor = { inMain: true, u: 0, entry: top.entry.next };
    } else {
      pool.splice(top.pos, 0, top.op);
      cursor = { inMain: false, u: top.pos + 1, entry: head.next };
    }
  }
  return result(true, false);

  function result(ok: boolean, gaveUp: boolean): LinearizeResult {
    if (ok) {
      const order = stack.map((f) => ops[f.op]!);
      return { ok, gaveUp, order, events: stack.flatMap((f) => f.res.events), steps };
    }
    // The deepest prefix is not copied on every backtrack: the same search, run again, stops there.
    const order = best === undefined || gaveUp ? [] : linearize(ops, { ...opts, captureDepth: best.depth }).order;
    return {
      ok,
      gaveUp,
      order,
      events: [],
      steps,
      ...(best === undefined ? {} : { stuck: { op: best.stuck, rev: best.rev, kvs: best.kvs } }),
    };
  }
}

function lift(e: Entry): void {
  e.prev!.next = e.next;
  if (e.next !== undefined) e.next.prev = e.prev;
  const m = e.match!;
  m.prev!.next = m.next;
  if (m.next !== undefined) m.next.prev = m.prev;
}

function unlift(e: Entry): void {
  const m = e.match!;
  m.prev!.next = m;
  if (m.next !== undefined) m.next.prev = m;
  e.prev!.next = e;
  if (e.next !== undefined) e.next.prev = e;
}

/**
 * Needs tracks, over the answered operations not yet placed, the lowest model revision one of them can still be
 * applied at (a read at its header revision, a write one below the revision it made).
 */
class Needs {
  private readonly need: Int32Array;
  private readonly count: Int32Array;
  private low = 0;

  constructor(ops: readonly LinOp[]) {
    this.need = new Int32Array(ops.length).fill(-1);
    let max = 0;
    ops.forEach((op, i) => {
      if (op.output === undefined) return;
      // A revoke takes a revision only when it deleted keys: counted at its header revision, the later of the two,
      // so the pruning never cuts a branch that could still place it.
      this.need[i] = Math.max(0, op.output.rev - (claimsRevision(op.input, op.output) ? 1 : 0));
      max = Math.max(max, this.need[i]!);
    });
    this.count = new Int32Array(max + 2);
    for (const n of this.need) if (n >= 0) this.count[n]! += 1;
    this.count[max + 1] = 1; // sentinel: min() of an empty set is past every revision
  }

  remove(i: number): void {
    const n = this.need[i]!;
    if (n >= 0) this.count[n]! -= 1;
  }

  add(i: number): void {
    const n = this.need[i]!;
    if (n < 0) return;
    this.count[n]! += 1;
    if (n < this.low) this.low = n;
  }

  min(): number {
    while (this.count[this.low] === 0) this.low++;
    return this.low === this.count.length - 1 ? Infinity : this.low;
  }
}

/** tryStep: the model step, refusing an unknown-outcome operation that changes nothing or takes a claimed revision. */
function tryStep(st: KvState, op: LinOp, claimed: ReadonlySet<number>, observed: Observed): StepResult | undefined {
  // Every change takes exactly the next revision: when an answered operation claims it, no unknown one fits.
  if (op.output === undefined && claimed.has(st.rev + 1)) return undefined;
  const before = st.rev;
  const res = step(st, op.input, op.output);
  if (res === undefined || op.output !== undefined) return res;
  const seen = observed.get(st.rev);
  if (
    !res.changed ||
    (st.rev !== before && claimed.has(st.rev)) ||
    (seen !== undefined && seen !== eventsKey(res.events))
  ) {
    res.undo();
    return undefined;
  }
  return res;
}

/** Revision → what the watches saw it change (eventsKey), where they all agree. */
export type Observed = ReadonlyMap<number, string>;

function eventsKey(events: readonly { type: string; key: string; kv: { value: string } }[]): string {
  return events
    .map((e) => `${e.type} ${e.key}=${e.kv.value}`)
    .sort()
    .join("\n");
}

/**
 * observedChanges: what each revision changed as the watches saw it, used to decide which operation of unknown
 * outcome made a revision no answer names (a watch that disagrees with the store is the watch checks' business;
 * a revision the watches disagree on is left open).
 */
export function observedChanges(h: History): Map<number, string> {
  const perWatch = new Map<string, Map<string, { type: string; key: string; kv: { value: string } }>>();
  for (const w of h.watches) {
    for (const e of w.events) {
      const k = `${w.watch}/${e.kv.mod}`;
      const m = perWatch.get(k) ?? new Map();
      m.set(e.kv.key, { type: e.type, key: e.kv.key, kv: { value: e.kv.value } });
      perWatch.set(k, m);
    }
  }
  const out = new Map<number, string>();
  const conflicted = new Set<number>();
  for (const [k, m] of perWatch) {
    const rev = Number(k.slice(k.indexOf("/") + 1));
    const key = eventsKey([...m.values()]);
    if (conflicted.has(rev)) continue;
    const cur = out.get(rev);
    if (cur !== undefined && cur !== key) {
      out.delete(rev);
      conflicted.add(rev);
    } else {
      out.set(rev, key);
    }
  }
  return out;
}
