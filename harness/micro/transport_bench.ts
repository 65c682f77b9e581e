// Throughput of the peer transport alone: two PeerTransports in one process on loopback (or unix sockets), one
// sending MsgApp messages as fast as its bounded queue takes them, the other counting what onMessage delivers.
// Both ends share one thread, so the numbers are per process for encode + HTTP/2 + decode together.
// Standalone: `npm run build && node dist/harness/micro/transport_bench.js [--seconds 2] [--unix]`; exported as
// runTransportThroughput for harness/micro.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argv } from "node:process";
import { pathToFileURL } from "node:url";
import type { Entry, Message, MessageType as MessageTypeT } from "../../core/raft/types.js";
import { MessageType } from "../../core/raft/types.js";
import { encodedSize } from "../../core/transport/codec.js";
import { PeerTransport } from "../../core/transport/transport.js";
import { PEER_QUEUE_BYTES, PEER_QUEUE_MSGS } from "../../core/transport/transport_limits.js";

export interface ThroughputSetting {
  readonly entriesPerMsg: number;
  readonly entryBytes: number;
}

export interface ThroughputRow extends ThroughputSetting {
  readonly seconds: number;
  readonly msgsPerSec: number;
  readonly entriesPerSec: number;
  readonly mibPerSec: number;
  /** CPU time of the process during the window (both ends, all threads): the per-CPU rates hold on a busy machine. */
  readonly cpuSeconds: number;
  readonly msgsPerCpuSec: number;
  readonly mibPerCpuSec: number;
  /** Messages per stream write at the sender (the batching factor). */
  readonly msgsPerWrite: number;
  readonly dropped: number;
}

export const DEFAULT_SETTINGS: readonly ThroughputSetting[] = [
  { entriesPerMsg: 0, entryBytes: 0 }, // heartbeat-sized
  { entriesPerMsg: 1, entryBytes: 256 },
  { entriesPerMsg: 16, entryBytes: 1024 },
  { entriesPerMsg: 64, entryBytes: 4096 },
];

function appMsg(index: number, entries: readonly Entry[]): Message {
  return {
    type: MessageType.App,
    to: 2n,
    from: 1n,
    term: 3,
    logTerm: 3,
    index,
    entries,
    commit: index,
    reject: false,
    rejectHint: 0,
  };
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function runSetting(
  sender: PeerTransport,
  counter: { msgs: number; entries: number; bytes: number },
  s: ThroughputSetting,
  seconds: number,
): Promise<ThroughputRow> {
  const data = Buffer.alloc(s.entryBytes, 0x61);
  const entries: Entry[] = Array.from({ length: s.entriesPerMsg }, (_, i) => ({
    term: 3,
    index: i + 1,
    type: 0,
    data,
  }));
  const msgBytes = encodedSize(appMsg(0, entries)) + 4;
  // Start from an empty pipe: what the previous setting left queued must not count for this one.
  while ((sender.peerStats(2n)?.queuedMsgs ?? 0) > 0 || counter.msgs < (sender.peerStats(2n)?.sentMsgs ?? 0))
    await turn();
  const before = { ...counter };
  const statsBefore = sender.peerStats(2n);
  const startMs = performance.now();
  const cpuStart = process.cpuUsage();
  let index = 0;
  // Keep the queue about half full: the stream is never idle and the queue never overflows.
  while (performance.now() - startMs < seconds * 1000) {
    const stats = sender.peerStats(2n);
    const roomByBytes = Math.floor((PEER_QUEUE_BYTES / 2 - (stats?.queuedBytes ?? 0)) / msgBytes);
    const room = Math.min(256, PEER_QUEUE_MSGS / 2 - (stats?.queuedMsgs ?? 0), roomByBytes);
    const batch: Message[] = [];
    for (let i = 0; i < room; i++) batch.push(appMsg(++index, entries));
    sender.send(batch);
    await turn();
  }
  const elapsedS = (performance.now() - startMs) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const statsAfter = sender.peerStats(2n);
  const msgs = counter.msgs - before.msgs;
  const writes = (statsAfter?.writes ?? 0) - (statsBefore?.writes ?? 0);
  const sentMsgs = (statsAfter?.sentMsgs ?? 0) - (statsBefore?.sentMsgs ?? 0);
  return {
    ...s,
    seconds: Number(elapsedS.toFixed(2)),
    msgsPerSec: Math.round(msgs / elapsedS),
    entriesPerSec: Math.round((counter.entries - before.entries) / elapsedS),
    mibPerSec: Number(((counter.bytes - before.bytes) / elapsedS / (1024 * 1024)).toFixed(1)),
    cpuSeconds: Number(cpuS.toFixed(2)),
    msgsPerCpuSec: Math.round(msgs / cpuS),
    mibPerCpuSec: Number(((counter.bytes - before.bytes) / cpuS / (1024 * 1024)).toFixed(1)),
    msgsPerWrite: Number((sentMsgs / Math.max(1, writes)).toFixed(1)),
    dropped: (statsAfter?.droppedMsgs ?? 0) - (statsBefore?.droppedMsgs ?? 0),
  };
}

/** runTransportThroughput measures each setting for `seconds` over loopback TCP (or unix sockets). */
export async function runTransportThroughput(
  opts: { seconds?: number; unix?: boolean; settings?: readonly ThroughputSetting[] } = {},
): Promise<ThroughputRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-transport-bench-"));
  const url = (n: number): string => (opts.unix === true ? `unix://${join(dir, `m${n}.sock`)}` : "http://127.0.0.1:0");
  const counter = { msgs: 0, entries: 0, bytes: 0 };
  const common = { clusterId: 0xbe7cn, onSnapshot: () => undefined };
  const a = new PeerTransport({
    ...common,
    memberId: 1n,
    listenUrls: [url(1)],
    snapshotDir: join(dir, "a"),
    onMessage: () => undefined,
  });
  const b = new PeerTransport({
    ...common,
    memberId: 2n,
    listenUrls: [url(2)],
    snapshotDir: join(dir, "b"),
    onMessage: (m) => {
      counter.msgs++;
      counter.entries += m.entries.length;
      for (const e of m.entries) counter.bytes += e.data.byteLength;
    },
  });
  try {
    await a.start();
    await b.start();
    a.addPeer(2n, b.boundUrls);
    const rows: ThroughputRow[] = [];
    for (const s of opts.settings ?? DEFAULT_SETTINGS) {
      await runSetting(a, counter, s, 0.3); // warm-up: connection, JIT
      rows.push(await runSetting(a, counter, s, opts.seconds ?? 2));
    }
    return rows;
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface LatencyRow {
  readonly rounds: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

/**
 * runTransportLatency measures one heartbeat round trip at a time (1 → 2, 2 answers 2 → 1): the latency a raft
 * commit pays per hop on an idle link (the flush waits for the end of the event-loop turn, by design).
 */
export async function runTransportLatency(opts: { rounds?: number; unix?: boolean } = {}): Promise<LatencyRow> {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-transport-lat-"));
  const url = (n: number): string => (opts.unix === true ? `unix://${join(dir, `m${n}.sock`)}` : "http://127.0.0.1:0");
  let answered: (() => void) | undefined;
  const common = { clusterId: 0xbe7cn, onSnapshot: () => undefined };
  const hb = (from: bigint, to: bigint, type: MessageTypeT): Message => ({ ...appMsg(0, []), type, from, to });
  const a = new PeerTransport({
    ...common,
    memberId: 1n,
    listenUrls: [url(1)],
    snapshotDir: join(dir, "a"),
    onMessage: () => answered?.(),
  });
  const b: PeerTransport = new PeerTransport({
    ...common,
    memberId: 2n,
    listenUrls: [url(2)],
    snapshotDir: join(dir, "b"),
    onMessage: () => b.send([hb(2n, 1n, MessageType.HeartbeatResp)]),
  });
  try {
    await a.start();
    await b.start();
    a.addPeer(2n, b.boundUrls);
    b.addPeer(1n, a.boundUrls);
    const rounds = opts.rounds ?? 5000;
    const us: number[] = [];
    for (let i = 0; i < rounds + 200; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        answered = resolve;
        a.send([hb(1n, 2n, MessageType.Heartbeat)]);
      });
      if (i >= 200) us.push((performance.now() - t0) * 1000); // the first 200 warm up
    }
    us.sort((x, y) => x - y);
    const at = (q: number): number => Math.round(us[Math.min(us.length - 1, Math.floor(q * us.length))] ?? 0);
    return { rounds, p50Us: at(0.5), p99Us: at(0.99), maxUs: Math.round(us[us.length - 1] ?? 0) };
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const secondsAt = argv.indexOf("--seconds");
  const seconds = secondsAt >= 0 ? Number(argv[secondsAt + 1]) : 2;
  const unix = argv.includes("--unix");
  const rows = await runTransportThroughput({ seconds, unix });
  console.log(`transport throughput, ${unix ? "unix socket" : "loopback TCP"}, one process, ${seconds} s per setting`);
  console.table(rows);
  console.log("heartbeat round trip (one at a time), microseconds");
  console.table([await runTransportLatency({ unix })]);
}

if (argv[1] !== undefined && import.meta.url === pathToFileURL(argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
