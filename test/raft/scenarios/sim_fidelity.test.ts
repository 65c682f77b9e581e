// Spec for the simulation itself, run against the real core: a seed replays identically (same Ready trace), and
// the safety checkers bite end-to-end — a core whose members grant every vote, or that forgets its vote on
// restart, is caught with `seed=N` within a few dozen seeds.
import { describe, expect, it } from "vitest";
import type { Message, RawNodeApi, Ready } from "../../../core/raft/types.js";
import type { RaftImpl, SimStorage } from "../../sim/cluster.js";
import { randomRun } from "../../sim/random_run.js";
import { raftImpl } from "./impl.js";

function traceOf(seed: number): string[] {
  const lines: string[] = [];
  randomRun(raftImpl, seed, { trace: (l) => lines.push(l) });
  return lines;
}

/** The real core, except every vote response it sends grants the vote. */
const grantsEveryVote: RaftImpl = {
  ...raftImpl,
  newRawNode(config) {
    const inner = raftImpl.newRawNode(config);
    const grant = (m: Message): Message =>
      m.type === "MsgVoteResp" || m.type === "MsgPreVoteResp" ? { ...m, reject: false } : m;
    return new Proxy(inner, {
      get(target, prop, recv) {
        if (prop === "ready")
          return (): Ready => {
            const rd = target.ready();
            return { ...rd, messages: rd.messages.map(grant) };
          };
        const v = Reflect.get(target, prop, recv) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as RawNodeApi;
  },
};

/** The real core on a disk that never persists the vote. */
const forgetsVote: RaftImpl = {
  ...raftImpl,
  bootstrapStorage(cs) {
    const s = raftImpl.bootstrapStorage(cs);
    const set = s.setHardState.bind(s);
    return Object.assign(s, {
      setHardState: (hs: Parameters<SimStorage["setHardState"]>[0]) => set({ ...hs, vote: 0n }),
    });
  },
};

function firstViolation(impl: RaftImpl, seeds: number): string | undefined {
  for (let seed = 1; seed <= seeds; seed++) {
    try {
      randomRun(impl, seed);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}

describe("the simulation", () => {
  it("replays a seed identically", () => {
    for (const seed of [3, 17, 99]) {
      const a = traceOf(seed);
      expect(a.length, `seed=${seed} trace lines`).toBeGreaterThan(100);
      expect(traceOf(seed)).toEqual(a);
    }
  });

  it("catches a core that grants every vote (two leaders in a term)", () => {
    const v = firstViolation(grantsEveryVote, 60);
    expect(v).toMatch(/seed=\d+/);
    expect(v).toMatch(
      /election safety|one vote per term|log matching|leader completeness|state machine|committed entries/,
    );
  });

  it("catches a core whose vote is not persisted across crashes", () => {
    const v = firstViolation(forgetsVote, 300);
    expect(v).toMatch(/seed=\d+/);
    expect(v).toMatch(/one vote per term|election safety/);
  });
});
