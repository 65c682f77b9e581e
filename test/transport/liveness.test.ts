// Proves dead-peer detection: a peer that accepts connections but never answers the stream request is given up
// on after the dial timeout; and on an established stream, a peer process that freezes (SIGSTOP) keeps its TCP
// connection open but stops answering HTTP/2 PINGs; the sender fails the stream within the ping timeout, reports
// the peer unreachable and inactive.
// The peer is a tiny plain-JS HTTP/2 server in a child process (it accepts any stream with 200, as a transport).

import { type ChildProcess, spawn } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Cluster, WAIT_MS, msg } from "./helpers.js";

const PEER_SCRIPT = `
const http2 = require("node:http2");
const srv = http2.createServer();
srv.on("stream", (s) => { s.respond({ ":status": 200 }); s.resume(); });
srv.listen(0, "127.0.0.1", () => process.stdout.write(String(srv.address().port) + "\\n"));
`;

let cluster: Cluster;
let child: ChildProcess | undefined;
afterEach(async () => {
  child?.kill("SIGKILL");
  child = undefined;
  await cluster.cleanup();
});

function startPeer(): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, ["-e", PEER_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.stdout?.once("data", (d: Buffer) => resolve({ proc, url: `http://127.0.0.1:${d.toString().trim()}` }));
  });
}

describe("peer transport: liveness", () => {
  it("a peer that accepts the connection but never answers the stream is given up on after the dial timeout", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n, { extra: { peerTimeouts: { dialTimeoutMs: 300 } } });
    const silent = http2.createServer();
    const held: http2.ServerHttp2Stream[] = [];
    silent.on("stream", (s) => held.push(s)); // never responds
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      a.t.addPeer(2n, [`http://127.0.0.1:${(silent.address() as AddressInfo).port}`]);
      await cluster.signal.until(() => a.unreachable.includes(2n), WAIT_MS, "the silent peer reported unreachable");
      const failed = a.logs.find((l) => l.msg === "failed to dial remote peer");
      expect(String(failed?.fields?.["reason"])).toBe("no answer within 300 ms");
      expect(held.length >= 1, `${held.length} streams reached the silent peer`).toBe(true);
      expect(a.t.activePeers()).toEqual([]);
    } finally {
      await a.t.stop();
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it("a frozen peer's stream fails on the PING timeout and is reported unreachable", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n, { extra: { peerTimeouts: { pingIntervalMs: 100, pingTimeoutMs: 500 } } });
    const peer = await startPeer();
    child = peer.proc;
    a.t.addPeer(2n, [peer.url]);
    await cluster.signal.until(() => a.t.activePeers().length === 1, WAIT_MS, "stream to the peer active");
    a.t.send([msg(1n, 2n, 1)]);

    peer.proc.kill("SIGSTOP");
    await cluster.signal.until(
      () => a.peerStatus.some((s) => s.peer === 2n && !s.active),
      WAIT_MS,
      "stream failed after the peer froze",
    );
    const lost = a.logs.find((l) => l.msg === "lost stream connection with remote peer");
    expect(String(lost?.fields?.["reason"])).toMatch(/no PING answer within 500 ms/);
    expect(a.unreachable.includes(2n), "frozen peer reported unreachable").toBe(true);
    expect(a.t.activePeers(), "no active peer").toEqual([]);
  });
});
