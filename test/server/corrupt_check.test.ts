// Proves the corruption checks' decisions on hand-made hashes (no processes): the start-up check fails only on a
// peer with the same compact revision and another hash, skipping peers that are behind, compacted differently or
// unreachable; the leader's periodic check raises CORRUPT once for a differing hash, a follower ahead of it or
// compacted past it, and not for a follower that is behind or unreachable.
import { describe, expect, it } from "vitest";
import { EtcdError } from "../../core/errors.js";
import {
  DataInconsistencyError,
  checkHashKV,
  checkInitialHashKV,
  type CorruptCheckHost,
} from "../../core/server/corrupt_check.js";
import type { PeerHash } from "../../core/server/peer_link.js";

type Answer = PeerHash | EtcdError | Error;

function host(local: PeerHash, answers: Answer[]): CorruptCheckHost & { raised: number; logs: string[] } {
  const h = {
    raised: 0,
    logs: [] as string[],
    memberId: 0xabn,
    isLeader: true,
    hashKV: () => Promise.resolve({ ...local }),
    peers: () => answers.map((_, i) => ({ id: BigInt(i + 1), urls: [`http://127.0.0.1:${i + 1}`] })),
    fetchPeerHash: (urls: readonly string[]) => {
      const a = answers[Number(/:(\d+)$/.exec(urls[0] ?? "")?.[1]) - 1];
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a as PeerHash);
    },
    linearizableBarrier: () => Promise.resolve(),
    raiseCorrupt: () => {
      h.raised++;
      return Promise.resolve();
    },
    log: (_level: string, msg: string) => void h.logs.push(msg),
  };
  return h;
}

const local = { revision: 10, hash: 111, compactRevision: 4 };

describe("initial corruption check", () => {
  it("fails on a peer with the same compact revision and another hash", async () => {
    const h = host(local, [{ ...local }, { ...local, hash: 222 }]);
    await expect(checkInitialHashKV(h)).rejects.toThrow(new DataInconsistencyError(0xabn).message);
    expect(new DataInconsistencyError(0xabn).message).toBe("ab found data inconsistency with peers");
    expect(h.logs.some((l) => l.includes("found different hash values from remote peer"))).toBe(true);
  });

  it("passes over peers it cannot compare", async () => {
    const h = host(local, [
      { ...local, hash: 9, compactRevision: 6 },
      new EtcdError("FUTURE_REV"),
      new EtcdError("COMPACTED"),
      new Error("connection refused"),
      { ...local },
    ]);
    await checkInitialHashKV(h);
    expect(h.logs.filter((l) => l.includes("cannot check") || l.includes("failed hash kv")).length).toBe(4);
  });
});

describe("periodic corruption check", () => {
  const cases: [string, Answer[], number][] = [
    ["all equal", [{ ...local }, { ...local }], 0],
    ["a follower's hash differs", [{ ...local }, { ...local, hash: 5 }], 1],
    [
      "two followers differ: one alarm",
      [
        { ...local, hash: 6 },
        { ...local, hash: 5 },
      ],
      1,
    ],
    ["a follower ahead of the leader", [{ ...local, revision: 11 }], 1],
    ["a follower compacted past the leader", [{ ...local, compactRevision: 5, hash: 7 }], 1],
    ["a follower compacted less (another history span)", [{ ...local, compactRevision: 2, hash: 7 }], 0],
    ["a follower behind, or unreachable", [new EtcdError("FUTURE_REV"), new Error("connection refused")], 0],
  ];
  for (const [name, answers, raised] of cases) {
    it(name, async () => {
      const h = host(local, answers);
      expect(await checkHashKV(h)).toBe(raised > 0);
      expect(h.raised).toBe(raised);
    });
  }
});
