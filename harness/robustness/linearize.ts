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
export function prepareOps(h: History): LinOp[] {
  const seen = observedPuts(h);
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
    const sighting = input.kind === "put" || input.kind === "cas" ? seen.get(input.value) : undefined;
    if (sighting === undefined) {
      ops.push({ rec, input, output: undefined, invoke: rec.invoke, ret: Infinity });
      continue;
    }
    // It happened: at the revision it was seen with, before the sighting completed.
    const output: OpOutput = { rev: sighting.rev, member: "", ...(input.kind === "cas" ? { succeeded: true } : {}) };
    ops.push({ rec, input, output, invoke: rec.invoke, ret: Math.max(rec.invoke, sighting.time) });
  }
  return ops;
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

interface Entry {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  prev: Entry | undefined;
  next: Entry | undefined;
  match: Entry | undefined;
}

function buildList(ops: readonly LinOp[]): Entry | undefined {
  const entries: Entry[] = [];
  ops.forEach((op, i) => {
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

export function linearize(ops: readonly LinOp[], opts: { maxSteps?: number; init?: KvState } = {}): LinearizeResult {
  const maxSteps = opts.maxSteps ?? 20_000_000;
  const claimed = new Set<number>();
  for (const op of ops) if (op.output !== undefined && claimsRevision(op.input, op.output)) claimed.add(op.output.rev);
  const z = zobrist(ops.length);
  const st = opts.init ?? initialState();
  const head: Entry = { op: -1, isCall: false, time: -Infinity, prev: undefined, next: buildList(ops), match: undefined };
  if (head.next !== undefined) head.next.prev = head;
  const lift = (e: Entry): void => {
    e.prev!.next = e.next;
    if (e.next !== undefined) e.next.prev = e.prev;
    const m = e.match!;
    m.prev!.next = m.next;
    if (m.next !== undefined) m.next.prev = m.prev;
  };
  const unlift = (e: Entry): void => {
    const m = e.match!;
    m.prev!.next = m;
    if (m.next !== undefined) m.next.prev = m;
    e.prev!.next = e;
    if (e.next !== undefined) e.next.prev = e;
  };
  const cache = new Set<string>();
  const stack: { entry: Entry; res: StepResult }[] = [];
  let hA = 0;
  let hB = 0;
  let best: { order: LinOp[]; stuck: LinOp; rev: number; kvs: Kv[] } | undefined;
  let steps = 0;
  let entry = head.next;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return result(false, true);
    if (entry === undefined) throw new Error("linearize: walked off the list");
    const op = ops[entry.op]!;
    if (entry.isCall) {
      const res = tryStep(st, op, claimed);
      if (res !== undefined) {
        const a = (hA ^ z[entry.op * 2]!) >>> 0;
        const b = (hB ^ z[entry.op * 2 + 1]!) >>> 0;
        const key = `${st.rev}:${st.fpA}:${st.fpB}:${a}:${b}`;
        if (!cache.has(key)) {
          cache.add(key);
          hA = a;
          hB = b;
          stack.push({ entry, res });
          lift(entry);
          entry = head.next;
          continue;
        }
        res.undo();
      }
      entry = entry.next;
      continue;
    }
    // A return: the operation it closes was not placed. Unknown outcomes (ret = Infinity) may stay out.
    if (entry.time === Infinity) break;
    if (best === undefined || stack.length >= best.order.length) {
      best = { order: stack.map((s) => ops[s.entry.op]!), stuck: op, rev: st.rev, kvs: [...st.kvs.values()] };
    }
    const top = stack.pop();
    if (top === undefined) return result(false, false);
    top.res.undo();
    hA = (hA ^ z[top.entry.op * 2]!) >>> 0;
    hB = (hB ^ z[top.entry.op * 2 + 1]!) >>> 0;
    unlift(top.entry);
    entry = top.entry.next;
  }
  return result(true, false);

  function result(ok: boolean, gaveUp: boolean): LinearizeResult {
    if (ok) {
      const order = stack.map((s) => ops[s.entry.op]!);
      return { ok, gaveUp, order, events: stack.flatMap((s) => s.res.events), steps };
    }
    const order = best?.order ?? [];
    return {
      ok, gaveUp, order, events: [], steps,
      ...(best === undefined ? {} : { stuck: { op: best.stuck, rev: best.rev, kvs: best.kvs } }),
    };
  }
}

/** tryStep: the model step, refusing an unknown-outcome operation that changes nothing or takes a claimed revision. */
function tryStep(st: KvState, op: LinOp, claimed: ReadonlySet<number>): StepResult | undefined {
  const before = st.rev;
  const res = step(st, op.input, op.output);
  if (res === undefined || op.output !== undefined) return res;
  if (!res.changed || (st.rev !== before && claimed.has(st.rev))) {
    res.undo();
    return undefined;
  }
  return res;
}
