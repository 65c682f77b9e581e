// Raft's safety properties as incremental checkers, fed by the simulator after every step: election safety,
// log matching, leader completeness, state-machine safety, commit monotonic, applied ≤ committed, and one vote
// per term. Each violation throws an InvariantViolation whose message carries `seed=N` and the virtual time.
import type { Entry, HardState, NodeId } from "../../core/raft/types.js";

export class InvariantViolation extends Error {
  constructor(
    readonly seed: number,
    readonly invariant: string,
    detail: string,
  ) {
    super(`seed=${seed} invariant "${invariant}" violated: ${detail}`);
    this.name = "InvariantViolation";
  }
}

/** A short identity of an entry's payload (type + bytes), comparable with ===. */
export function entryKey(e: Entry): string {
  let s = `${e.type}:`;
  const d = e.data;
  for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i] as number);
  return s;
}

interface CommittedEntry {
  readonly term: number;
  /** The lowest term of a member seen holding it committed: an upper bound on the term that committed it. */
  readonly knownByTerm: number;
}

interface NodeTrack {
  commit: number;
  applied: number;
  persistedTerm: number;
  persistedVote: NodeId;
  persistedCommit: number;
  /** Leader term this node was last seen leading in, and how far leader completeness was verified. */
  leaderTerm: number;
  verifiedUpTo: number;
}

/** Reads a node's persisted log: the term at an index, or undefined when compacted or absent. */
export type TermAt = (index: number) => number | undefined;

export class SafetyChecker {
  /** term → the leader of that term. */
  private readonly leaders = new Map<number, NodeId>();
  /** "index:term" → the term of the entry before it and the payload (log matching). */
  private readonly entryIds = new Map<string, { prevTerm: number | undefined; key: string }>();
  /** index → the committed entry (index 0 unused). */
  private readonly committed: (CommittedEntry | undefined)[] = [];
  /** index → payload every member must apply there. */
  private readonly appliedKeys: (string | undefined)[] = [];
  private readonly nodes = new Map<NodeId, NodeTrack>();
  now = 0;

  constructor(readonly seed: number) {}

  private fail(invariant: string, detail: string): never {
    throw new InvariantViolation(this.seed, invariant, `${detail} (t=${this.now})`);
  }

  private track(id: NodeId): NodeTrack {
    let t = this.nodes.get(id);
    if (t === undefined) {
      t = {
        commit: 0,
        applied: 0,
        persistedTerm: 0,
        persistedVote: 0n,
        persistedCommit: 0,
        leaderTerm: 0,
        verifiedUpTo: 0,
      };
      this.nodes.set(id, t);
    }
    return t;
  }

  /** A node (re)starts from persisted state: its in-memory commit and applied restart from what was saved. */
  onRestart(id: NodeId, hs: HardState, appliedIndex: number): void {
    const t = this.track(id);
    t.commit = hs.commit;
    t.applied = appliedIndex;
    t.leaderTerm = 0;
    t.verifiedUpTo = 0;
  }

  /** Election safety: at most one leader per term, ever. */
  onLeader(id: NodeId, term: number): void {
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id)
      this.fail("election safety", `term ${term} has two leaders: ${prev} and ${id}`);
    this.leaders.set(term, id);
    const t = this.track(id);
    if (t.leaderTerm !== term) {
      t.leaderTerm = term;
      t.verifiedUpTo = 0;
    }
  }

  onStepDown(id: NodeId): void {
    this.track(id).leaderTerm = 0;
  }

  leaderOf(term: number): NodeId | undefined {
    return this.leaders.get(term);
  }

  /** Persisted hard state: term never decreases, one vote per term, commit never decreases. */
  onPersistHardState(id: NodeId, hs: HardState): void {
    const t = this.track(id);
    if (hs.term < t.persistedTerm)
      this.fail("term monotonic", `node ${id} persisted term ${hs.term} < ${t.persistedTerm}`);
    if (hs.term === t.persistedTerm && t.persistedVote !== 0n && hs.vote !== t.persistedVote) {
      this.fail("one vote per term", `node ${id} voted ${t.persistedVote} then ${hs.vote} in term ${hs.term}`);
    }
    if (hs.commit < t.persistedCommit) {
      this.fail("commit monotonic", `node ${id} persisted commit ${hs.commit} < ${t.persistedCommit}`);
    }
    t.persistedTerm = hs.term;
    t.persistedVote = hs.vote;
    t.persistedCommit = hs.commit;
  }

  /** Log matching, checked as entries are persisted: an (index, term) pair names one entry with one predecessor,
   *  everywhere and forever; terms never decrease along a log. `prevTerm` is the term before entries[0]. */
  onAppend(id: NodeId, entries: readonly Entry[], prevTerm: number | undefined): void {
    let prev = prevTerm;
    let prevIndex = (entries[0]?.index ?? 1) - 1;
    for (const e of entries) {
      if (e.index !== prevIndex + 1)
        this.fail("log contiguous", `node ${id} appended index ${e.index} after ${prevIndex}`);
      if (prev !== undefined && e.term < prev) {
        this.fail("log terms monotonic", `node ${id} entry ${e.index} has term ${e.term} < previous term ${prev}`);
      }
      const k = `${e.index}:${e.term}`;
      const key = entryKey(e);
      const seen = this.entryIds.get(k);
      if (seen === undefined) {
        this.entryIds.set(k, { prevTerm: prev, key });
      } else {
        if (seen.key !== key) this.fail("log matching", `node ${id} entry ${k} payload differs from an earlier copy`);
        if (seen.prevTerm !== undefined && prev !== undefined && seen.prevTerm !== prev) {
          this.fail(
            "log matching",
            `node ${id} entry ${k} follows term ${prev}, another copy follows term ${seen.prevTerm}`,
          );
        }
        if (seen.prevTerm === undefined && prev !== undefined) this.entryIds.set(k, { prevTerm: prev, key });
      }
      prev = e.term;
      prevIndex = e.index;
    }
  }

  /** A node's commit index moved to `commit` while at `term`; `termAt` reads its persisted log. */
  onCommit(id: NodeId, commit: number, term: number, termAt: TermAt): void {
    const t = this.track(id);
    if (commit < t.commit) this.fail("commit monotonic", `node ${id} commit went from ${t.commit} to ${commit}`);
    for (let i = t.commit + 1; i <= commit; i++) {
      const ti = termAt(i);
      if (ti === undefined) continue; // compacted into a snapshot: nothing to compare
      const c = this.committed[i];
      if (c === undefined) {
        this.committed[i] = { term: ti, knownByTerm: term };
      } else if (c.term !== ti) {
        this.fail(
          "committed entries agree",
          `node ${id} committed index ${i} with term ${ti}, another member with term ${c.term}`,
        );
      } else if (term < c.knownByTerm) {
        this.committed[i] = { term: ti, knownByTerm: term };
      }
    }
    t.commit = commit;
  }

  /** State machine safety: every member applies the same payload at an index, in order, never past commit. */
  onApply(id: NodeId, e: Entry): void {
    const t = this.track(id);
    if (e.index !== t.applied + 1)
      this.fail("apply in order", `node ${id} applied index ${e.index} after ${t.applied}`);
    if (e.index > t.commit) this.fail("applied ≤ committed", `node ${id} applied ${e.index} > commit ${t.commit}`);
    const key = `${e.term}|${entryKey(e)}`;
    const seen = this.appliedKeys[e.index];
    if (seen === undefined) this.appliedKeys[e.index] = key;
    else if (seen !== key)
      this.fail("state machine safety", `node ${id} applied a different entry at index ${e.index}`);
    const c = this.committed[e.index];
    if (c !== undefined && c.term !== e.term) {
      this.fail("state machine safety", `node ${id} applied term ${e.term} at ${e.index}, committed term is ${c.term}`);
    }
    t.applied = e.index;
  }

  /** A node restored its state machine from a snapshot at `index` (which must be committed somewhere). */
  onApplySnapshot(id: NodeId, index: number, term: number): void {
    const t = this.track(id);
    if (index < t.applied)
      this.fail("applied monotonic", `node ${id} restored snapshot ${index} below applied ${t.applied}`);
    const c = this.committed[index];
    if (c !== undefined && c.term !== term)
      this.fail("snapshot safety", `node ${id} snapshot at ${index} term ${term}, committed ${c.term}`);
    t.applied = index;
    if (t.commit < index) t.commit = index;
  }

  /** Leader completeness: a leader of term T holds every entry known committed by a term below T. */
  checkLeader(id: NodeId, termAt: TermAt, firstIndex: number): void {
    const t = this.track(id);
    if (t.leaderTerm === 0) return;
    for (let i = Math.max(t.verifiedUpTo + 1, 1); i < this.committed.length; i++) {
      const c = this.committed[i];
      if (c === undefined) {
        t.verifiedUpTo = i; // committed only inside snapshots so far: nothing to compare
        continue;
      }
      if (c.knownByTerm >= t.leaderTerm) return; // maybe committed in this term or later: look again next step
      if (i >= firstIndex) {
        const lt = termAt(i);
        if (lt !== c.term) {
          this.fail(
            "leader completeness",
            `leader ${id} of term ${t.leaderTerm} has term ${lt} at committed index ${i} (term ${c.term})`,
          );
        }
      }
      t.verifiedUpTo = i;
    }
  }

  appliedIndexOf(id: NodeId): number {
    return this.track(id).applied;
  }

  committedCount(): number {
    return this.committed.length - 1;
  }

  maxLeaderTerm(): number {
    let m = 0;
    for (const term of this.leaders.keys()) m = Math.max(m, term);
    return m;
  }
}
