// Watch guarantees, per logical watch (its streams chained across resumes): events in revision order, none
// twice, none missing and none invented against the reconstructed store history, prev_kv equal to the value
// before, compaction reported as etcd does (a watch from below the compacted revision is canceled with
// compact_revision, never served), a resumed stream continuing where the last one stopped, and progress
// notifications never ahead of the events delivered.
import type { History, OpRecord, WatchEventRec, WatchOpenRecord, WatchRecord } from "./history.js";
import { sameKv } from "./kv_model.js";
import type { Timeline } from "./timeline.js";

export interface Violation {
  readonly check: string;
  readonly message: string;
  /** The shortest sub-history that shows it, as readable lines. */
  readonly evidence: readonly string[];
}

interface Segment {
  readonly watch: number;
  readonly opens: WatchOpenRecord[];
  /** Every response of the segment's streams, in order. */
  readonly responses: WatchRecord[];
  readonly start: number;
  readonly prefix: string;
  readonly prevKv: boolean;
}

const fmtEvent = (e: WatchEventRec): string =>
  `${e.type} ${e.kv.key}=${JSON.stringify(e.kv.value)} @${e.kv.mod}${e.prev === undefined ? "" : ` prev=${JSON.stringify(e.prev.value)}@${e.prev.mod}`}`;
const fmtResp = (w: WatchRecord): string =>
  `t=${w.time.toFixed(1)} watch ${w.watch}/${w.session} member ${w.member} header rev ${w.rev}` +
  `${w.created === true ? " created" : ""}${w.canceled === true ? ` canceled compact_rev=${w.compactRev ?? 0}` : ""}` +
  `${w.events.length === 0 && w.created !== true && w.canceled !== true ? " progress" : ""}: ${eventsText(w.events)}`;

/** eventsText: a response's events, the first few and the last (a catch-up response can hold hundreds). */
function eventsText(events: readonly WatchEventRec[]): string {
  if (events.length <= 6) return events.map(fmtEvent).join(", ");
  return `${events.slice(0, 4).map(fmtEvent).join(", ")}, … ${events.length - 5} more …, ${fmtEvent(events[events.length - 1]!)}`;
}

/** segments groups the streams of each logical watch into runs that must be gapless (a compaction restarts one). */
function segments(h: History): Segment[] {
  const bySession = new Map<string, WatchRecord[]>();
  for (const w of h.watches) push(bySession, `${w.watch}/${w.session}`, w);
  const out: Segment[] = [];
  const opens = [...h.watchOpens].sort((a, b) => a.watch - b.watch || a.session - b.session);
  let cur: { seg: Segment; start: number } | undefined;
  for (const o of opens) {
    const responses = bySession.get(`${o.watch}/${o.session}`) ?? [];
    if (cur === undefined || cur.seg.watch !== o.watch || o.reason !== "resume") {
      const created = responses.find((r) => r.created === true);
      const start = o.startRev > 0 ? o.startRev : created === undefined ? Infinity : created.rev + 1;
      cur = { seg: { watch: o.watch, opens: [], responses: [], start, prefix: o.prefix, prevKv: o.prevKv }, start };
      out.push(cur.seg);
    }
    cur.seg.opens.push(o);
    for (const r of responses) cur.seg.responses.push(r);
  }
  return out;
}

/** checkWatches runs every watch check; without a timeline (linearization failed) only the self-contained ones. */
export function checkWatches(h: History, timeline: Timeline | undefined): Violation[] {
  const out: Violation[] = [];
  const compactions = h.ops.filter((o) => o.input.kind === "compact" && o.outcome !== "failed");
  for (const seg of segments(h)) {
    if (seg.start === Infinity) continue; // never created: nothing delivered, nothing to check
    out.push(...checkStart(seg), ...checkOrder(seg), ...checkCompaction(seg, compactions), ...checkProgress(seg));
    if (timeline !== undefined) out.push(...checkAgainstStore(seg, timeline, compactions));
  }
  return out;
}

/** Every stream delivers nothing below the revision it asked for (the created response's + 1 when "from now"). */
function checkStart(seg: Segment): Violation[] {
  const out: Violation[] = [];
  for (const o of seg.opens) {
    const resp = seg.responses.filter((r) => r.session === o.session);
    const created = resp.find((r) => r.created === true);
    const from = o.startRev > 0 ? o.startRev : created === undefined ? 0 : created.rev + 1;
    const early = resp.find((r) => r.events.some((e) => e.kv.mod < from));
    if (early !== undefined) {
      const ev = early.events.find((e) => e.kv.mod < from)!;
      out.push({
        check: "watch-start",
        message: `watch ${seg.watch}/${o.session} asked to start at revision ${from} and was sent an event at ${ev.kv.mod}`,
        evidence: [
          `t=${o.time.toFixed(1)} open watch ${seg.watch}/${o.session} from ${o.startRev === 0 ? "now" : o.startRev} (${o.reason})`,
          ...(created === undefined ? [] : [fmtResp(created)]),
          fmtResp(early),
        ],
      });
    }
  }
  return out.slice(0, 5);
}

function checkOrder(seg: Segment): Violation[] {
  const out: Violation[] = [];
  let last: { rev: number; keys: Set<string>; resp: WatchRecord } | undefined;
  for (const r of seg.responses) {
    for (const e of r.events) {
      const rev = e.kv.mod;
      if (rev < seg.start) {
        out.push({
          check: "watch-order",
          message: `watch ${seg.watch}: event at ${rev} before its start revision ${seg.start}`,
          evidence: [fmtResp(r)],
        });
      } else if (last !== undefined && rev < last.rev) {
        out.push({
          check: "watch-order",
          message: `watch ${seg.watch}: event at ${rev} after one at ${last.rev} (out of order or replayed)`,
          evidence: [fmtResp(last.resp), fmtResp(r)],
        });
      } else if (last !== undefined && rev === last.rev && last.keys.has(e.kv.key)) {
        out.push({
          check: "watch-duplicate",
          message: `watch ${seg.watch}: ${e.kv.key} at ${rev} delivered twice`,
          evidence: [fmtResp(last.resp), fmtResp(r)],
        });
      }
      if (last === undefined || rev !== last.rev) last = { rev, keys: new Set(), resp: r };
      last.keys.add(e.kv.key);
      last.resp = r;
    }
  }
  return out.slice(0, 5);
}

/**
 * The compactions a stream opened at `time` must honour: done before it was opened, and applied on the member
 * that serves it. That member had applied a compaction when its revision at the watch's creation was past the
 * revision the compaction answered at (a later write follows it in the log). A member still behind it (paused,
 * cut off) has not compacted yet: like etcd, it serves the watch from its history, or from a future start
 * revision as writes arrive.
 */
function compactedBefore(compactions: readonly OpRecord[], time: number, memberRev: number): number {
  let rev = 0;
  for (const c of compactions) {
    if (c.outcome !== "ok" || c.complete >= time || c.input.kind !== "compact") continue;
    if (c.output !== undefined && memberRev <= c.output.rev) continue;
    rev = Math.max(rev, c.input.rev);
  }
  return rev;
}

function checkCompaction(seg: Segment, compactions: readonly OpRecord[]): Violation[] {
  const out: Violation[] = [];
  const requested = new Set(compactions.map((c) => (c.input.kind === "compact" ? c.input.rev : -1)));
  for (const o of seg.opens) {
    const resp = seg.responses.filter((r) => r.session === o.session);
    const start = o.startRev > 0 ? o.startRev : seg.start;
    const cancel = resp.find((r) => r.canceled === true && (r.compactRev ?? 0) > 0);
    if (cancel !== undefined) {
      const c = cancel.compactRev ?? 0;
      if (!(start < c))
        out.push({
          check: "watch-compaction",
          message: `watch ${seg.watch}/${o.session} from ${start} canceled as compacted at ${c}, which is not above its start`,
          evidence: [fmtResp(cancel)],
        });
      if (!requested.has(c))
        out.push({
          check: "watch-compaction",
          message: `watch ${seg.watch}/${o.session} canceled with compact_revision ${c} that no compaction asked for`,
          evidence: [fmtResp(cancel)],
        });
    }
    // etcd cancels a watch from below the compacted revision before sending it any event.
    const created = resp.find((r) => r.created === true);
    const done = o.startRev > 0 ? compactedBefore(compactions, o.time, created?.rev ?? Number.POSITIVE_INFINITY) : 0;
    if (done > start) {
      const served = resp.find((r) => r.events.length > 0);
      if (served !== undefined)
        out.push({
          check: "watch-compaction",
          message: `watch ${seg.watch}/${o.session} from ${start}, opened after a compaction at ${done}, was served events instead of being canceled`,
          evidence: [fmtResp(served)],
        });
    }
  }
  return out;
}

function checkProgress(seg: Segment): Violation[] {
  const out: Violation[] = [];
  const bySession = new Map<number, WatchRecord[]>();
  for (const r of seg.responses) push(bySession, r.session, r);
  for (const resp of bySession.values()) {
    let progress: WatchRecord | undefined;
    let lastHeader: WatchRecord | undefined;
    for (const r of resp) {
      // etcd's compaction cancel carries header revision 0; only live responses are ordered.
      if (r.canceled === true) continue;
      if (lastHeader !== undefined && r.rev < lastHeader.rev)
        out.push({
          check: "watch-revision",
          message: `watch ${seg.watch}/${r.session}: header revision went back ${lastHeader.rev} -> ${r.rev}`,
          evidence: [fmtResp(lastHeader), fmtResp(r)],
        });
      lastHeader = r;
      const stale = progress === undefined ? undefined : r.events.find((e) => e.kv.mod <= progress!.rev);
      if (progress !== undefined && stale !== undefined) {
        out.push({
          check: "watch-progress",
          message: `watch ${seg.watch}/${r.session}: progress notification at ${progress.rev} was ahead of an event at ${stale.kv.mod} delivered after it`,
          evidence: [fmtResp(progress), fmtResp(r)],
        });
      }
      if (r.events.length === 0 && r.created !== true)
        progress = progress === undefined || r.rev > progress.rev ? r : progress;
    }
  }
  return out.slice(0, 5);
}

/** The highest revision a segment vouches for: its last event, or a later progress notification. */
function reached(seg: Segment): number {
  let rev = seg.start - 1;
  for (const r of seg.responses) {
    for (const e of r.events) rev = Math.max(rev, e.kv.mod);
    if (r.events.length === 0 && r.created !== true && r.canceled !== true) rev = Math.max(rev, r.rev);
  }
  return rev;
}

function checkAgainstStore(seg: Segment, tl: Timeline, compactions: readonly OpRecord[]): Violation[] {
  const out: Violation[] = [];
  const to = reached(seg);
  const want = tl.eventsIn(seg.prefix, seg.start, to);
  const got = new Map<string, { e: WatchEventRec; r: WatchRecord }>();
  for (const r of seg.responses) for (const e of r.events) got.set(`${e.kv.mod}/${e.kv.key}`, { e, r });
  const wanted = new Set<string>();
  const compactedAt = new Set(compactions.map((c) => (c.input.kind === "compact" ? c.input.rev : 0)));
  const maxCompact = Math.max(0, ...compactedAt);
  for (const w of want) {
    const k = `${w.rev}/${w.key}`;
    wanted.add(k);
    const g = got.get(k);
    const expect = `${w.type} ${w.key}=${JSON.stringify(w.kv.value)} @${w.rev}${w.prev === undefined ? "" : ` prev=${JSON.stringify(w.prev.value)}@${w.prev.mod}`}`;
    // A compaction at r drops r's tombstones: a stream started exactly there is not told of those deletes.
    const tombstoneCompacted =
      w.type === "DELETE" && compactedAt.has(w.rev) && seg.opens.some((o) => o.startRev === w.rev);
    if (g === undefined && tombstoneCompacted) continue;
    if (g === undefined) {
      out.push({
        check: "watch-gap",
        message: `watch ${seg.watch} (from ${seg.start}, reached ${to}) never delivered ${expect}`,
        evidence: nearby(seg, w.rev).concat([`expected: ${expect}`]),
      });
      continue;
    }
    if (g.e.type !== w.type || (w.type === "PUT" && !sameKv(g.e.kv, w.kv))) {
      out.push({
        check: "watch-event",
        message: `watch ${seg.watch} delivered ${fmtEvent(g.e)}, the store made ${expect}`,
        evidence: [fmtResp(g.r), `expected: ${expect}`],
      });
    } else if (seg.prevKv) {
      // etcd reads prev_kv at rev-1 when sending; a compaction may have removed it by then.
      const missingOk = g.e.prev === undefined && maxCompact >= w.rev - 1;
      if (!missingOk && !sameKv(g.e.prev, w.prev))
        out.push({
          check: "watch-prev-kv",
          message: `watch ${seg.watch}: prev_kv of ${w.key}@${w.rev} wrong`,
          evidence: [fmtResp(g.r), `expected: ${expect}`],
        });
    }
  }
  for (const [k, g] of got) {
    // Events below the start are the start and order checks' finding; counting them here again adds nothing.
    if (!wanted.has(k) && g.e.kv.mod >= seg.start && g.e.kv.mod <= to)
      out.push({
        check: "watch-phantom",
        message: `watch ${seg.watch} delivered ${fmtEvent(g.e)}, which the store never made`,
        evidence: [fmtResp(g.r)],
      });
  }
  return out.slice(0, 10);
}

/** nearby: the segment's responses around revision rev (the sub-history that shows a gap). */
function nearby(seg: Segment, rev: number): string[] {
  const i = seg.responses.findIndex(
    (r) => r.events.some((e) => e.kv.mod >= rev) || (r.events.length === 0 && r.created !== true && r.rev >= rev),
  );
  const from = Math.max(0, (i < 0 ? seg.responses.length : i) - 2);
  return seg.responses.slice(from, from + 4).map(fmtResp);
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}
