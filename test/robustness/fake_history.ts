// Builds recorded histories of a correct etcd without running one: a plain in-memory store (written here,
// independently of the checker's model) applies concurrent clients' operations at increasing linearization
// points, a watch follows every change in two streams with progress notifications, members poll and agree at
// the end. Tests mutate these to prove each check catches its fault.
import type {
  FinalRecord,
  HistoryRecord,
  Kv,
  OpInput,
  OpOutput,
  OpRecord,
  StatusRecord,
  WatchEventRec,
  WatchOpenRecord,
  WatchRecord,
} from "../../harness/robustness/history.js";
import { Rng } from "../../harness/robustness/rng.js";

interface Store {
  rev: number;
  kvs: Map<string, Kv>;
  leases: Map<string, Set<string>>;
}

export interface FakeHistory {
  readonly records: HistoryRecord[];
  /** The store's contents after every revision (index = revision). */
  readonly snapshots: Map<string, Kv>[];
}

const KEYS = ["/registry/pods/a", "/registry/pods/b", "/registry/pods/c", "/registry/pods/d"];

export function fakeHistory(seed: number, n = 300, opts: { unknown?: boolean } = {}): FakeHistory {
  const rng = new Rng(seed);
  const st: Store = { rev: 1, kvs: new Map(), leases: new Map() };
  const snapshots: Map<string, Kv>[] = [new Map(), new Map()];
  const ops: OpRecord[] = [];
  const events: { e: WatchEventRec; time: number }[] = [];
  let t = 10;
  let leaseNo = 0;
  const liveLeases: string[] = [];
  for (let id = 0; id < n; id++) {
    t += rng.int(1, 4);
    const key = rng.pick(KEYS);
    const cur = st.kvs.get(key);
    const roll = rng.next();
    let input: OpInput;
    if (roll < 0.25) input = { kind: "put", key, value: `v${id}` };
    else if (roll < 0.45) input = { kind: "get", key, serializable: false };
    else if (roll < 0.5) input = { kind: "get", key, serializable: true };
    else if (roll < 0.55) input = { kind: "range", prefix: "/registry/pods/", limit: 2, serializable: false };
    else if (roll < 0.65) input = { kind: "delete", key };
    else if (roll < 0.85)
      input = { kind: "cas", key, expectMod: rng.next() < 0.7 ? (cur?.mod ?? 0) : 1, value: `v${id}` };
    else if (roll < 0.9) input = { kind: "grant", ttl: 600 };
    else if (roll < 0.95 && liveLeases.length > 0)
      input = { kind: "put", key: "/registry/leases/x", value: `v${id}`, lease: rng.pick(liveLeases) };
    else if (liveLeases.length > 0) input = { kind: "revoke", lease: liveLeases.shift()! };
    else input = { kind: "get", key, serializable: false };
    const before = st.rev;
    const { output, evs } = apply(st, input, snapshots, `${++leaseNo}`);
    if (input.kind === "grant" && output.lease !== undefined) liveLeases.push(output.lease);
    if (st.rev !== before) snapshots[st.rev] = new Map(st.kvs);
    // A watch hears of a change after it was made, before the writer's answer or after.
    events.push(...evs.map((e) => ({ e, time: t + rng.int(1, 8) })));
    const unknown = opts.unknown === true && (input.kind === "put" || input.kind === "delete") && rng.next() < 0.1;
    ops.push({
      t: "op",
      id,
      client: id % 5,
      input,
      invoke: t - rng.int(0, 6),
      complete: t + rng.int(0, 6),
      ...(unknown
        ? { outcome: "unknown" as const, error: "GRPC_DEADLINE_EXCEEDED" }
        : { outcome: "ok" as const, output }),
    });
  }
  const last = t + 20;
  return {
    records: [meta(), ...ops, ...watchRecords(events, st.rev, last), ...statuses(st.rev, last), ...finals(st)],
    snapshots,
  };
}

function apply(
  st: Store,
  input: OpInput,
  snapshots: Map<string, Kv>[],
  newLease: string,
): { output: OpOutput; evs: WatchEventRec[] } {
  const m = { member: "a1" };
  const put = (key: string, value: string, lease: string): WatchEventRec => {
    const prev = st.kvs.get(key);
    st.rev++;
    const kv: Kv = { key, value, mod: st.rev, create: prev?.create ?? st.rev, ver: (prev?.ver ?? 0) + 1, lease };
    if (prev !== undefined) st.leases.get(prev.lease)?.delete(key);
    st.leases.get(lease)?.add(key);
    st.kvs.set(key, kv);
    return { type: "PUT", kv, ...(prev === undefined ? {} : { prev }) };
  };
  const del = (keys: string[]): WatchEventRec[] => {
    const live = keys.filter((k) => st.kvs.has(k));
    if (live.length > 0) st.rev++;
    return live.map((k) => {
      const prev = st.kvs.get(k)!;
      st.kvs.delete(k);
      st.leases.get(prev.lease)?.delete(k);
      return { type: "DELETE", kv: { key: k, value: "", mod: st.rev, create: 0, ver: 0, lease: "0" }, prev };
    });
  };
  switch (input.kind) {
    case "put": {
      const e = put(input.key, input.value, input.lease ?? "0");
      return { output: { ...m, rev: st.rev }, evs: [e] };
    }
    case "get": {
      // A serializable read is answered by a member two revisions behind (its revisions still never go back).
      const rev = input.serializable ? Math.max(1, st.rev - 2) : st.rev;
      const kv = (snapshots[rev] ?? st.kvs).get(input.key);
      return { output: { member: input.serializable ? "b2" : "a1", rev, kvs: kv === undefined ? [] : [kv] }, evs: [] };
    }
    case "range": {
      const all = [...st.kvs.values()]
        .filter((kv) => kv.key.startsWith(input.prefix))
        .sort((a, b) => a.key.localeCompare(b.key));
      return {
        output: {
          ...m,
          rev: st.rev,
          kvs: all.slice(0, input.limit),
          count: all.length,
          more: all.length > input.limit,
        },
        evs: [],
      };
    }
    case "delete": {
      const evs = del([input.key]);
      return { output: { ...m, rev: st.rev, deleted: evs.length }, evs };
    }
    case "cas": {
      const cur = st.kvs.get(input.key);
      if ((cur?.mod ?? 0) !== input.expectMod)
        return { output: { ...m, rev: st.rev, succeeded: false, kvs: cur === undefined ? [] : [cur] }, evs: [] };
      const e = put(input.key, input.value, "0");
      return { output: { ...m, rev: st.rev, succeeded: true }, evs: [e] };
    }
    case "grant":
      st.leases.set(newLease, new Set());
      return { output: { ...m, rev: st.rev, lease: newLease }, evs: [] };
    case "revoke": {
      const keys = [...(st.leases.get(input.lease) ?? [])].sort();
      st.leases.delete(input.lease);
      return { output: { ...m, rev: st.rev + (keys.some((k) => st.kvs.has(k)) ? 1 : 0) }, evs: del(keys) };
    }
    case "compact":
      return { output: { ...m, rev: st.rev }, evs: [] };
  }
}

function meta(): HistoryRecord {
  return {
    t: "meta",
    target: "fake",
    members: 3,
    seed: 0,
    durationMs: 0,
    faults: [],
    mix: "kube",
    prefix: "/registry/",
  };
}

/**
 * One watch from revision 1 in two streams: the first follows the changes as they happen up to half-way and
 * ends with a progress notification; the second resumes after the run from where the first stopped.
 */
function watchRecords(
  timed: readonly { e: WatchEventRec; time: number }[],
  lastRev: number,
  end: number,
): (WatchOpenRecord | WatchRecord)[] {
  const events = timed.map((x) => x.e);
  const when = new Map(timed.map((x) => [x.e, x.time]));
  const half = events[Math.floor(events.length / 2)]?.kv.mod ?? 1;
  const first = events.filter((e) => e.kv.mod < half);
  const second = events.filter((e) => e.kv.mod >= half);
  const open = (session: number, startRev: number, time: number): WatchOpenRecord => ({
    t: "watch-open",
    watch: 0,
    session,
    time,
    prefix: "/registry/",
    startRev,
    prevKv: true,
    progressNotify: true,
    reason: session === 0 ? "new" : "resume",
  });
  const resp = (session: number, time: number, rev: number, evs: WatchEventRec[], created = false): WatchRecord => ({
    t: "watch",
    watch: 0,
    session,
    time,
    member: "a1",
    rev,
    ...(created ? { created: true } : {}),
    events: evs,
  });
  // live: each response when its change happened, header = its revision; replay: late, header = the last revision.
  const batches = (session: number, evs: readonly WatchEventRec[], replayAt: number | undefined): WatchRecord[] => {
    const out: WatchRecord[] = [];
    let time = 0;
    for (let i = 0; i < evs.length; ) {
      const rev = evs[i]!.kv.mod;
      const same = evs.filter((e) => e.kv.mod === rev);
      time = Math.max(time, replayAt === undefined ? when.get(evs[i]!)! : replayAt + i);
      out.push(resp(session, time, replayAt === undefined ? rev : lastRev, same));
      i += same.length;
    }
    return out;
  };
  const lastFirst = first[first.length - 1]?.kv.mod ?? 0;
  const firstDone = Math.max(0, ...first.map((e) => when.get(e)!)) + 1;
  return [
    open(0, 1, 0),
    resp(0, 1, 1, [], true),
    ...batches(0, first, undefined),
    resp(0, firstDone, lastFirst, []),
    open(1, lastFirst + 1, end + 1),
    resp(1, end + 2, lastRev, [], true),
    ...batches(1, second, end + 3),
    resp(1, end + 3 + second.length, lastRev, []),
  ];
}

function statuses(lastRev: number, end: number): StatusRecord[] {
  return [0, 1, 2].flatMap((member) =>
    [1, Math.floor(lastRev / 2), lastRev].map((rev, i) => ({ t: "status" as const, member, time: (end / 3) * i, rev })),
  );
}

function finals(st: Store): FinalRecord[] {
  const kvs = [...st.kvs.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  return [0, 1, 2].map((member) => ({
    t: "final",
    member,
    head: st.rev,
    rev: st.rev,
    hash: 12345,
    compactRev: 0,
    kvs,
  }));
}
