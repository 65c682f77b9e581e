// Every check of a recorded history, and the report: linearizability of the KV operations (linearize.ts),
// serializable reads against the rebuilt revisions, the watch guarantees (check_watch.ts), revisions never going
// back on a member, all members equal (HashKV and contents) after the final heal, and no acknowledged write lost.
import type { History, Kv, OpRecord } from "./history.js";
import { sameKv } from "./kv_model.js";
import { linearize, observedChanges, prepareOps, type LinOp, type LinearizeResult } from "./linearize.js";
import { checkWatches, type Violation } from "./check_watch.js";
import { Timeline } from "./timeline.js";

export type { Violation } from "./check_watch.js";

export interface CheckReport {
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  readonly counts: {
    readonly ops: number;
    readonly okOps: number;
    readonly unknownOps: number;
    readonly failedOps: number;
    readonly watchEvents: number;
    readonly statuses: number;
    readonly faults: number;
  };
  readonly linearization: {
    readonly ok: boolean;
    readonly gaveUp: boolean;
    readonly steps: number;
    readonly ms: number;
    readonly lastRev: number;
  };
}

export function checkHistory(h: History, opts: { maxSteps?: number } = {}): CheckReport {
  const t0 = performance.now();
  const observed = observedChanges(h);
  const lin = linearize(prepareOps(h), {
    observed,
    ...(opts.maxSteps === undefined ? {} : { maxSteps: opts.maxSteps }),
  });
  const ms = performance.now() - t0;
  const violations: Violation[] = [];
  let timeline: Timeline | undefined;
  if (lin.ok) {
    timeline = new Timeline(lin.events);
    violations.push(...checkSerializable(h, timeline), ...checkAcknowledged(h, timeline));
  } else {
    violations.push(linearizationViolation(h, lin));
    // When only the final contents do not fit, the history before them still names what went missing.
    if (lin.stuck?.op.rec.id === -1) {
      const before = linearize(prepareOps(h, { finalRead: false }), {
        observed,
        ...(opts.maxSteps === undefined ? {} : { maxSteps: opts.maxSteps }),
      });
      if (before.ok) violations.push(...checkAcknowledged(h, new Timeline(before.events)));
    }
  }
  violations.push(...checkWatches(h, timeline), ...checkMemberRevisions(h), ...checkFinal(h));
  return {
    ok: violations.length === 0,
    violations,
    counts: {
      ops: h.ops.length,
      okOps: h.ops.filter((o) => o.outcome === "ok").length,
      unknownOps: h.ops.filter((o) => o.outcome === "unknown").length,
      failedOps: h.ops.filter((o) => o.outcome === "failed").length,
      watchEvents: h.watches.reduce((n, w) => n + w.events.length, 0),
      statuses: h.statuses.length,
      faults: h.faults.length,
    },
    linearization: { ok: lin.ok, gaveUp: lin.gaveUp, steps: lin.steps, ms, lastRev: timeline?.lastRev ?? 0 },
  };
}

const fmtKv = (kv: Kv): string =>
  `${kv.key}=${JSON.stringify(kv.value)}@${kv.mod}(c${kv.create} v${kv.ver}${kv.lease === "0" ? "" : ` lease ${kv.lease}`})`;

export function fmtOp(o: OpRecord): string {
  const i = o.input;
  const what =
    i.kind === "put"
      ? `put ${i.key}=${JSON.stringify(i.value)}${i.lease === undefined ? "" : ` lease ${i.lease}`}`
      : i.kind === "get"
        ? `get ${i.key}${i.serializable ? " serializable" : ""}`
        : i.kind === "range"
          ? `range ${i.prefix}* limit ${i.limit}${i.serializable ? " serializable" : ""}`
          : i.kind === "delete"
            ? `delete ${i.key}`
            : i.kind === "cas"
              ? `txn if mod(${i.key})==${i.expectMod} put ${JSON.stringify(i.value)} else get`
              : i.kind === "grant"
                ? `lease grant ttl ${i.ttl}`
                : i.kind === "revoke"
                  ? `lease revoke ${i.lease}`
                  : `compact ${i.rev}`;
  const out = o.output;
  const res =
    o.outcome !== "ok" || out === undefined
      ? `${o.outcome}${o.error === undefined ? "" : ` (${o.error})`}`
      : `rev ${out.rev} member ${out.member}${out.succeeded === undefined ? "" : out.succeeded ? " succeeded" : " failed-compare"}` +
        `${out.deleted === undefined ? "" : ` deleted ${out.deleted}`}${out.lease === undefined ? "" : ` id ${out.lease}`}` +
        `${out.kvs === undefined ? "" : ` -> [${out.kvs.map(fmtKv).join(", ")}]`}${out.count === undefined ? "" : ` count ${out.count} more ${String(out.more)}`}`;
  if (o.id === -1) return `the members' final contents after the heal: ${res}`;
  return `#${o.id} c${o.client} [${o.invoke.toFixed(1)}, ${o.outcome === "unknown" ? "?" : o.complete.toFixed(1)}] ${what}: ${res}`;
}

const keysOf = (op: LinOp): string[] => {
  const i = op.input;
  return i.kind === "range" ? [] : "key" in i ? [i.key] : [];
};

/**
 * linearizationViolation: the operation no extension of the longest linearizable prefix could place, the
 * operations concurrent with it, and the last ones of the prefix that touched its key: the smallest window of
 * the history that shows why.
 */
function linearizationViolation(h: History, lin: LinearizeResult): Violation {
  if (lin.gaveUp)
    return {
      check: "linearizability",
      message: `search gave up after ${lin.steps} steps (neither shown linearizable nor not)`,
      evidence: [],
    };
  const stuck = lin.stuck;
  if (stuck === undefined)
    return { check: "linearizability", message: "not linearizable (no operation could be placed first)", evidence: [] };
  const op = stuck.op;
  const keys = new Set(keysOf(op));
  const concurrent = h.ops.filter(
    (o) =>
      o.outcome !== "failed" &&
      o.id !== op.rec.id &&
      o.invoke <= op.ret &&
      (o.outcome === "unknown" || o.complete >= op.invoke),
  );
  const before = lin.order
    .filter((p) => keys.size === 0 || keysOf(p).some((k) => keys.has(k)))
    .slice(-4)
    .map((p) => p.rec);
  const state = stuck.kvs.filter((kv) => keys.size === 0 || keys.has(kv.key));
  return {
    check: "linearizability",
    message: `not linearizable: ${fmtOp(op.rec)} fits no order (model at revision ${stuck.rev}; ${lin.order.length} operations placed before it)`,
    evidence: [
      `model state of its key(s) at revision ${stuck.rev}: ${state.length === 0 ? "absent" : state.map(fmtKv).join(", ")}`,
      "last placed operations on its key(s):",
      ...before.map((o) => "  " + fmtOp(o)),
      "the operation:",
      "  " + fmtOp(op.rec),
      `operations concurrent with it (${concurrent.length}):`,
      ...concurrent.slice(0, 12).map((o) => "  " + fmtOp(o)),
    ],
  };
}

function sameList(a: readonly Kv[] | undefined, b: readonly Kv[]): boolean {
  return a !== undefined && a.length === b.length && a.every((kv, i) => sameKv(kv, b[i]));
}

/** Serializable reads may be stale but must show the store exactly as it was at their header revision. */
function checkSerializable(h: History, tl: Timeline): Violation[] {
  const out: Violation[] = [];
  for (const o of h.ops) {
    const i = o.input;
    if (o.outcome !== "ok" || o.output === undefined || !((i.kind === "get" || i.kind === "range") && i.serializable))
      continue;
    const rev = o.output.rev;
    let want: Kv[];
    if (i.kind === "get") {
      const kv = tl.kvAt(i.key, rev);
      want = kv === undefined ? [] : [kv];
    } else {
      const all = tl.rangeAt(i.prefix, rev);
      want = i.limit > 0 ? all.slice(0, i.limit) : all;
    }
    if (rev > tl.lastRev || !sameList(o.output.kvs, want)) {
      out.push({
        check: "serializable-read",
        message: `serializable read at revision ${rev} does not show the store at that revision`,
        evidence: [
          fmtOp(o),
          `expected at ${rev}: [${want.map(fmtKv).join(", ")}]${rev > tl.lastRev ? ` (the history ends at ${tl.lastRev})` : ""}`,
        ],
      });
    }
  }
  return out.slice(0, 5);
}

/** Per member: a response that began after another ended never carries a lower revision; Status polls likewise. */
function checkMemberRevisions(h: History): Violation[] {
  const out: Violation[] = [];
  const byMember = new Map<string, OpRecord[]>();
  for (const o of h.ops)
    if (o.outcome === "ok" && o.output !== undefined && o.output.member !== "") push(byMember, o.output.member, o);
  for (const [member, ops] of byMember) {
    const byComplete = [...ops].sort((a, b) => a.complete - b.complete);
    const byInvoke = [...ops].sort((a, b) => a.invoke - b.invoke);
    let j = 0;
    let max: OpRecord | undefined;
    for (const o of byInvoke) {
      while (j < byComplete.length && byComplete[j]!.complete < o.invoke) {
        const c = byComplete[j++]!;
        if (max === undefined || c.output!.rev > max.output!.rev) max = c;
      }
      if (max !== undefined && o.output!.rev < max.output!.rev) {
        out.push({
          check: "member-revision",
          message: `member ${member} answered at revision ${o.output!.rev} after answering at ${max.output!.rev}`,
          evidence: [fmtOp(max), fmtOp(o)],
        });
        break;
      }
    }
  }
  const polls = new Map<number, { time: number; rev: number }[]>();
  for (const s of h.statuses) push(polls, s.member, s);
  for (const [member, list] of polls) {
    list.sort((a, b) => a.time - b.time);
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.rev < list[i - 1]!.rev) {
        out.push({
          check: "member-revision",
          message: `member m${member}'s Status revision went back ${list[i - 1]!.rev} -> ${list[i]!.rev}`,
          evidence: [
            `t=${list[i - 1]!.time.toFixed(1)} rev ${list[i - 1]!.rev}`,
            `t=${list[i]!.time.toFixed(1)} rev ${list[i]!.rev}`,
          ],
        });
        break;
      }
    }
  }
  return out;
}

/** After the final heal every member reports the same revision, HashKV and contents. */
function checkFinal(h: History): Violation[] {
  const [first, ...rest] = h.finals;
  if (first === undefined) return [];
  const out: Violation[] = [];
  for (const f of rest) {
    if (f.head !== first.head) {
      out.push({
        check: "hashkv",
        message: `members did not converge after the final heal: m${first.member} at revision ${first.head}, m${f.member} at ${f.head}`,
        evidence: [],
      });
    }
    if (f.rev !== first.rev || f.hash !== first.hash) {
      out.push({
        check: "hashkv",
        message: `members disagree after the final heal: m${first.member} rev ${first.rev} hash ${first.hash}, m${f.member} rev ${f.rev} hash ${f.hash}`,
        evidence: [],
      });
    }
    if (!sameList(f.kvs, first.kvs)) {
      out.push({
        check: "final-state",
        message: `members' contents differ after the final heal (m${first.member} vs m${f.member})`,
        evidence: [
          `m${first.member}: ${first.kvs.map(fmtKv).join(", ")}`,
          `m${f.member}: ${f.kvs.map(fmtKv).join(", ")}`,
        ],
      });
    }
  }
  return out;
}

/**
 * checkAcknowledged: the final contents equal the rebuilt store at the final revision, and every key's last
 * acknowledged write is still visible there or overwritten by a later change.
 */
function checkAcknowledged(h: History, tl: Timeline): Violation[] {
  const out: Violation[] = [];
  for (const f of h.finals) {
    const want = tl.rangeAt("", f.rev);
    if (f.rev > tl.lastRev || !sameList(f.kvs, want)) {
      out.push({
        check: "final-state",
        message: `m${f.member}'s contents at revision ${f.rev} are not the store the history built`,
        evidence: [`got:      ${f.kvs.map(fmtKv).join(", ")}`, `expected: ${want.map(fmtKv).join(", ")}`],
      });
    }
    const finalByKey = new Map(f.kvs.map((kv) => [kv.key, kv]));
    for (const o of h.ops) {
      const i = o.input;
      if (o.outcome !== "ok" || o.output === undefined || o.output.rev > f.rev) continue;
      if (!(i.kind === "put" || (i.kind === "cas" && o.output.succeeded === true))) continue;
      const kv = finalByKey.get(i.key);
      const overwritten = tl.lastChange(i.key, f.rev) > o.output.rev;
      if ((kv === undefined || kv.mod < o.output.rev) && !overwritten) {
        out.push({
          check: "lost-write",
          message: `acknowledged write missing on m${f.member} after the final heal`,
          evidence: [fmtOp(o), `final: ${kv === undefined ? "absent" : fmtKv(kv)}`],
        });
        break;
      }
    }
  }
  return out;
}

/** formatReport renders a report as text. */
export function formatReport(r: CheckReport): string {
  const c = r.counts;
  const lines = [
    `operations ${c.ops} (ok ${c.okOps}, unknown ${c.unknownOps}, failed ${c.failedOps}), watch events ${c.watchEvents}, status polls ${c.statuses}, faults ${c.faults}`,
    `linearizability: ${r.linearization.ok ? "ok" : r.linearization.gaveUp ? "gave up" : "VIOLATED"} (${r.linearization.steps} steps, ${r.linearization.ms.toFixed(0)} ms, last revision ${r.linearization.lastRev})`,
    r.ok ? "no violations" : `${r.violations.length} violation(s):`,
  ];
  for (const v of r.violations) lines.push(`- [${v.check}] ${v.message}`, ...v.evidence.map((e) => `    ${e}`));
  return lines.join("\n");
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}
