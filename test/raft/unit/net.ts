// A tiny deterministic in-test network for the Raft unit tests: RawNodes over MemoryStorage, Ready handled
// exactly as the contract says (persist → send → apply → advance), messages delivered in FIFO order, with
// optional cut links and a per-message filter. Not a fault simulator (that is test/sim).

import { MemoryStorage } from "../../../core/raft/memory_storage.js";
import { RawNode } from "../../../core/raft/raw_node.js";
import { RaftError, RaftErrorCode } from "../../../core/raft/errors.js";
import { decodeConfChange } from "../../../core/raft/conf_change.js";
import type { ConfState, Config, Entry, Message, NodeId, ReadState, Rng } from "../../../core/raft/types.js";
import { EntryType } from "../../../core/raft/types.js";

/** A small deterministic PRNG (mulberry32) for election timeouts. */
export class TestRng implements Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  nextInt(n: number): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(r * n);
  }
}

/** An Rng that always returns the same value: fixes the randomized election timeout at electionTick + v. */
export class FixedRng implements Rng {
  constructor(private readonly v: number) {}
  nextInt(n: number): number {
    return Math.min(this.v, n - 1);
  }
}

export interface TestNode {
  readonly id: NodeId;
  storage: MemoryStorage;
  raw: RawNode;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState;
}

export type NodeOptions = Partial<Omit<Config, "id" | "storage">>;

export function newTestNode(id: NodeId, storage: MemoryStorage, opts: NodeOptions = {}): TestNode {
  const raw = new RawNode({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    rng: new FixedRng(Number(id) % 10),
    ...opts,
  });
  return { id, storage, raw, applied: [], readStates: [], confState: storage.initialState().confState };
}

export class TestNet {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly queue: Message[] = [];
  /** Links cut in both directions, as "a-b" with a < b. */
  private readonly cut = new Set<string>();
  /** Return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined;
  delivered = 0;
  /** Messages addressed to ids that are not in the net (e.g. a learner that was never started). */
  undeliverable: Message[] = [];
  /** Messages the receiver refused with STEP_PEER_NOT_FOUND. */
  refused: Message[] = [];

  constructor(voters: readonly NodeId[], learners: readonly NodeId[] = [], opts: NodeOptions = {}) {
    const cs: ConfState = { voters: [...voters], learners: [...learners] };
    for (const id of [...voters, ...learners]) this.add(newTestNode(id, MemoryStorage.fromConfState(cs), opts));
  }

  add(n: TestNode): void {
    this.nodes.set(n.id, n);
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut.add(linkKey(id, other));
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(linkKey(a, b));
  }

  heal(): void {
    this.cut.clear();
  }

  /** Runs every node's Ready loop, then delivers queued messages, until the network is quiet. */
  settle(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      for (const n of this.nodes.values()) this.drain(n);
      const m = this.queue.shift();
      if (m === undefined) return;
      this.deliver(m);
    }
    throw new Error(`network did not settle within ${maxRounds} rounds`);
  }

  tick(id: NodeId, n = 1): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) {
      node.raw.tick();
      this.settle();
    }
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.raw.tick();
      this.settle();
    }
  }

  drain(n: TestNode): void {
    while (n.raw.hasReady()) {
      const rd = n.raw.ready();
      if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.queue.push(m);
      if (rd.snapshot !== undefined) n.confState = rd.snapshot.metadata.confState;
      for (const e of rd.committedEntries) {
        n.applied.push(e);
        if (e.type === EntryType.ConfChange) n.confState = n.raw.applyConfChange(decodeConfChange(e.data));
      }
      n.readStates.push(...rd.readStates);
      n.raw.advance(rd);
    }
  }

  private deliver(m: Message): void {
    if (this.cut.has(linkKey(m.from, m.to))) return;
    if (this.filter !== undefined && !this.filter(m)) return;
    const to = this.nodes.get(m.to);
    if (to === undefined) {
      this.undeliverable.push(m);
      return;
    }
    this.delivered++;
    try {
      to.raw.step(m);
    } catch (e) {
      // etcd's transport drops a response from a peer its raft no longer knows; so does this network.
      if (!(e instanceof RaftError && e.code === RaftErrorCode.StepPeerNotFound)) throw e;
      this.refused.push(m);
    }
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => n.raw.status().softState.raftState === "StateLeader")
      .map((n) => n.id);
  }
}

function linkKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function decode(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Application payloads of the normal, non-empty applied entries. */
export function appliedTexts(n: TestNode): string[] {
  return n.applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0).map((e) => decode(e.data));
}
