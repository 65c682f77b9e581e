// `npm run bench -- raft [--seconds S] [--batches 64,1024] [--entry-bytes 256]`: throughput of the pure Raft core.
// A 3-member cluster of RawNodes over MemoryStorage in one process, messages delivered synchronously, each
// loop turn proposing one batch on the leader and draining every Ready. Measures committed entries/s (applied
// on the leader) and messages/s; writes results/<timestamp>-raft/raft.csv and prints a table.

import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "csv-stringify/sync";
import { MemoryStorage } from "../../core/raft/memory_storage.js";
import { RawNode } from "../../core/raft/raw_node.js";
import type { Message, NodeId, Rng } from "../../core/raft/types.js";

interface BenchNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  readonly raw: RawNode;
  applied: number;
}

interface Row {
  readonly batch_entries: number;
  readonly entry_bytes: number;
  readonly seconds: number;
  readonly committed_entries: number;
  readonly committed_entries_per_s: number;
  readonly messages: number;
  readonly messages_per_s: number;
  readonly mib_per_s: number;
  /** The machine's 1-minute load average when the setting finished (other work skews the numbers). */
  readonly loadavg_1m: number;
}

/** Keep this many entries below the applied index when compacting storage (bounds memory in long runs). */
const KEEP_ENTRIES = 10_000;
const COMPACT_EVERY_ENTRIES = 200_000;

class CounterRng implements Rng {
  private n = 0;
  nextInt(k: number): number {
    this.n = (this.n * 1103515245 + 12345) % 2147483648;
    return this.n % k;
  }
}

function makeCluster(): BenchNode[] {
  const ids = [1n, 2n, 3n];
  const cs = { voters: ids, learners: [] };
  return ids.map((id) => {
    const storage = MemoryStorage.fromConfState(cs);
    const raw = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      rng: new CounterRng(),
      maxInflightMsgs: 256,
    });
    return { id, storage, raw, applied: 0 };
  });
}

/** Drains every node's Ready and delivers all messages until quiet; returns the messages delivered. */
function pump(nodes: readonly BenchNode[], byId: ReadonlyMap<NodeId, BenchNode>): number {
  let delivered = 0;
  for (;;) {
    let inbox: Message[] = [];
    for (const n of nodes) {
      while (n.raw.hasReady()) {
        const rd = n.raw.ready();
        if (rd.entries.length > 0) n.storage.append(rd.entries);
        if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
        for (const m of rd.messages) inbox.push(m);
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last !== undefined) n.applied = last.index;
        n.raw.advance(rd);
      }
    }
    if (inbox.length === 0) return delivered;
    delivered += inbox.length;
    const batch = inbox;
    inbox = [];
    for (const m of batch) byId.get(m.to)?.raw.step(m);
  }
}

function maybeCompact(nodes: readonly BenchNode[], lastCompact: number): number {
  const minApplied = Math.min(...nodes.map((n) => n.applied));
  if (minApplied - lastCompact < COMPACT_EVERY_ENTRIES) return lastCompact;
  const to = minApplied - KEEP_ENTRIES;
  for (const n of nodes) if (to > n.storage.firstIndex()) n.storage.compact(to);
  return minApplied;
}

function runSetting(batch: number, entryBytes: number, seconds: number): Row {
  const nodes = makeCluster();
  const byId = new Map(nodes.map((n) => [n.id, n] as const));
  const leader = nodes[0]!;
  leader.raw.campaign();
  pump(nodes, byId);
  if (leader.raw.status().softState.raftState !== "StateLeader") throw new Error("bench: node 1 did not become leader");
  const payload = new Uint8Array(entryBytes).fill(7);
  const datas = new Array<Uint8Array>(batch).fill(payload);
  const startApplied = leader.applied;
  let messages = 0;
  let lastCompact = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let turns = 0;
  while ((turns & 15) !== 0 || performance.now() < deadline) {
    leader.raw.proposeBatch(datas);
    messages += pump(nodes, byId);
    lastCompact = maybeCompact(nodes, lastCompact);
    turns++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  const committed = leader.applied - startApplied;
  return {
    batch_entries: batch,
    entry_bytes: entryBytes,
    seconds: round(elapsed, 3),
    committed_entries: committed,
    committed_entries_per_s: Math.round(committed / elapsed),
    messages,
    messages_per_s: Math.round(messages / elapsed),
    mib_per_s: round((committed * entryBytes) / elapsed / (1024 * 1024), 1),
    loadavg_1m: round(loadavg()[0] ?? 0, 2),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function flag(args: readonly string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

export async function run(args: string[]): Promise<string> {
  const seconds = Number(flag(args, "--seconds", "3"));
  const entryBytes = Number(flag(args, "--entry-bytes", "256"));
  const batches = flag(args, "--batches", "1,64,1024").split(",").map(Number);
  const rows: Row[] = [];
  runSetting(64, entryBytes, 0.5); // warm-up: JIT the hot paths before measuring
  for (const b of batches) rows.push(runSetting(b, entryBytes, seconds));
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, "-")
    .replace(/-\d{3}Z$/, "Z");
  const dir = join(resolve("results"), `${stamp}-raft`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "raft.csv"), stringify(rows, { header: true }));
  console.log("batch  entry_B  committed/s  messages/s  MiB/s  load1m");
  for (const r of rows) {
    console.log(
      `${String(r.batch_entries).padStart(5)}  ${String(r.entry_bytes).padStart(7)}  ${String(r.committed_entries_per_s).padStart(11)}  ${String(r.messages_per_s).padStart(10)}  ${String(r.mib_per_s).padStart(5)}  ${String(r.loadavg_1m).padStart(6)}`,
    );
  }
  return dir;
}
