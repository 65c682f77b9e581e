// Proves the receiver's checks on every connection, as etcd's rafthttp: a member of another cluster is refused
// (412, "request cluster ID mismatch") and both sides report it; a removed member's stream is cut and its new
// streams refused (410, "removed member"), its messages never delivered; a peer that drops messages when the
// queue is full reports unreachable, and a bounded queue never grows past its limit while the peer is down.

import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_FRAME_BYTES, PEER_QUEUE_MSGS } from "../../core/transport/transport_limits.js";
import { Cluster, WAIT_MS, msg } from "./helpers.js";

let cluster: Cluster;
afterEach(async () => {
  await cluster.cleanup();
});

/** A loopback URL nobody listens on: bind port 0, note it, close. */
async function deadUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return `http://127.0.0.1:${addr.port}`;
}

describe("peer transport: refusals and backpressure", () => {
  it("refuses a member of another cluster; both sides report the cluster ID mismatch", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n, { clusterId: 0xaaaan });
    const b = await cluster.node(2n, { clusterId: 0xbbbbn });
    a.t.addPeer(2n, [b.url]);
    a.t.send([msg(1n, 2n, 1)]);
    await cluster.signal.until(
      () => a.refusals.length > 0 && b.refusals.length > 0,
      WAIT_MS,
      "a refusal reported on both sides",
    );
    expect(a.refusals[0]).toEqual({ peer: 2n, reason: "cluster-id-mismatch", direction: "outbound" });
    expect(b.refusals[0]).toEqual({ peer: 1n, reason: "cluster-id-mismatch", direction: "inbound" });
    const recv = b.logs.find((l) => l.msg.startsWith("request cluster ID mismatch"));
    expect(recv?.msg).toBe("request cluster ID mismatch (got aaaa want bbbb)");
    const send = a.logs.find((l) => l.msg.startsWith("request sent was ignored"));
    expect(send?.msg).toBe("request sent was ignored (cluster ID mismatch: peer[2]=bbbb, local=aaaa)");
    expect(a.unreachable.includes(2n), "refused peer reported unreachable").toBe(true);
    expect(b.received.length, "nothing delivered across clusters").toBe(0);
    expect(a.t.activePeers(), "no active stream").toEqual([]);
  });

  it("refuses the wrong receiver (X-Raft-To mismatch)", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    const b = await cluster.node(2n);
    a.t.addPeer(3n, [b.url]); // a thinks member 3 lives at b's URL
    await cluster.signal.until(() => b.refusals.length > 0 && a.refusals.length > 0, WAIT_MS, "to mismatch refusal");
    expect(b.refusals[0]).toEqual({ peer: 1n, reason: "to-mismatch", direction: "inbound" });
    expect(a.refusals[0]).toEqual({ peer: 3n, reason: "to-mismatch", direction: "outbound" });
  });

  it("cuts a removed member's stream and refuses it from then on; its messages are not delivered", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    const b = await cluster.node(2n);
    cluster.connectAll([a, b]);
    a.t.send([msg(1n, 2n, 1)]);
    await cluster.signal.until(() => b.received.length === 1, WAIT_MS, "first message");

    b.t.removePeer(1n);
    await cluster.signal.until(
      () => a.refusals.some((r) => r.reason === "member-removed"),
      WAIT_MS,
      "a told it was removed",
    );
    expect(a.refusals.find((r) => r.reason === "member-removed")).toEqual({
      peer: 2n,
      reason: "member-removed",
      direction: "outbound",
    });
    expect(
      b.refusals.some((r) => r.peer === 1n && r.reason === "member-removed" && r.direction === "inbound"),
      "b refused 1",
    ).toBe(true);
    expect(
      a.logs.some((l) => l.msg === "the member has been permanently removed from the cluster"),
      "a logged its removal",
    ).toBe(true);
    // Messages sent after the removal stay in a's queue: the next attempt is refused again, nothing gets through.
    a.t.send([msg(1n, 2n, 2), msg(1n, 2n, 3)]);
    const refusedSoFar = b.refusals.length;
    await cluster.signal.until(() => b.refusals.length > refusedSoFar, WAIT_MS, "the next attempt refused too");
    expect(a.t.peerStats(2n)?.queuedMsgs, "still queued at a").toBe(2);
    expect(
      b.received.map((m) => m.index),
      "only the message from before the removal",
    ).toEqual([1]);
    expect(b.t.activePeers(), "b no longer sends to 1").toEqual([]);
    expect(() => b.t.addPeer(1n, [a.url]), "a removed id is not added back").toThrow(/was removed/);
  });

  it("a full queue towards a down peer drops new messages and reports the peer unreachable", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    a.t.addPeer(9n, [await deadUrl()]);
    const extra = 250;
    a.t.send(Array.from({ length: PEER_QUEUE_MSGS + extra }, (_, i) => msg(1n, 9n, i + 1)));
    const stats = a.t.peerStats(9n);
    expect(stats?.queuedMsgs, `queued ${stats?.queuedMsgs}`).toBe(PEER_QUEUE_MSGS);
    expect(stats?.droppedMsgs, `dropped ${stats?.droppedMsgs}`).toBe(extra);
    const reportsFor9 = a.unreachable.filter((p) => p === 9n).length;
    expect(reportsFor9 >= extra, `${reportsFor9} unreachable reports for ${extra} drops`).toBe(true);
    expect(
      a.logs.filter((l) => l.msg.startsWith("dropped internal Raft message")).length,
      "one drop log line, not 250",
    ).toBe(1);
    // The dial failures are reported too (raft's ReportUnreachable), and the queue stays bounded.
    await cluster.signal.until(() => (a.t.peerStats(9n)?.failures ?? 0) >= 2, WAIT_MS, "two failed dials");
    expect(a.t.peerStats(9n)?.queuedMsgs, "still bounded").toBe(PEER_QUEUE_MSGS);
  });

  it("a message over the frame limit is dropped and reported, and the stream keeps carrying the rest", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    const b = await cluster.node(2n);
    cluster.connectAll([a, b]);
    const huge = msg(1n, 2n, 2, {
      entries: [{ term: 1, index: 2, type: 0, data: new Uint8Array(MAX_FRAME_BYTES + 1) }],
    });
    a.t.send([msg(1n, 2n, 1), huge, msg(1n, 2n, 3)]);
    await cluster.signal.until(() => b.received.length === 2, WAIT_MS, "the two normal messages");
    expect(b.received.map((m) => m.index)).toEqual([1, 3]);
    expect(
      a.logs.some((l) => l.msg === "dropped internal Raft message larger than the frame limit"),
      "logged",
    ).toBe(true);
    expect(a.unreachable.includes(2n), "reported unreachable").toBe(true);
    expect(a.t.peerStats(2n)?.droppedMsgs).toBe(1);
  });

  it("send() refuses MsgSnap (snapshots go through sendSnapshot) and ignores unknown peers", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n);
    expect(() => a.t.send([msg(1n, 2n, 1, { type: "MsgSnap" })])).toThrow(/sendSnapshot/);
    a.t.send([msg(1n, 77n, 1)]);
    expect(
      a.logs.some((l) => l.msg.includes("unknown remote peer")),
      "unknown target logged",
    ).toBe(true);
  });
});
