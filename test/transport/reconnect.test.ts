// Proves that a peer coming back is dialled as soon as it dials in: member a's stream to b fails while b is
// down and a's reconnect backs off (50 ms doubling to 1 s by default; 10 s here); when b restarts on the same URL and opens its own
// stream to a, a dials b at once instead of waiting out the backoff (earlyRetries), and a's next message
// reaches the new b. Without it a restarted member heard nothing from the leader for up to a second.
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../harness/targets/launcher.js";
import { Cluster, WAIT_MS, msg } from "./helpers.js";

let cluster: Cluster;
afterEach(async () => {
  await cluster.cleanup();
});

describe("peer transport: reconnect", () => {
  it("dials a restarted peer as soon as it dials in, not after the backoff", async () => {
    cluster = new Cluster();
    const bUrl = `http://127.0.0.1:${await freePort()}`;
    // a's backoff: 10 s from the first failure on, so only b dialling in can bring a's stream back in this test.
    const a = await cluster.node(1n, {
      extra: { peerTimeouts: { reconnectBackoffMinMs: 10_000, reconnectBackoffMaxMs: 10_000 } },
    });
    const b1 = await cluster.node(2n, { listenUrl: bUrl });
    a.t.addPeer(2n, [bUrl]);
    b1.t.addPeer(1n, [a.url]);
    a.t.send([msg(1n, 2n, 1)]);
    await cluster.signal.until(() => b1.received.length === 1, WAIT_MS, "b received before the restart");

    await b1.t.stop();
    await cluster.signal.until(() => (a.t.peerStats(2n)?.failures ?? 0) >= 1, WAIT_MS, "a's stream to b failed");
    expect(a.t.peerStats(2n)?.earlyRetries).toBe(0);

    const b2 = await cluster.node(2n, { listenUrl: bUrl });
    b2.t.addPeer(1n, [a.url]);
    b2.t.send([msg(2n, 1n, 7)]); // b2 dials a
    await cluster.signal.until(
      () => a.received.some((m) => m.from === 2n && m.index === 7),
      WAIT_MS,
      "a received from the new b",
    );
    expect(a.t.peerStats(2n)?.earlyRetries, "a dialled b again when b dialled in").toBe(1);
    a.t.send([msg(1n, 2n, 2)]);
    await cluster.signal.until(() => b2.received.some((m) => m.index === 2), WAIT_MS, "the new b received a's message");
  });
});
