// Proves message delivery over real HTTP/2 on loopback: three transports exchanging messages all arrive, each in
// its sender's order, batched many per write; a peer that stops and starts again on the same port is reconnected
// to and messages flow again; unix:// peer URLs work the same as http://; updatePeer moves a stream to new URLs.

import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Message, NodeId } from "../../core/raft/types.js";
import { MessageType } from "../../core/raft/types.js";
import { Cluster, WAIT_MS, msg, type TestNode } from "./helpers.js";

let cluster: Cluster;
afterEach(async () => {
  await cluster.cleanup();
});

function fromSender(received: readonly Message[], from: NodeId): number[] {
  return received.filter((m) => m.from === from).map((m) => m.index);
}

function range(lo: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => lo + i);
}

async function exchange(nodes: readonly TestNode[], perPair: number): Promise<void> {
  // Interleave sends so every stream is busy at once; several send() calls per turn exercise batching.
  for (let i = 0; i < perPair; i += 50) {
    for (const a of nodes) {
      const batch: Message[] = [];
      for (const b of nodes)
        if (a !== b) for (let k = i; k < Math.min(perPair, i + 50); k++) batch.push(msg(a.id, b.id, k + 1));
      a.t.send(batch);
    }
  }
  const total = perPair * (nodes.length - 1);
  await cluster.signal.until(
    () => nodes.every((n) => n.received.length >= total),
    WAIT_MS,
    `${total} messages at each node`,
  );
}

describe("peer transport: delivery", () => {
  it("three transports exchange messages, all delivered in per-sender order", async () => {
    cluster = new Cluster();
    const nodes = [await cluster.node(1n), await cluster.node(2n), await cluster.node(3n)];
    cluster.connectAll(nodes);
    const perPair = 2000;
    await exchange(nodes, perPair);
    for (const n of nodes) {
      expect(n.received.length, `node ${n.id} got ${n.received.length}`).toBe(perPair * 2);
      for (const other of nodes) {
        if (other === n) continue;
        expect(fromSender(n.received, other.id), `node ${n.id} from ${other.id}`).toEqual(range(1, perPair));
      }
      const stats = n.t.peerStats(n.id === 1n ? 2n : 1n);
      expect(stats?.sentMsgs, `sent ${stats?.sentMsgs}`).toBe(perPair);
      expect(stats?.droppedMsgs, `dropped ${stats?.droppedMsgs}`).toBe(0);
      expect((stats?.writes ?? 0) < perPair, `batched: ${stats?.writes} writes for ${perPair} messages`).toBe(true);
      const net = n.t.networkStats();
      for (const p of net.peers) {
        expect([p.receivedMsgs, p.sentMsgs, p.active], `node ${n.id} ↔ ${p.id} counters`).toEqual([
          perPair,
          perPair,
          true,
        ]);
        expect(p.receivedBytes > perPair * 20, `${p.receivedBytes} bytes received from ${p.id}`).toBe(true);
      }
      for (const o of nodes)
        if (o !== n) expect(n.t.activeSince(o.id) !== undefined, `node ${n.id} active since for ${o.id}`).toBe(true);
      expect(n.t.activePeers().sort(), `node ${n.id} active peers`).toEqual(
        nodes.filter((o) => o !== n).map((o) => o.id),
      );
    }
  });

  it("carries entries, snapshot metadata and context intact", async () => {
    cluster = new Cluster();
    const [a, b] = [await cluster.node(1n), await cluster.node(2n)];
    cluster.connectAll([a, b]);
    const data = Buffer.alloc(300_000, 7);
    const m = msg(1n, 2n, 41, {
      type: MessageType.Heartbeat,
      entries: [
        { term: 3, index: 42, type: 0, data },
        { term: 3, index: 43, type: 1, data: new Uint8Array([1, 2, 3]) },
      ],
      commit: 40,
      reject: true,
      rejectHint: 17,
      context: new Uint8Array([9, 9]),
    });
    a.t.send([m]);
    await cluster.signal.until(() => b.received.length === 1, WAIT_MS, "one message");
    const got = b.received[0];
    expect(got?.type).toBe(MessageType.Heartbeat);
    expect(got?.entries.map((e) => [e.term, e.index, e.type, e.data.byteLength])).toEqual([
      [3, 42, 0, 300_000],
      [3, 43, 1, 3],
    ]);
    expect(Buffer.from(got?.entries[0]?.data ?? []).equals(data), "300 KB entry bytes equal").toBe(true);
    expect([got?.commit, got?.reject, got?.rejectHint, [...(got?.context ?? [])]]).toEqual([40, true, 17, [9, 9]]);
  });

  it("a peer that restarts on the same port is reconnected to, and messages flow again", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    const b1 = await cluster.node(2n);
    cluster.connectAll([a, b1]);
    a.t.send([msg(1n, 2n, 1)]);
    await cluster.signal.until(() => b1.received.length === 1, WAIT_MS, "first message");

    await b1.t.stop();
    await cluster.signal.until(
      () => a.peerStatus.some((s) => s.peer === 2n && !s.active),
      WAIT_MS,
      "a sees the stream to 2 lost",
    );
    expect(a.t.activePeers(), "no active peer while 2 is down").toEqual([]);

    const b2 = await cluster.node(2n, { listenUrl: b1.url });
    expect(b2.url, "same URL").toBe(b1.url);
    b2.t.addPeer(1n, [a.url]);
    await cluster.signal.until(
      () => a.peerStatus.filter((s) => s.peer === 2n && s.active).length === 2,
      WAIT_MS,
      "stream to 2 active again",
    );
    expect(a.unreachable.includes(2n), `the lost stream reported 2 unreachable (${a.unreachable.length} reports)`).toBe(
      true,
    );
    a.t.send(range(2, 100).map((i) => msg(1n, 2n, i)));
    await cluster.signal.until(() => b2.received.length === 100, WAIT_MS, "100 messages after the restart");
    expect(b2.received.map((m) => m.index)).toEqual(range(2, 100));
    expect((a.t.peerStats(2n)?.connects ?? 0) >= 2, `connects ${a.t.peerStats(2n)?.connects}`).toBe(true);
  });

  it("messages sent while the peer is down wait in the queue and arrive after it comes back", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    const b1 = await cluster.node(2n);
    cluster.connectAll([a, b1]);
    await cluster.signal.until(() => a.t.activePeers().length === 1, WAIT_MS, "stream to 2 active");
    await b1.t.stop();
    await cluster.signal.until(() => a.peerStatus.some((s) => !s.active), WAIT_MS, "stream to 2 lost");
    a.t.send(range(1, 300).map((i) => msg(1n, 2n, i)));
    expect(a.t.peerStats(2n)?.queuedMsgs, "queued while down").toBe(300);
    const b2 = await cluster.node(2n, { listenUrl: b1.url });
    await cluster.signal.until(() => b2.received.length === 300, WAIT_MS, "300 queued messages delivered");
    expect(b2.received.map((m) => m.index)).toEqual(range(1, 300));
  });

  it("works over unix:// peer URLs", async () => {
    cluster = new Cluster();
    const nodes = [
      await cluster.node(1n, { listenUrl: `unix://${join(cluster.dir, "m1.sock")}` }),
      await cluster.node(2n, { listenUrl: `unix://${join(cluster.dir, "m2.sock")}` }),
      await cluster.node(3n, { listenUrl: `unix://${join(cluster.dir, "m3.sock")}` }),
    ];
    expect(nodes[0]?.url).toBe(`unix://${join(cluster.dir, "m1.sock")}`);
    cluster.connectAll(nodes);
    await exchange(nodes, 500);
    for (const n of nodes)
      for (const o of nodes)
        if (o !== n) expect(fromSender(n.received, o.id), `${n.id} from ${o.id}`).toEqual(range(1, 500));
  });

  it("updatePeer moves the stream to the peer's new URL", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    const b1 = await cluster.node(2n);
    a.t.addPeer(2n, [b1.url]);
    await cluster.signal.until(() => a.t.activePeers().length === 1, WAIT_MS, "stream to 2 active");
    await b1.t.stop();
    const b2 = await cluster.node(2n, { listenUrl: `unix://${join(cluster.dir, "moved.sock")}` });
    a.t.updatePeer(2n, [b2.url]);
    a.t.send([msg(1n, 2n, 5)]);
    await cluster.signal.until(() => b2.received.length === 1, WAIT_MS, "message at the new URL");
    expect(b2.received[0]?.index).toBe(5);
  });
});
