// Proves snapshot transfer: a 20 MiB body arrives whole (same sha256 on disk as sent) and is delivered once via
// onSnapshot with its MsgSnap; a body corrupted or truncated in flight is rejected by the receiver (checksum /
// missing trailer), deleted, and the sender retries and succeeds; a transfer that fails every attempt reports
// failure (ReportSnapshot) and leaves no file behind; a removed member's snapshot is refused without retries.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Message } from "../../core/raft/types.js";
import { MessageType } from "../../core/raft/types.js";
import { SNAPSHOT_ATTEMPTS } from "../../core/transport/transport_limits.js";
import { Cluster, WAIT_MS, msg, type TestNode } from "./helpers.js";

let cluster: Cluster;
afterEach(async () => {
  await cluster.cleanup();
});

const MiB = 1024 * 1024;

function snapMsg(from: bigint, to: bigint, index: number): Message {
  return msg(from, to, 0, {
    type: MessageType.Snap,
    term: 5,
    snapshot: {
      metadata: { index, term: 4, confState: { voters: [1n, 2n, 3n], learners: [4n] } },
      data: new Uint8Array([1, 2]),
    },
  });
}

/** The body in pieces of 3 MiB + change (not chunk-aligned), each iteration fresh (retries re-read it). */
function bodyOf(data: Buffer): () => AsyncIterable<Uint8Array> {
  return async function* () {
    for (let off = 0; off < data.byteLength; off += 3 * MiB + 123) yield data.subarray(off, off + 3 * MiB + 123);
  };
}

function sha(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

async function pair(): Promise<[TestNode, TestNode]> {
  const a = await cluster.node(1n);
  const b = await cluster.node(2n);
  cluster.connectAll([a, b]);
  return [a, b];
}

describe("peer transport: snapshots", () => {
  it("a 20 MiB snapshot body arrives whole, checksum verified, delivered once with its MsgSnap", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    const data = randomBytes(20 * MiB);
    a.t.sendSnapshot(snapMsg(1n, 2n, 1000), bodyOf(data));
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS * 3, "snapshot status at the sender");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: true }]);
    expect(b.snapshots.length, "delivered once").toBe(1);
    const got = b.snapshots[0];
    expect(got?.m.snapshot?.metadata).toEqual({
      index: 1000,
      term: 4,
      confState: { voters: [1n, 2n, 3n], learners: [4n] },
    });
    const onDisk = readFileSync(got?.path ?? "");
    expect(onDisk.byteLength, `${onDisk.byteLength} bytes on disk`).toBe(20 * MiB);
    expect(sha(onDisk)).toBe(sha(data));
    expect(readdirSync(dirname(got?.path ?? "")), "only the final file, no temp").toEqual(["00000000000003e8.snap.db"]);
  });

  it("a body corrupted in flight is rejected by its checksum and the retry delivers it", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    a.t.setFaults({
      snapshotChunk: (attempt, i, chunk) => {
        if (attempt !== 1 || i !== 7) return chunk;
        const bad = Buffer.from(chunk);
        bad[100] = (bad[100] ?? 0) ^ 0xff;
        return bad;
      },
    });
    const data = randomBytes(20 * MiB);
    a.t.sendSnapshot(snapMsg(1n, 2n, 7), bodyOf(data));
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS * 3, "snapshot status");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: true }]);
    const rejected = b.logs.filter((l) => l.msg === "failed to receive database snapshot");
    expect(rejected.length, "one rejected attempt").toBe(1);
    expect(String(rejected[0]?.fields?.["error"])).toMatch(/sha256 mismatch/);
    expect(b.snapshots.length, "delivered once").toBe(1);
    expect(sha(readFileSync(b.snapshots[0]?.path ?? ""))).toBe(sha(data));
    expect(
      a.logs.filter((l) => l.msg === "failed to send database snapshot to remote peer").length,
      "sender saw 1 failure",
    ).toBe(1);
    expect(a.t.networkStats().snapshots).toMatchObject({ sentOk: 1, sentFailed: 0 });
    expect(b.t.networkStats().snapshots).toMatchObject({ receivedOk: 1, receivedFailed: 1 });
  });

  it("a truncated body (no trailer) is rejected and the retry delivers it", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    a.t.setFaults({ snapshotChunk: (attempt, i, chunk) => (attempt === 1 && i === 2 ? "truncate" : chunk) });
    const data = randomBytes(4 * MiB + 5);
    a.t.sendSnapshot(snapMsg(1n, 2n, 9), bodyOf(data));
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS, "snapshot status");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: true }]);
    const rejected = b.logs.filter((l) => l.msg === "failed to receive database snapshot");
    expect(rejected.length, "one rejected attempt").toBe(1);
    expect(String(rejected[0]?.fields?.["error"])).toMatch(/truncated: the body ended after 2097152 bytes/);
    expect(sha(readFileSync(b.snapshots[0]?.path ?? ""))).toBe(sha(data));
  });

  it("a transfer failing every attempt reports failure and leaves no file", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    a.t.setFaults({ snapshotChunk: (_attempt, i, chunk) => (i === 0 ? "truncate" : chunk) });
    a.t.sendSnapshot(snapMsg(1n, 2n, 11), bodyOf(randomBytes(2 * MiB)));
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS, "snapshot status");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: false }]);
    expect(b.logs.filter((l) => l.msg === "failed to receive database snapshot").length, "every attempt rejected").toBe(
      SNAPSHOT_ATTEMPTS,
    );
    expect(b.snapshots.length).toBe(0);
    expect(a.unreachable.includes(2n), "failed snapshot also reports unreachable").toBe(true);
    expect(readdirSync(cluster.dir + "/snap-2"), "no temp files left").toEqual([]);
  });

  it("a snapshot to a peer that is down is retried, then reported failed", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    await b.t.stop();
    a.t.sendSnapshot(snapMsg(1n, 2n, 13), bodyOf(randomBytes(MiB)));
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS, "snapshot status");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: false }]);
    const failures = a.logs.filter((l) => l.msg === "failed to send database snapshot to remote peer");
    expect(
      failures.map((l) => l.fields?.["attempt"]),
      "every attempt made",
    ).toEqual([1, 2, 3].slice(0, SNAPSHOT_ATTEMPTS));
  });

  it("a body whose producer fails is abandoned at once, retried, and leaves no temp file", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    let calls = 0;
    a.t.sendSnapshot(snapMsg(1n, 2n, 14), async function* () {
      calls++;
      yield randomBytes(MiB);
      if (calls === 1) throw new Error("backend snapshot read failed");
      yield randomBytes(MiB);
    });
    // The receiver logs the failed attempt after deleting its temp file.
    const receiverGaveUp = (): boolean => b.logs.some((l) => l.msg === "failed to receive database snapshot");
    await cluster.signal.until(
      () => a.snapshotStatus.length === 1 && receiverGaveUp(),
      WAIT_MS,
      "snapshot status and the receiver's failure",
    );
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: true }]);
    expect(calls, "the body was produced twice").toBe(2);
    const failure = a.logs.find((l) => l.msg === "failed to send database snapshot to remote peer");
    expect(String(failure?.fields?.["reason"])).toMatch(/backend snapshot read failed|closed/);
    expect(readdirSync(cluster.dir + "/snap-2"), "only the final file").toEqual(["000000000000000e.snap.db"]);
  });

  it("a removed member's snapshot is refused at once, without retries", async () => {
    cluster = new Cluster();
    const [a, b] = await pair();
    b.t.removePeer(1n);
    a.t.sendSnapshot(snapMsg(1n, 2n, 12), bodyOf(randomBytes(MiB)));
    await cluster.signal.until(() => a.snapshotStatus.length === 1, WAIT_MS, "snapshot status");
    expect(a.snapshotStatus).toEqual([{ peer: 2n, ok: false }]);
    const snapshotRefusals = a.logs.filter((l) => l.msg === "failed to send database snapshot to remote peer");
    expect(snapshotRefusals.length, "one attempt, no retries").toBe(1);
    expect(String(snapshotRefusals[0]?.fields?.["reason"])).toMatch(/status 410/);
    expect(b.snapshots.length).toBe(0);
  });
});
