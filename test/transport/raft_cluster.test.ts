// Proves the transport carries a real Raft cluster: three RawNodes (core/raft) over three PeerTransports on
// loopback elect one leader and replicate proposals to every member in the same order; a member cut off with the
// transport's injectable faults while the leader compacts its log catches up after healing through a snapshot
// sent with sendSnapshot (body whole, stepped in via onSnapshot, reported with onSnapshotStatus).

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStorage } from "../../core/raft/memory_storage.js";
import { RawNode } from "../../core/raft/raw_node.js";
import type { Message, NodeId, Rng } from "../../core/raft/types.js";
import { EntryType, MessageType, SnapshotStatus } from "../../core/raft/types.js";
import { Cluster, type TestNode } from "./helpers.js";

/** 50 ms ticks, election after 10–20 ticks: slow enough that a loaded CI machine does not cause elections. */
const TICK_MS = 50;
const WAIT_MS = 20_000;
const IDS = [1n, 2n, 3n] as const;

class SeqRng implements Rng {
  constructor(private n: number) {}
  nextInt(k: number): number {
    this.n = (this.n * 1103515245 + 12345) % 2147483648;
    return this.n % k;
  }
}

interface Member {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  readonly raw: RawNode;
  node: TestNode | undefined;
  lead: NodeId;
  appliedIndex: number;
  applied: string[];
}

let cluster: Cluster;
let ticker: NodeJS.Timeout | undefined;
afterEach(async () => {
  clearInterval(ticker);
  await cluster.cleanup();
});

function drain(mem: Member): void {
  while (mem.raw.hasReady()) {
    const rd = mem.raw.ready();
    if (rd.softState !== undefined) mem.lead = rd.softState.lead;
    if (rd.snapshot !== undefined) {
      mem.storage.applySnapshot(rd.snapshot);
      mem.applied = JSON.parse(Buffer.from(rd.snapshot.data).toString()) as string[];
      mem.appliedIndex = rd.snapshot.metadata.index;
    }
    mem.storage.append(rd.entries);
    if (rd.hardState !== undefined) mem.storage.setHardState(rd.hardState);
    const t = mem.node?.t;
    for (const m of rd.messages) {
      if (m.type !== MessageType.Snap) continue;
      const body = m.snapshot?.data ?? new Uint8Array();
      t?.sendSnapshot(m, async function* () {
        yield body;
      });
    }
    t?.send(rd.messages.filter((m) => m.type !== MessageType.Snap));
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.Normal && e.data.byteLength > 0) mem.applied.push(Buffer.from(e.data).toString());
      mem.appliedIndex = e.index;
    }
    mem.raw.advance(rd);
  }
  cluster.signal.notify();
}

function step(mem: Member, m: Message): void {
  try {
    mem.raw.step(m);
  } catch {
    return; // a response from a peer raft does not know: etcd's server ignores it too
  }
  drain(mem);
}

async function startMembers(): Promise<Member[]> {
  const members = IDS.map((id): Member => {
    const storage = MemoryStorage.fromConfState({ voters: [...IDS], learners: [] });
    const raw = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      rng: new SeqRng(Number(id) * 7919),
      checkQuorum: true,
      preVote: true,
    });
    return { id, storage, raw, node: undefined, lead: 0n, appliedIndex: 0, applied: [] };
  });
  for (const mem of members) {
    mem.node = await cluster.node(mem.id, {
      extra: {
        onMessage: (m) => step(mem, m),
        onSnapshot: (m, path) => {
          expect(readFileSync(path).equals(Buffer.from(m.snapshot?.data ?? [])), "snapshot body equals its data").toBe(
            true,
          );
          mem.node?.snapshots.push({ m, path });
          step(mem, m);
        },
        onUnreachable: (peer) => mem.raw.reportUnreachable(peer),
        onSnapshotStatus: (peer, ok) => {
          mem.node?.snapshotStatus.push({ peer, ok });
          mem.raw.reportSnapshot(peer, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
          drain(mem);
        },
      },
    });
  }
  cluster.connectAll(members.map((m) => m.node as TestNode));
  ticker = setInterval(() => {
    for (const mem of members) {
      mem.raw.tick();
      drain(mem);
    }
  }, TICK_MS);
  return members;
}

async function leaderOf(members: readonly Member[]): Promise<Member> {
  await cluster.signal.until(
    () => members.every((m) => m.lead !== 0n && m.lead === members[0]?.lead),
    WAIT_MS,
    "one leader all agree on",
  );
  const leader = members.find((m) => m.id === m.lead);
  if (leader === undefined) throw new Error(`no member is the leader ${members[0]?.lead}`);
  return leader;
}

function propose(leader: Member, from: number, n: number): string[] {
  const datas = Array.from({ length: n }, (_, i) => `put-${from + i}`);
  leader.raw.proposeBatch(datas.map((d) => Buffer.from(d)));
  drain(leader);
  return datas;
}

describe("peer transport under a Raft cluster", () => {
  it("elects a leader, replicates in order, and catches a cut-off member up by snapshot", async () => {
    cluster = new Cluster();
    const members = await startMembers();
    const leader = await leaderOf(members);
    const first = propose(leader, 0, 200);
    await cluster.signal.until(
      () => members.every((m) => m.applied.length === 200),
      WAIT_MS,
      "200 entries applied everywhere",
    );
    for (const m of members) expect(m.applied, `member ${m.id}`).toEqual(first);

    // Cut one follower off in both directions with the transport's faults.
    const lagging = members.find((m) => m !== leader) as Member;
    const cut = {
      dropOutgoing: (x: Message) => x.to === lagging.id || x.from === lagging.id,
      dropIncoming: (x: Message) => x.to === lagging.id || x.from === lagging.id,
    };
    for (const m of members) m.node?.t.setFaults(cut);
    const second = propose(leader, 200, 100);
    const others = members.filter((m) => m !== lagging);
    await cluster.signal.until(
      () => others.every((m) => m.applied.length === 300),
      WAIT_MS,
      "300 applied on the connected pair",
    );
    expect(lagging.applied.length, "the cut-off member is behind").toBe(200);

    // Compact the leader's log past what the lagging member has, then heal: only a snapshot can catch it up.
    leader.storage.createSnapshot(leader.appliedIndex, undefined, Buffer.from(JSON.stringify(leader.applied)));
    leader.storage.compact(leader.appliedIndex);
    for (const m of members) m.node?.t.setFaults({});
    await cluster.signal.until(
      () => lagging.applied.length === 300 && (leader.node?.snapshotStatus.length ?? 0) > 0,
      WAIT_MS,
      "the lagging member catches up and the leader hears the snapshot's outcome",
    );
    expect(lagging.applied).toEqual([...first, ...second]);
    expect(lagging.node?.snapshots.length, "caught up through a snapshot").toBe(1);
    expect(leader.node?.snapshotStatus).toEqual([{ peer: lagging.id, ok: true }]);
  });
});
