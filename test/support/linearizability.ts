// A linearizability checker for recorded client histories (none exists on npm): the Wing–Gong search with
// Lowe's memoisation of (linearized set, model state), as in the Porcupine/Knossos line of checkers, written
// for our own models. A history is a list of operations with call and return times (return = Infinity for
// calls whose outcome is unknown: they may or may not have taken effect). Histories over independent keys
// should be checked per key (partitionByKey): the search is exponential in concurrency, not in length.

export interface Operation<I, O> {
  readonly clientId: number;
  readonly input: I;
  /** Undefined when the call's outcome is unknown (timed out, connection lost). */
  readonly output: O | undefined;
  readonly callTime: number;
  /** Infinity when the outcome is unknown. */
  readonly returnTime: number;
}

export interface Model<S, I, O> {
  init(): S;
  /** Applies input to state; says whether output is what a sequential object would answer, and the next state. */
  step(state: S, input: I, output: O | undefined): { ok: boolean; next: S };
  /** A string that identifies the state, for memoisation. */
  key(state: S): string;
}

export interface CheckResult {
  readonly ok: boolean;
  /** True when the search gave up at its step bound: neither linearizable nor not was shown. */
  readonly unknown: boolean;
  /** On success, the order of operation indexes that linearizes the history. */
  readonly order: readonly number[];
}

interface Event {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
}

/** Calls and returns in time order; on equal times a return precedes a call (the operations did not overlap). */
function eventsOf<I, O>(history: readonly Operation<I, O>[]): Event[] {
  const events: Event[] = [];
  history.forEach((op, i) => {
    if (!(op.callTime <= op.returnTime))
      throw new Error(`op ${i}: callTime(${op.callTime}) > returnTime(${op.returnTime})`);
    events.push({ op: i, isCall: true, time: op.callTime });
    if (op.returnTime !== Infinity) events.push({ op: i, isCall: false, time: op.returnTime });
  });
  events.sort((a, b) => a.time - b.time || Number(a.isCall) - Number(b.isCall));
  return events;
}

export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  opts: { maxSteps?: number } = {},
): CheckResult {
  const maxSteps = opts.maxSteps ?? 5_000_000;
  const n = history.length;
  const events = eventsOf(history);
  // An operation may be linearized once every operation that returned before its call is linearized.
  const mustPrecede: number[][] = history.map(() => []);
  const returned: number[] = [];
  for (const e of events) {
    if (e.isCall) mustPrecede[e.op] = [...returned];
    else returned.push(e.op);
  }
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  const order: number[] = [];
  let steps = 0;
  let unknown = false;

  const returnedCount = history.filter((op) => op.returnTime !== Infinity).length;
  // count = returned operations linearized so far; calls with unknown outcome may never have taken effect,
  // so the history is explained once every returned operation is in the order.
  const search = (state: S, count: number): boolean => {
    if (count === returnedCount) return true;
    if (++steps > maxSteps) {
      unknown = true;
      return false;
    }
    const memo = `${model.key(state)}|${doneKey(done)}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    for (let i = 0; i < n; i++) {
      const op = history[i];
      if (op === undefined || done[i] === 1) continue;
      if (!(mustPrecede[i] ?? []).every((p) => done[p] === 1)) continue;
      const r = model.step(state, op.input, op.output);
      if (!r.ok) continue;
      done[i] = 1;
      order.push(i);
      if (search(r.next, count + (op.returnTime === Infinity ? 0 : 1))) return true;
      order.pop();
      done[i] = 0;
    }
    return false;
  };

  const ok = search(model.init(), 0);
  return { ok, unknown: !ok && unknown, order: ok ? [...order] : [] };
}

function doneKey(done: Uint8Array): string {
  let out = "";
  for (let i = 0; i < done.length; i += 16) {
    let word = 0;
    for (let j = i; j < Math.min(i + 16, done.length); j++) word = (word << 1) | (done[j] ?? 0);
    out += String.fromCharCode(word + 0x100);
  }
  return out;
}

/** Splits a history over keys into independent sub-histories (P-compositionality of linearizability). */
export function partitionByKey<I, O>(
  history: readonly Operation<I, O>[],
  keyOf: (input: I) => string,
): Map<string, Operation<I, O>[]> {
  const out = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    const k = keyOf(op.input);
    const list = out.get(k) ?? [];
    list.push(op);
    out.set(k, list);
  }
  return out;
}

// A single-key register with put / get / compare-and-swap: the model for etcd's KV under a client workload.
export type KvInput =
  | { readonly kind: "put"; readonly key: string; readonly value: string }
  | { readonly kind: "get"; readonly key: string }
  | { readonly kind: "cas"; readonly key: string; readonly expect: string | null; readonly value: string };
/** get → the value read (null = absent); put → null; cas → whether it succeeded. */
export type KvOutput = string | null | boolean;

export const registerModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  key: (state) => (state === null ? "\u0000" : "v" + state),
  step(state, input, output) {
    switch (input.kind) {
      case "put":
        return { ok: true, next: input.value };
      case "get":
        return { ok: output === undefined || output === state, next: state };
      case "cas": {
        const success = state === input.expect;
        if (output !== undefined && output !== success) return { ok: false, next: state };
        return { ok: true, next: success ? input.value : state };
      }
    }
  },
};

export function checkKvHistory(history: readonly Operation<KvInput, KvOutput>[]): CheckResult & { badKey?: string } {
  for (const [key, ops] of partitionByKey(history, (i) => i.key)) {
    const r = checkLinearizable(registerModel, ops);
    if (!r.ok) return { ...r, badKey: key };
  }
  return { ok: true, unknown: false, order: [] };
}
