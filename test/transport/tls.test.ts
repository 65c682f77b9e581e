// Proves the TLS seam of the peer transport: with `tls` options, https:// and unixs:// peer URLs carry messages
// and snapshots over mutually authenticated TLS (certificates made by openssl in a temp dir), and a peer whose
// client certificate another CA signed never gets a message through (its dials fail and it reports unreachable).

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MessageType } from "../../core/raft/types.js";
import type { TransportTls } from "../../core/transport/transport.js";
import { Cluster, WAIT_MS, msg } from "./helpers.js";
import { type MemberCert, type PeerPki, makePeerPki } from "../../harness/pki.js";

let pki: PeerPki;
let cluster: Cluster;
beforeAll(() => {
  pki = makePeerPki();
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  await cluster.cleanup();
});

/** A member's TLS options: its certificate both ways, and trust in the good CA only. */
function memberTls(own: MemberCert): TransportTls {
  const trust = pki.good.ca;
  return {
    server: { cert: own.cert, key: own.key, ca: trust, requestCert: true, rejectUnauthorized: true },
    client: { cert: own.cert, key: own.key, ca: trust },
  };
}

describe("peer transport: TLS", () => {
  it("https:// and unixs:// peers exchange messages and a snapshot over mutual TLS", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n, { listenUrl: "https://127.0.0.1:0", extra: { tls: memberTls(pki.good) } });
    const b = await cluster.node(2n, {
      listenUrl: `unixs://${join(cluster.dir, "b.sock")}`,
      extra: { tls: memberTls(pki.good) },
    });
    expect(a.url.startsWith("https://127.0.0.1:"), a.url).toBe(true);
    cluster.connectAll([a, b]);
    a.t.send(Array.from({ length: 200 }, (_, i) => msg(1n, 2n, i + 1)));
    b.t.send(Array.from({ length: 200 }, (_, i) => msg(2n, 1n, i + 1)));
    await cluster.signal.until(
      () => a.received.length === 200 && b.received.length === 200,
      WAIT_MS,
      "200 messages each way",
    );
    expect(b.received.map((m) => m.index)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const snap = msg(1n, 2n, 0, {
      type: MessageType.Snap,
      snapshot: {
        metadata: { index: 3, term: 1, confState: { voters: [1n, 2n], learners: [] } },
        data: new Uint8Array(),
      },
    });
    const body = randomBytes(3 * 1024 * 1024);
    a.t.sendSnapshot(snap, async function* () {
      yield body;
    });
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS, "snapshot status");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: true }]);
    expect(readFileSync(b.snapshots[0]?.path ?? "").equals(body), "snapshot bytes equal").toBe(true);
  });

  it("a peer with a client certificate of another CA gets nothing through", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n, { listenUrl: "https://127.0.0.1:0", extra: { tls: memberTls(pki.good) } });
    const rogue = await cluster.node(3n, { listenUrl: "https://127.0.0.1:0", extra: { tls: memberTls(pki.foreign) } });
    rogue.t.addPeer(1n, [a.url]);
    rogue.t.send([msg(3n, 1n, 1)]);
    await cluster.signal.until(() => (rogue.t.peerStats(1n)?.failures ?? 0) >= 2, WAIT_MS, "two failed dials");
    expect(rogue.unreachable.includes(1n), "rogue reports 1 unreachable").toBe(true);
    expect(rogue.t.activePeers()).toEqual([]);
    expect(a.received.length, "nothing delivered").toBe(0);
  });
});
