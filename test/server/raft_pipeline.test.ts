// Proves the Ready loop is pipelined without giving up durability: a batch is applied only after its own WAL save
// has finished, batches are applied in log order, and the previous batch is applied while the next batch's save
// (its fdatasync) is still running.
import { describe, expect, it } from "vitest";
import { MemoryStorage, type Entry, type HardState } from "../../core/raft/index.js";
import { ServerMetrics } from "../../core/server/metrics.js";
import { RaftNode, type RaftNodeHost } from "../../core/server/raft_node.js";
import type { ServerConfig } from "../../core/server/server_config.js";
import type { WalStorage } from "../../core/wal/wal_storage.js";

const ID = 1n;
const text = (e: Entry): string => new TextDecoder().decode(e.data);

/** A WAL stand-in whose saves finish only when the test releases them, logging every step. */
class GatedWal {
  readonly log: string[] = [];
  readonly #gates: (() => void)[] = [];
  constructor(private readonly mem: MemoryStorage) {}

  saveAsync(rd: { entries: readonly Entry[]; hardState?: HardState }): Promise<void> {
    const names = rd.entries.map(text).filter((t) => t !== "");
    if (names.length === 0) return Promise.resolve(this.#persist(rd));
    this.log.push(`save-start ${names.join(",")}`);
    return new Promise((resolve) =>
      this.#gates.push(() => {
        this.log.push(`save-done ${names.join(",")}`);
        resolve(this.#persist(rd));
      }),
    );
  }

  #persist(rd: { entries: readonly Entry[]; hardState?: HardState }): void {
    this.mem.append(rd.entries);
    if (rd.hardState !== undefined) this.mem.setHardState(rd.hardState);
  }

  get waiting(): number {
    return this.#gates.length;
  }

  release(): void {
    this.#gates.shift()?.();
  }
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  if (!cond()) throw new Error("condition not reached");
}

function singleMember(): { node: RaftNode; wal: GatedWal } {
  const mem = MemoryStorage.fromConfState({ voters: [ID], learners: [] });
  const wal = new GatedWal(mem);
  const host: RaftNodeHost = {
    config: { memberId: ID } as unknown as ServerConfig,
    metrics: new ServerMetrics(),
    storage: wal as unknown as WalStorage,
    stopped: false,
    transport: undefined,
    heartbeatMs: 60_000,
    electionTicks: 10,
    onTick: () => undefined,
    fatal: (err: unknown) => {
      throw err;
    },
    onReadState: () => undefined,
    onLeadership: () => undefined,
    snapshotBody: () => {
      throw new Error("no snapshots here");
    },
    installSnapshot: () => Promise.resolve(),
    apply: (entries) => {
      const names = entries.map(text).filter((t) => t !== "");
      if (names.length > 0) wal.log.push(`apply ${names.join(",")}`);
      return Promise.resolve();
    },
    failProposal: () => undefined,
  };
  return { node: new RaftNode(host, mem, 0), wal };
}

describe("RaftNode Ready pipeline", () => {
  it("applies a batch after its own save and while the next batch is being saved", async () => {
    const { node, wal } = singleMember();
    node.startTicking();
    try {
      await node.whenLeader();
      const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
      node.enqueue(enc("p1"));
      await until(() => wal.waiting === 1);
      node.enqueue(enc("p2")); // arrives while p1's save is running
      await new Promise((r) => setImmediate(r));
      wal.release();
      await until(() => wal.waiting === 1 && wal.log.includes("apply p1"));
      expect(wal.log).toEqual(["save-start p1", "save-done p1", "save-start p2", "apply p1"]);
      wal.release();
      await until(() => wal.log.includes("apply p2"));
      expect(wal.log).toEqual([
        "save-start p1",
        "save-done p1",
        "save-start p2",
        "apply p1",
        "save-done p2",
        "apply p2",
      ]);
      await until(() => !node.processing);
    } finally {
      node.stopTicking();
    }
  });

  it("applies a lone batch as soon as it is saved, with no next Ready to wait for", async () => {
    const { node, wal } = singleMember();
    node.startTicking();
    try {
      await node.whenLeader();
      node.enqueue(new TextEncoder().encode("solo"));
      await until(() => wal.waiting === 1);
      expect(wal.log).toEqual(["save-start solo"]);
      wal.release();
      await until(() => wal.log.includes("apply solo"));
      expect(wal.log).toEqual(["save-start solo", "save-done solo", "apply solo"]);
      await until(() => !node.processing);
    } finally {
      node.stopTicking();
    }
  });
});
