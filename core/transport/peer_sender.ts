// PeerSender owns the outgoing side towards one peer: a bounded FIFO of raft messages and one long-lived HTTP/2
// stream that carries them, many frames per write. The stream is opened when the peer is added and reopened with
// backoff (rotating through the peer's URLs) whenever it fails or is refused. Messages wait in the queue while
// the stream is down, so a short outage (a restart) loses only what was in flight; a full queue drops the new
// message and the transport reports the peer unreachable, as etcd's rafthttp does with its 4096-message buffer.

import type * as http2 from "node:http2";
import type { Message, NodeId } from "../raft/types.js";
import { FRAME_HEADER_BYTES, encodeFrames, encodedSize } from "./codec.js";
import type { SenderContext } from "./context.js";
import { TransportError } from "./errors.js";
import { HEADER, RefusalReason, STREAM_PATH, headerString, idToHex, requestHeaders } from "./protocol.js";
import {
  BATCH_MAX_BYTES,
  BATCH_MAX_MSGS,
  MAX_FRAME_BYTES,
  PEER_QUEUE_BYTES,
  PEER_QUEUE_MSGS,
} from "./transport_limits.js";
import { connectSession, parsePeerUrl } from "./urls.js";

export interface PeerStats {
  /** Messages waiting in the queue (not yet written to a stream). */
  readonly queuedMsgs: number;
  readonly queuedBytes: number;
  readonly sentMsgs: number;
  readonly sentBytes: number;
  /** Stream writes: sentMsgs / writes is the batching factor. */
  readonly writes: number;
  readonly droppedMsgs: number;
  readonly connects: number;
  readonly failures: number;
  /** Reconnects dialled before their backoff ran out because the peer had just dialled in (retryNow). */
  readonly earlyRetries: number;
}

export class PeerSender {
  private urls: readonly string[];
  private urlIndex = 0;
  // The queue: messages [head, queue.length) with their encoded sizes; compacted when head grows.
  private queue: Message[] = [];
  private sizes: number[] = [];
  private head = 0;
  private queuedBytes = 0;
  private session: http2.ClientHttp2Session | undefined;
  private stream: http2.ClientHttp2Stream | undefined;
  private active = false;
  private activeSinceMs: number | undefined;
  private waitingDrain = false;
  private flushScheduled = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  /** Consecutive failed attempts since the stream was last active (logs once per outage, not per retry). */
  private failuresInRow = 0;
  private lastRefusal: RefusalReason | undefined;
  private closed = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingSentAtMs: number | undefined;
  private lastRttMs: number | undefined;
  private counters = {
    sentMsgs: 0,
    sentBytes: 0,
    writes: 0,
    droppedMsgs: 0,
    connects: 0,
    failures: 0,
    earlyRetries: 0,
  };

  constructor(
    private readonly ctx: SenderContext,
    readonly id: NodeId,
    urls: readonly string[],
  ) {
    this.urls = validUrls(urls);
    this.backoffMs = ctx.timeouts.reconnectBackoffMinMs;
    this.connect();
  }

  get isActive(): boolean {
    return this.active;
  }

  /** When the current stream became active (ms since epoch), for the server's "active since" checks. */
  get activeSince(): number | undefined {
    return this.activeSinceMs;
  }

  get peerUrls(): readonly string[] {
    return this.urls;
  }

  stats(): PeerStats {
    return { ...this.counters, queuedMsgs: this.queue.length - this.head, queuedBytes: this.queuedBytes };
  }

  /** enqueue never blocks: it queues m, or drops it when the queue is full or m is larger than any frame may be. */
  enqueue(m: Message): "queued" | "full" | "too-large" {
    if (this.closed) return "full";
    const size = encodedSize(m);
    const frameBytes = FRAME_HEADER_BYTES + size;
    if (size > MAX_FRAME_BYTES) {
      this.counters.droppedMsgs++;
      return "too-large"; // the receiver would refuse the frame and cut the stream for everything behind it
    }
    if (this.queue.length - this.head >= PEER_QUEUE_MSGS || this.queuedBytes + frameBytes > PEER_QUEUE_BYTES) {
      this.counters.droppedMsgs++;
      return "full";
    }
    this.queue.push(m);
    this.sizes.push(size);
    this.queuedBytes += frameBytes;
    this.scheduleFlush();
    return "queued";
  }

  /** updateUrls replaces the peer's URLs; a stream on a URL no longer listed is reopened on the new ones. */
  updateUrls(urls: readonly string[]): void {
    const next = validUrls(urls);
    const current = this.urls[this.urlIndex % this.urls.length];
    this.urls = next;
    this.urlIndex = 0;
    if (current !== undefined && next.includes(current)) {
      this.urlIndex = next.indexOf(current);
      return;
    }
    if (this.reconnectTimer !== undefined) return; // the pending retry will use the new URLs
    const wasActive = this.active;
    this.teardown("peer URLs updated");
    if (wasActive) this.ctx.peerStatus(this.id, false);
    this.connect();
  }

  /**
   * The peer has just opened a stream to us, so it is up again: a reconnect waiting out its backoff (up to
   * reconnectBackoffMaxMs, 1 s by default, after a peer was down for a while) dials now. A restarted member otherwise heard
   * nothing from this one (heartbeats, appends) until that timer fired: ~1.9 s to serve after a 1 s restart.
   * Not after a refusal, whose long backoff is deliberate.
   */
  retryNow(): void {
    if (this.closed || this.reconnectTimer === undefined || this.lastRefusal !== undefined) return;
    clearTimeout(this.reconnectTimer);
    this.backoffMs = this.ctx.timeouts.reconnectBackoffMinMs;
    this.counters.earlyRetries++;
    this.connect();
  }

  /** close stops the sender for good; queued messages are discarded. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const wasActive = this.active;
    this.teardown("peer removed or transport stopped");
    if (wasActive) this.ctx.peerStatus(this.id, false);
    this.queue = [];
    this.sizes = [];
    this.head = 0;
    this.queuedBytes = 0;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.active) return;
    this.flushScheduled = true;
    // One flush per event-loop turn: every message queued during the turn goes out in as few writes as possible.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const stream = this.stream;
    if (!this.active || stream === undefined || this.waitingDrain) return;
    while (this.head < this.queue.length) {
      const end = this.batchEnd();
      const buf = encodeFrames(this.queue.slice(this.head, end), this.sizes.slice(this.head, end));
      this.counters.writes++;
      this.counters.sentMsgs += end - this.head;
      this.counters.sentBytes += buf.byteLength;
      this.queuedBytes -= buf.byteLength;
      this.head = end;
      this.compactQueue();
      if (!stream.write(buf)) {
        this.waitingDrain = true;
        stream.once("drain", () => {
          if (this.stream !== stream) return;
          this.waitingDrain = false;
          this.flush();
        });
        return;
      }
    }
  }

  /** The end (exclusive) of the next batch: at most BATCH_MAX_MSGS messages / BATCH_MAX_BYTES, at least one. */
  private batchEnd(): number {
    let end = this.head;
    let bytes = 0;
    while (end < this.queue.length && end - this.head < BATCH_MAX_MSGS) {
      const size = FRAME_HEADER_BYTES + (this.sizes[end] ?? 0);
      if (end > this.head && bytes + size > BATCH_MAX_BYTES) break;
      bytes += size;
      end++;
    }
    return end;
  }

  private compactQueue(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const url = this.urls[this.urlIndex % this.urls.length] ?? "";
    let session: http2.ClientHttp2Session;
    try {
      session = connectSession(parsePeerUrl(url), this.ctx.tls);
    } catch (err) {
      this.fail(undefined, "cannot dial", err);
      return;
    }
    this.counters.connects++;
    this.session = session;
    session.on("error", (err) => this.fail(session, "connection error", err));
    session.on("close", () => this.fail(session, "connection closed"));
    const req = session.request(requestHeaders(STREAM_PATH, this.ctx.memberId, this.id, this.ctx.clusterId), {
      endStream: false,
    });
    this.stream = req;
    req.on("response", (headers) => this.onResponse(session, headers));
    req.on("error", (err) => this.fail(session, "stream error", err));
    req.on("close", () => this.fail(session, "stream closed"));
    req.resume(); // a refusal's body is only for humans
    const { dialTimeoutMs } = this.ctx.timeouts;
    const dialTimer = setTimeout(() => this.fail(session, `no answer within ${dialTimeoutMs} ms`), dialTimeoutMs);
    req.once("response", () => clearTimeout(dialTimer));
    session.once("close", () => clearTimeout(dialTimer));
  }

  private onResponse(session: http2.ClientHttp2Session, headers: http2.IncomingHttpHeaders): void {
    if (session !== this.session) return;
    const status = Number(headers[":status"]);
    if (status === 200) {
      this.backoffMs = this.ctx.timeouts.reconnectBackoffMinMs;
      this.failuresInRow = 0;
      this.lastRefusal = undefined;
      this.active = true;
      this.activeSinceMs = Date.now();
      this.startPings(session);
      this.ctx.log("info", "established stream connection with remote peer", { "remote-peer-id": idToHex(this.id) });
      this.ctx.peerStatus(this.id, true);
      this.flush();
      return;
    }
    const reason = (headerString(headers, HEADER.refusal) ?? RefusalReason.BadRequest) as RefusalReason;
    this.logRefusal(reason, headers);
    this.ctx.refused(this.id, reason, "outbound");
    this.backoffMs = this.ctx.timeouts.reconnectBackoffMaxMs; // a refusal will not go away in milliseconds
    this.fail(session, `refused with status ${String(status)} (${reason})`);
  }

  private logRefusal(reason: RefusalReason, headers: http2.IncomingHttpHeaders): void {
    if (this.lastRefusal === reason) return; // once per outage and reason, not per retry
    this.lastRefusal = reason;
    const peer = idToHex(this.id);
    if (reason === RefusalReason.ClusterIdMismatch) {
      const remote = headerString(headers, HEADER.clusterId) ?? "?";
      const local = idToHex(this.ctx.clusterId);
      this.ctx.log("error", `request sent was ignored (cluster ID mismatch: peer[${peer}]=${remote}, local=${local})`, {
        "remote-peer-id": peer,
        "remote-peer-cluster-id": remote,
        "local-member-cluster-id": local,
      });
    } else if (reason === RefusalReason.MemberRemoved) {
      this.ctx.log("error", "the member has been permanently removed from the cluster", { "remote-peer-id": peer });
    } else {
      this.ctx.log("error", `request sent was ignored by remote peer (${reason})`, { "remote-peer-id": peer });
    }
  }

  /** Round trip of the last answered PING, in ms. */
  get rttMs(): number | undefined {
    return this.lastRttMs;
  }

  /** startPings checks the active stream's liveness: a PING unanswered for pingTimeoutMs fails the stream. */
  private startPings(session: http2.ClientHttp2Session): void {
    const { pingIntervalMs, pingTimeoutMs } = this.ctx.timeouts;
    this.pingSentAtMs = undefined;
    this.pingTimer = setInterval(() => {
      if (session !== this.session) return;
      const sentAt = this.pingSentAtMs;
      if (sentAt !== undefined) {
        if (Date.now() - sentAt >= pingTimeoutMs) this.fail(session, `no PING answer within ${pingTimeoutMs} ms`);
        return;
      }
      this.pingSentAtMs = Date.now();
      session.ping((err, durationMs) => {
        if (session !== this.session) return;
        this.pingSentAtMs = undefined;
        if (err === null) this.lastRttMs = durationMs;
      });
    }, pingIntervalMs);
  }

  /** fail handles a failure of `session` (ignored when it is no longer current): tear down, report, retry later. */
  private fail(session: http2.ClientHttp2Session | undefined, why: string, err?: unknown): void {
    if (this.closed || session !== this.session) return;
    const wasActive = this.active;
    this.teardown(why);
    this.counters.failures++;
    const fields = {
      "remote-peer-id": idToHex(this.id),
      reason: why,
      error: err instanceof Error ? err.message : undefined,
    };
    if (wasActive) {
      this.ctx.log("warn", "lost stream connection with remote peer", fields);
      this.ctx.peerStatus(this.id, false);
    } else if (this.failuresInRow === 0) {
      this.ctx.log("warn", "failed to dial remote peer", fields);
    }
    this.failuresInRow++;
    this.ctx.reportUnreachable(this.id);
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.reconnectTimer = setTimeout(() => this.connect(), this.backoffMs);
    this.backoffMs = Math.min(this.ctx.timeouts.reconnectBackoffMaxMs, this.backoffMs * 2);
  }

  private teardown(why: string): void {
    const session = this.session;
    const wasActive = this.active;
    this.session = undefined;
    this.stream = undefined;
    this.active = false;
    this.activeSinceMs = undefined;
    this.waitingDrain = false;
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.pingSentAtMs = undefined;
    session?.destroy();
    if (wasActive && this.closed)
      this.ctx.log("info", "closed stream connection with remote peer", {
        "remote-peer-id": idToHex(this.id),
        reason: why,
      });
  }
}

function validUrls(urls: readonly string[]): readonly string[] {
  for (const u of urls) parsePeerUrl(u);
  if (urls.length === 0) throw new TransportError("BAD_URL", "a peer needs at least one URL");
  return [...urls];
}
