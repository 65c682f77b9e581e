// Sending one snapshot to a peer, as its own HTTP/2 request on its own connection (as etcd's snapshotSender, so
// a large body never sits in front of heartbeats): the MsgSnap frame, the body in chunks hashed with sha256 as
// they go, then the trailer with length and digest. The receiver answers 204 once the body is whole, checked,
// on disk and handed to its server; anything else is retried up to SNAPSHOT_ATTEMPTS times, except a refusal
// (cluster mismatch, removed member), which retrying cannot fix.

import * as http2 from "node:http2";
import type { Message, NodeId } from "../raft/types.js";
import { encodeMessage } from "./codec.js";
import type { SenderContext } from "./context.js";
import { HEADER, RefusalReason, SNAPSHOT_PATH, headerString, idToHex, requestHeaders } from "./protocol.js";
import { SnapFrame, sha256Hasher, snapFrameHeader, trailerFrame } from "./snapshot_frames.js";
import {
  SNAPSHOT_ATTEMPTS,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_IDLE_TIMEOUT_MS,
  SNAPSHOT_RETRY_BACKOFF_MS,
} from "./transport_limits.js";
import { connectSession, parsePeerUrl } from "./urls.js";

export interface SnapshotJob {
  readonly peer: NodeId;
  /** The peer's current URLs (read per attempt: an update between attempts is honoured). */
  readonly urls: () => readonly string[];
  readonly m: Message;
  /** A fresh iteration of the body per attempt; chunks must not be reused by the producer after being yielded. */
  readonly body: () => AsyncIterable<Uint8Array>;
  readonly signal: AbortSignal;
}

interface Outcome {
  readonly ok: boolean;
  readonly retry: boolean;
  readonly why: string;
  readonly bytes: number;
}

interface Response {
  readonly status: number;
  readonly reason: string | undefined;
  readonly body: string;
}

/** sendSnapshotWithRetry runs the attempts and says whether the peer took the snapshot. */
export async function sendSnapshotWithRetry(ctx: SenderContext, job: SnapshotJob): Promise<boolean> {
  const peer = idToHex(job.peer);
  for (let attempt = 1; attempt <= SNAPSHOT_ATTEMPTS; attempt++) {
    if (job.signal.aborted) return false;
    const urls = job.urls();
    const url = urls[(attempt - 1) % Math.max(1, urls.length)];
    if (url === undefined) return false;
    const startMs = Date.now();
    const outcome = await sendOnce(ctx, job, url, attempt).catch(
      (err: unknown): Outcome => ({
        ok: false,
        retry: true,
        why: err instanceof Error ? err.message : String(err),
        bytes: 0,
      }),
    );
    const fields = {
      "remote-peer-id": peer,
      attempt,
      index: job.m.snapshot?.metadata.index,
      bytes: outcome.bytes,
      ms: Date.now() - startMs,
    };
    if (outcome.ok) {
      ctx.log("info", "sent database snapshot to remote peer", fields);
      return true;
    }
    ctx.log("warn", "failed to send database snapshot to remote peer", { ...fields, reason: outcome.why });
    if (!outcome.retry || job.signal.aborted) return false;
    if (attempt < SNAPSHOT_ATTEMPTS) await delay(SNAPSHOT_RETRY_BACKOFF_MS * attempt, job.signal);
  }
  return false;
}

async function sendOnce(ctx: SenderContext, job: SnapshotJob, url: string, attempt: number): Promise<Outcome> {
  const session = connectSession(parsePeerUrl(url), ctx.tls);
  session.on("error", () => undefined); // surfaces as the request's error below
  const cancel = (): void => void session.destroy();
  job.signal.addEventListener("abort", cancel);
  try {
    const req = session.request(requestHeaders(SNAPSHOT_PATH, ctx.memberId, job.peer, ctx.clusterId), {
      endStream: false,
    });
    req.setTimeout(SNAPSHOT_IDLE_TIMEOUT_MS, () => req.close(http2.constants.NGHTTP2_CANCEL));
    const response = responseOf(req);
    let answered = false;
    response.then(
      () => (answered = true),
      () => (answered = true),
    );
    let bytes = 0;
    let writeError: unknown;
    try {
      bytes = await writeBody(ctx, job, req, attempt, () => answered);
    } catch (err) {
      writeError = err; // the response (if any) says more than the write error
      // The body failed (the producer threw, or the stream broke): cancel, so the receiver drops its temp file
      // and the response promise settles now instead of at the idle timeout.
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    }
    const res = await response.catch((err: unknown) => {
      throw writeError ?? err;
    });
    if (res.status === 204 || res.status === 200) return { ok: true, retry: false, why: "", bytes };
    const refused =
      res.reason === RefusalReason.ClusterIdMismatch ||
      res.reason === RefusalReason.MemberRemoved ||
      res.reason === RefusalReason.ToMismatch;
    if (refused) ctx.refused(job.peer, res.reason as RefusalReason, "outbound");
    return { ok: false, retry: !refused, why: `status ${res.status}: ${res.body || res.reason || ""}`, bytes };
  } finally {
    job.signal.removeEventListener("abort", cancel);
    session.destroy();
  }
}

/** writeBody streams the MsgSnap frame, the chunks and the trailer; returns the body bytes sent. */
async function writeBody(
  ctx: SenderContext,
  job: SnapshotJob,
  req: http2.ClientHttp2Stream,
  attempt: number,
  answered: () => boolean,
): Promise<number> {
  const msg = encodeMessage(job.m);
  await write(req, Buffer.concat([snapFrameHeader(SnapFrame.Msg, msg.byteLength), msg]));
  const hash = sha256Hasher();
  let total = 0;
  let chunkIndex = 0;
  for await (const piece of job.body()) {
    for (let off = 0; off < piece.byteLength; off += SNAPSHOT_CHUNK_BYTES) {
      if (answered()) return total; // the receiver answered early: a refusal or an error; stop sending
      const chunk = Buffer.from(
        piece.buffer,
        piece.byteOffset + off,
        Math.min(SNAPSHOT_CHUNK_BYTES, piece.byteLength - off),
      );
      hash.update(chunk);
      total += chunk.byteLength;
      const wire = ctx.faults().snapshotChunk?.(attempt, chunkIndex++, chunk) ?? chunk;
      if (wire === "truncate") {
        req.end();
        return total;
      }
      req.write(snapFrameHeader(SnapFrame.Chunk, wire.byteLength));
      await write(req, wire);
    }
  }
  req.end(trailerFrame(total, hash.digest()));
  return total;
}

/** write resolves once the stream can take more (at once when below its high-water mark). */
function write(req: http2.ClientHttp2Stream, buf: Buffer): Promise<void> {
  if (req.write(buf)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      req.off("drain", onDrain);
      req.off("close", onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new Error("stream closed while sending the snapshot"));
    req.once("drain", onDrain);
    req.once("close", onClose);
  });
}

function responseOf(req: http2.ClientHttp2Stream): Promise<Response> {
  return new Promise((resolve, reject) => {
    req.once("response", (headers) => {
      const status = Number(headers[":status"]);
      const reason = headerString(headers, HEADER.refusal);
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.once("end", () => resolve({ status, reason, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.once("error", reject);
    req.once("close", () =>
      reject(new Error(`snapshot stream closed before a response (rst code ${req.rstCode ?? "none"})`)),
    );
  });
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
