// Proves member changes survive the trip through Raft and apply deterministically: each kind encodes to etcd's
// ConfChange type + JSON context and decodes back; applying a random sequence of changes (many of them invalid)
// gives the same members on every replica, a refused change writes nothing, and what is stored reloads to
// exactly the in-memory state.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Cluster } from "../../core/membership/cluster.js";
import {
  ConfChangeKind,
  applyMemberChange,
  fromConfChange,
  toConfChange,
  type MemberChange,
} from "../../core/membership/conf_change.js";
import { MemoryView, member } from "./helpers.js";

describe("member changes as conf changes", () => {
  it("each kind round-trips with etcd's type numbers", () => {
    const changes: MemberChange[] = [
      { kind: "add", member: member(5) },
      { kind: "add", member: { ...member(6, { learner: true, started: false }), id: 0xffffffffffffffffn } },
      { kind: "remove", id: 7n },
      { kind: "update", id: 8n, peerUrls: ["http://b:1", "http://a:1"] },
      { kind: "promote", id: 9n },
    ];
    const types = changes.map((c) => toConfChange(c).type);
    expect(types).toEqual([
      ConfChangeKind.AddNode,
      ConfChangeKind.AddLearnerNode,
      ConfChangeKind.RemoveNode,
      ConfChangeKind.UpdateNode,
      ConfChangeKind.AddNode,
    ]);
    const back = changes.map((c) => fromConfChange(toConfChange(c)));
    expect(back[0]).toEqual(changes[0]);
    expect(back[1]).toEqual(changes[1]);
    expect(back[2]).toEqual(changes[2]);
    expect(back[3]).toEqual({ kind: "update", id: 8n, peerUrls: ["http://a:1", "http://b:1"] });
    expect(back[4]).toEqual(changes[4]);
  });

  it("a context for another id is refused", () => {
    const cc = toConfChange({ kind: "add", member: member(5) });
    expect(() => fromConfChange({ ...cc, nodeId: 6n })).toThrow(/carries member 5/);
  });

  const changeArb: fc.Arbitrary<MemberChange> = fc.oneof(
    fc
      .record({ n: fc.integer({ min: 1, max: 6 }), learner: fc.boolean(), port: fc.integer({ min: 1, max: 6 }) })
      .map(({ n, learner, port }) => ({
        kind: "add" as const,
        member: { ...member(n, { learner }), peerUrls: [`http://127.0.0.1:${2380 + port}`] },
      })),
    fc.integer({ min: 1, max: 6 }).map((n) => ({ kind: "remove" as const, id: BigInt(n) })),
    fc.integer({ min: 1, max: 6 }).map((n) => ({ kind: "promote" as const, id: BigInt(n) })),
    fc.record({ n: fc.integer({ min: 1, max: 6 }), port: fc.integer({ min: 1, max: 6 }) }).map(({ n, port }) => ({
      kind: "update" as const,
      id: BigInt(n),
      peerUrls: [`http://127.0.0.1:${2380 + port}`],
    })),
  );

  it("replicas applying the same committed changes agree, refusals write nothing, storage reloads exactly", () => {
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 30 }), (changes) => {
        const views = [new MemoryView(), new MemoryView()];
        const clusters = views.map((v) => Cluster.load(v));
        const outcomes: string[][] = [[], []];
        for (const c of changes) {
          const cc = toConfChange(c);
          views.forEach((view, i) => {
            const cluster = clusters[i]!;
            const before = cluster.members();
            const err = applyMemberChange(view, cluster, fromConfChange(cc));
            outcomes[i]!.push(err?.code ?? "ok");
            if (err !== undefined) {
              expect(cluster.members(), `refused ${c.kind}: memory`).toEqual(before);
              expect(Cluster.load(view).members(), `refused ${c.kind}: storage`).toEqual(before);
            }
          });
        }
        expect(outcomes[0]).toEqual(outcomes[1]);
        expect(clusters[0]!.members()).toEqual(clusters[1]!.members());
        const reloaded = Cluster.load(views[0]!);
        expect(reloaded.members()).toEqual(clusters[0]!.members());
        for (let n = 1n; n <= 6n; n++) expect(reloaded.isRemoved(n), `removed ${n}`).toBe(clusters[0]!.isRemoved(n));
        const urls = reloaded.members().flatMap((m) => m.peerUrls);
        expect(new Set(urls).size, "no peer URL held by two members").toBe(urls.length);
        expect(reloaded.learners().length).toBeLessThanOrEqual(1);
      }),
      { seed: 31, numRuns: 400 },
    );
  });
});
