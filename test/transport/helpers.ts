// Test support for core/transport: transports on loopback (port 0) or unix sockets in a temp dir, with every
// callback recorded, and waits that wake on those callbacks (never on timers) with a bounded timeout.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Message, NodeId } from "../../core/raft/types.js";
import { MessageType } from "../../core/raft/types.js";
import { PeerTransport, type RefusalReason, type TransportOptions } from "../../core/transport/transport.js";

/** Signal wakes waiters whenever something they may be waiting for happened. */
export class Signal {
  private waiters = new Set<() => void>();
  notify(): void {
    for (const w of [...this.waiters]) w();
  }
  /** until resolves once `pred()` holds (checked now and at every notify), or rejects after timeoutMs. */
  until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown> | undefined;
}

export interface TestNode {
  readonly id: NodeId;
  readonly t: PeerTransport;
  readonly received: Message[];
  readonly snapshots: { m: Message; path: string }[];
  readonly unreachable: NodeId[];
  readonly snapshotStatus: { peer: NodeId; ok: boolean }[];
  readonly peerStatus: { peer: NodeId; active: boolean }[];
  readonly refusals: { peer: NodeId; reason: RefusalReason; direction: "inbound" | "outbound" }[];
  readonly logs: LogLine[];
  readonly url: string;
}

/** Cluster owns every transport and temp dir a test makes; cleanup() stops and removes them all. */
export class Cluster {
  readonly signal = new Signal();
  readonly dir = mkdtempSync(join(tmpdir(), "etcd-ts-transport-"));
  private readonly nodes: TestNode[] = [];

  async node(
    id: NodeId,
    opts: { clusterId?: bigint; listenUrl?: string; extra?: Partial<TransportOptions> } = {},
  ): Promise<TestNode> {
    const rec = {
      received: [] as Message[],
      snapshots: [] as { m: Message; path: string }[],
      unreachable: [] as NodeId[],
    };
    const snapshotStatus: TestNode["snapshotStatus"] = [];
    const peerStatus: TestNode["peerStatus"] = [];
    const refusals: TestNode["refusals"] = [];
    const logs: LogLine[] = [];
    const s = this.signal;
    const t = new PeerTransport({
      memberId: id,
      clusterId: opts.clusterId ?? 0xc105n,
      listenUrls: [opts.listenUrl ?? "http://127.0.0.1:0"],
      snapshotDir: join(this.dir, `snap-${id}`),
      onMessage: (m) => (rec.received.push(m), s.notify()),
      onSnapshot: (m, path) => (rec.snapshots.push({ m, path }), s.notify()),
      onUnreachable: (peer) => (rec.unreachable.push(peer), s.notify()),
      onSnapshotStatus: (peer, ok) => (snapshotStatus.push({ peer, ok }), s.notify()),
      onPeerStatus: (peer, active) => (peerStatus.push({ peer, active }), s.notify()),
      onRefused: (peer, reason, direction) => (refusals.push({ peer, reason, direction }), s.notify()),
      logger: (level, msg, fields) => (logs.push({ level, msg, fields }), s.notify()),
      ...opts.extra,
    });
    await t.start();
    const url = t.boundUrls[0] ?? "";
    const node: TestNode = { id, t, ...rec, snapshotStatus, peerStatus, refusals, logs, url };
    this.nodes.push(node);
    return node;
  }

  /** connect makes every node a peer of every other. */
  connectAll(nodes: readonly TestNode[]): void {
    for (const a of nodes) for (const b of nodes) if (a !== b) a.t.addPeer(b.id, [b.url]);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.t.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A MsgApp-shaped message numbered by `index` (tests check order by it). */
export function msg(from: NodeId, to: NodeId, index: number, extra: Partial<Message> = {}): Message {
  return {
    type: MessageType.App,
    to,
    from,
    term: 1,
    logTerm: 1,
    index,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...extra,
  };
}

export const WAIT_MS = 10_000;
