// PeerTransport carries raft messages between the members of one cluster over HTTP/2 (etcd 3.4's rafthttp, in
// its own wire format): per peer, one long-lived stream of length-prefixed message frames with a bounded queue
// in front of it; snapshots as separate requests on their own connections; on every request the sender's member
// id and cluster id, checked by the receiver. The server owns raft: the transport only delivers (onMessage, in
// per-sender order), and tells raft what it learned (onUnreachable → ReportUnreachable, onSnapshotStatus →
// ReportSnapshot).

import { mkdir, rm } from "node:fs/promises";
import * as http2 from "node:http2";
import type * as net from "node:net";
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";
import { FrameParser, decodeMessage, encodedSize } from "./codec.js";
import type { Logger, PeerTimeouts, SenderContext, TransportFaults } from "./context.js";
import { TransportError } from "./errors.js";
import { type PeerHttpHandler, serveHandler } from "./peer_http.js";
import { PeerSender, type PeerStats } from "./peer_sender.js";
import {
  HEADER,
  RefusalReason,
  SNAPSHOT_PATH,
  STREAM_PATH,
  hexToId,
  headerString,
  idToHex,
  refusalOf,
} from "./protocol.js";
import { receiveSnapshot } from "./snapshot_receiver.js";
import { sendSnapshotWithRetry } from "./snapshot_sender.js";
import {
  MAX_FRAME_BYTES,
  PEER_PING_INTERVAL_MS,
  PEER_PING_TIMEOUT_MS,
  RECONNECT_BACKOFF_MAX_MS,
  RECONNECT_BACKOFF_MIN_MS,
  STREAM_DIAL_TIMEOUT_MS,
} from "./transport_limits.js";
import { type PeerServer, type PeerTarget, type TransportTls, createPeerServer, parsePeerUrl } from "./urls.js";

export type { Logger, PeerTimeouts, TransportFaults } from "./context.js";
export type { PeerStats } from "./peer_sender.js";
export {
  type PeerHttpHandler,
  type PeerHttpRequest,
  type PeerHttpResponse,
  type PeerReply,
  peerRequest,
} from "./peer_http.js";
export type { RefusalReason } from "./protocol.js";
export type { TransportTls } from "./urls.js";

export interface TransportOptions {
  readonly memberId: NodeId;
  readonly clusterId: bigint;
  /** Peer listen URLs: http://127.0.0.1:port, unix://path (as etcd accepts "unix://"/"unixs://"); port 0 picks one. */
  readonly listenUrls: readonly string[];
  /** Where received snapshot bodies are written (temp file, then renamed). */
  readonly snapshotDir: string;
  /** Every received raft message, in per-sender order. */
  readonly onMessage: (m: Message) => void;
  /** A MsgSnap whose body arrived whole and checksummed, at bodyPath. */
  readonly onSnapshot: (m: Message, bodyPath: string) => void;
  /** raft's ReportUnreachable. */
  readonly onUnreachable?: (peer: NodeId) => void;
  /** raft's ReportSnapshot. */
  readonly onSnapshotStatus?: (peer: NodeId, ok: boolean) => void;
  readonly logger?: Logger;
  /** A peer's outgoing stream became active (true) or was lost (false). */
  readonly onPeerStatus?: (peer: NodeId, active: boolean) => void;
  /**
   * A request was refused: "outbound" when a peer refused ours (a peer of another cluster, or one that knows this
   * member as removed: the server should then stop itself), "inbound" when this member refused a peer's.
   */
  readonly onRefused?: (peer: NodeId, reason: RefusalReason, direction: "inbound" | "outbound") => void;
  /** TLS for https:// and unixs:// URLs (the security work fills it in); http:// and unix:// are plaintext h2c. */
  readonly tls?: TransportTls;
  /** Injectable faults for tests and experiments; also settable later with setFaults(). */
  readonly faults?: TransportFaults;
  /**
   * Extra endpoints on the peer listener by exact path (etcd serves /members and /version there); they are not
   * subject to the member/cluster header checks, since a joining member does not know the cluster id yet.
   */
  readonly httpHandlers?: Readonly<Record<string, PeerHttpHandler>>;
  /** Liveness: pings of active streams (every 1666 ms, fail after 5 s unanswered), dial timeout (5 s). */
  readonly peerTimeouts?: Partial<PeerTimeouts>;
}

export interface PeerNetworkStats {
  readonly id: NodeId;
  readonly active: boolean;
  readonly sentMsgs: number;
  readonly sentBytes: number;
  /** Failed or lost streams (etcd_network_peer_sent_failures_total counts per message; this counts per stream). */
  readonly sentFailures: number;
  readonly droppedMsgs: number;
  /** Round trip of the last PING on the peer's stream (etcd_network_peer_round_trip_time_seconds). */
  readonly rttMs: number | undefined;
  readonly receivedMsgs: number;
  readonly receivedBytes: number;
}

export interface NetworkStats {
  readonly peers: readonly PeerNetworkStats[];
  readonly snapshots: {
    readonly sentOk: number;
    readonly sentFailed: number;
    readonly receivedOk: number;
    readonly receivedFailed: number;
  };
  /** Inbound peer connections refused by the TLS checks since start. */
  readonly rejectedConnections: number;
}

interface Listener {
  readonly target: PeerTarget;
  readonly server: PeerServer;
  url: string;
}

const noLog: Logger = () => undefined;

export class PeerTransport {
  private readonly opts: TransportOptions;
  private readonly log: Logger;
  private readonly ctx: SenderContext;
  private readonly peers = new Map<NodeId, PeerSender>();
  private readonly removed = new Set<NodeId>();
  private readonly warnedUnknown = new Set<NodeId>();
  private readonly listeners: Listener[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** The live incoming message stream of each sender (a newer one replaces an older one). */
  private readonly inbound = new Map<NodeId, http2.ServerHttp2Stream>();
  /** Bytes and messages received per sender (etcd_network_peer_received_bytes_total). */
  private readonly received = new Map<NodeId, { msgs: number; bytes: number }>();
  private readonly snapshotCounters = { sentOk: 0, sentFailed: 0, receivedOk: 0, receivedFailed: 0 };
  private snapshotAbort = new AbortController();
  /** Inbound connections refused by the TLS checks (no or bad certificate, CRL, allowed CN / host name, SAN). */
  private rejectedConnections = 0;
  private faults: TransportFaults;
  private started = false;
  private stopped = false;

  constructor(opts: TransportOptions) {
    if (opts.listenUrls.length === 0) throw new TransportError("INVALID_ARGUMENT", "listenUrls is empty");
    this.opts = opts;
    this.log = opts.logger ?? noLog;
    this.faults = opts.faults ?? {};
    const targets = opts.listenUrls.map(parsePeerUrl);
    const hooks = { onRejected: (line: string) => this.rejected(line), isOpen: () => !this.stopped };
    for (const t of targets)
      this.listeners.push({ target: t, server: createPeerServer(t.secure, opts.tls, hooks), url: t.url });
    this.ctx = this.senderContext();
  }

  private senderContext(): SenderContext {
    const o = this.opts;
    return {
      memberId: o.memberId,
      clusterId: o.clusterId,
      tls: o.tls,
      timeouts: {
        pingIntervalMs: o.peerTimeouts?.pingIntervalMs ?? PEER_PING_INTERVAL_MS,
        pingTimeoutMs: o.peerTimeouts?.pingTimeoutMs ?? PEER_PING_TIMEOUT_MS,
        dialTimeoutMs: o.peerTimeouts?.dialTimeoutMs ?? STREAM_DIAL_TIMEOUT_MS,
        reconnectBackoffMinMs: o.peerTimeouts?.reconnectBackoffMinMs ?? RECONNECT_BACKOFF_MIN_MS,
        reconnectBackoffMaxMs: o.peerTimeouts?.reconnectBackoffMaxMs ?? RECONNECT_BACKOFF_MAX_MS,
      },
      log: this.log,
      faults: () => this.faults,
      reportUnreachable: (peer) => o.onUnreachable?.(peer),
      reportSnapshot: (peer, ok) => o.onSnapshotStatus?.(peer, ok),
      peerStatus: (peer, active) => o.onPeerStatus?.(peer, active),
      refused: (peer, reason, direction) => o.onRefused?.(peer, reason, direction),
    };
  }

  /** The actual listen URLs (port 0 replaced by the bound port), valid after start(). */
  get boundUrls(): readonly string[] {
    return this.listeners.map((l) => l.url);
  }

  /** start listens on every listen URL; resolves when all are bound. */
  async start(): Promise<void> {
    if (this.started) throw new TransportError("INVALID_ARGUMENT", "start() called twice");
    this.started = true;
    await mkdir(this.opts.snapshotDir, { recursive: true });
    for (const l of this.listeners) {
      l.server.listener.on("connection", (sock: net.Socket) => {
        if (l.target.kind === "tcp") sock.setNoDelay(true);
      });
      l.server.h2.on("session", (s: http2.ServerHttp2Session) => this.trackSession(s));
      l.server.h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) =>
        this.handleStream(stream, headers),
      );
      await listen(l);
    }
    this.log("info", "peer transport listening", {
      "local-member-id": idToHex(this.opts.memberId),
      urls: this.boundUrls,
    });
  }

  addPeer(id: NodeId, urls: readonly string[]): void {
    if (this.removed.has(id))
      throw new TransportError("INVALID_ARGUMENT", `member ${idToHex(id)} was removed and cannot be added back`);
    if (id === this.opts.memberId) throw new TransportError("INVALID_ARGUMENT", `member ${idToHex(id)} is this member`);
    if (this.peers.has(id) || this.stopped) return;
    this.peers.set(id, new PeerSender(this.ctx, id, urls));
    this.log("info", "added remote peer", { "remote-peer-id": idToHex(id), urls });
  }

  updatePeer(id: NodeId, urls: readonly string[]): void {
    const peer = this.peers.get(id);
    if (peer === undefined) throw new TransportError("INVALID_ARGUMENT", `update of unknown peer ${idToHex(id)}`);
    peer.updateUrls(urls);
    this.log("info", "updated remote peer", { "remote-peer-id": idToHex(id), urls });
  }

  /**
   * removePeer stops sending to `id` and refuses its requests from now on (410, "removed member"), as etcd does
   * for a removed member; also usable for an id that was never added (a member removed before this start).
   */
  removePeer(id: NodeId): void {
    this.removed.add(id);
    this.peers.get(id)?.close();
    this.peers.delete(id);
    const stream = this.inbound.get(id);
    this.inbound.delete(id);
    stream?.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    this.log("info", "removed remote peer", { "remote-peer-id": idToHex(id) });
  }

  /** send queues each message on its peer's stream; never blocks. A full queue drops and reports unreachable. */
  send(msgs: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) {
      if (m.type === MessageType.Snap)
        throw new TransportError("INVALID_ARGUMENT", "MsgSnap goes through sendSnapshot()");
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        if (!this.warnedUnknown.has(m.to)) {
          this.warnedUnknown.add(m.to); // once per id: the server may keep sending to a member it just removed
          this.log("warn", "ignored message send request; unknown remote peer target", {
            type: m.type,
            "unknown-target-peer-id": idToHex(m.to),
          });
        }
        continue;
      }
      if (this.faults.dropOutgoing?.(m) === true) continue;
      const queued = peer.enqueue(m);
      if (queued !== "queued") this.dropped(peer, m, queued);
    }
  }

  private dropped(peer: PeerSender, m: Message, why: "full" | "too-large"): void {
    const stats = peer.stats();
    if (why === "too-large") {
      this.log("error", "dropped internal Raft message larger than the frame limit", {
        type: m.type,
        "remote-peer-id": idToHex(peer.id),
        limit: MAX_FRAME_BYTES,
      });
      this.opts.onUnreachable?.(peer.id);
      return;
    }
    // Log the first drop and then every 1000th: a down peer must not flood the log.
    if (stats.droppedMsgs % 1000 === 1) {
      this.log("warn", "dropped internal Raft message since sending buffer is full (overloaded network)", {
        type: m.type,
        "remote-peer-id": idToHex(peer.id),
        "remote-peer-active": peer.isActive,
        dropped: stats.droppedMsgs,
      });
    }
    this.opts.onUnreachable?.(peer.id);
  }

  /** sendSnapshot sends a MsgSnap with its body on a request of its own; the outcome goes to onSnapshotStatus. */
  sendSnapshot(m: Message, body: () => AsyncIterable<Uint8Array>): void {
    if (m.type !== MessageType.Snap || m.snapshot === undefined) {
      throw new TransportError(
        "INVALID_ARGUMENT",
        `sendSnapshot of ${m.type} (snapshot ${m.snapshot === undefined ? "missing" : "present"})`,
      );
    }
    const msgBytes = encodedSize(m);
    if (msgBytes > MAX_FRAME_BYTES) {
      throw new TransportError(
        "INVALID_ARGUMENT",
        `MsgSnap of ${msgBytes} bytes over the ${MAX_FRAME_BYTES}-byte frame limit: put the bulk in the body`,
      );
    }
    const peer = this.peers.get(m.to);
    if (this.stopped) return;
    if (peer === undefined) {
      this.log("warn", "ignored snapshot send request; unknown remote peer target", {
        "unknown-target-peer-id": idToHex(m.to),
      });
      this.opts.onSnapshotStatus?.(m.to, false);
      return;
    }
    const signal = this.snapshotAbort.signal;
    const job = { peer: m.to, urls: () => this.peers.get(m.to)?.peerUrls ?? [], m, body, signal };
    void sendSnapshotWithRetry(this.ctx, job).then((ok) => {
      if (ok) this.snapshotCounters.sentOk++;
      else this.snapshotCounters.sentFailed++;
      if (!ok) this.opts.onUnreachable?.(m.to);
      if (!signal.aborted) this.opts.onSnapshotStatus?.(m.to, ok);
    });
  }

  /** Peers with a live outgoing stream. */
  activePeers(): NodeId[] {
    return [...this.peers.values()].filter((p) => p.isActive).map((p) => p.id);
  }

  /** When the peer's stream became active (ms since epoch), or undefined when it is not active. */
  activeSince(id: NodeId): number | undefined {
    return this.peers.get(id)?.activeSince;
  }

  peerStats(id: NodeId): PeerStats | undefined {
    return this.peers.get(id)?.stats();
  }

  /** Counters for /metrics (etcd_network_* where etcd has a name), per peer and for snapshots. */
  networkStats(): NetworkStats {
    const ids = new Set<NodeId>([...this.peers.keys(), ...this.received.keys()]);
    const peers = [...ids].map((id): PeerNetworkStats => {
      const out = this.peers.get(id)?.stats();
      const inn = this.received.get(id);
      return {
        id,
        active: this.peers.get(id)?.isActive ?? false,
        sentMsgs: out?.sentMsgs ?? 0,
        sentBytes: out?.sentBytes ?? 0,
        sentFailures: out?.failures ?? 0,
        rttMs: this.peers.get(id)?.rttMs,
        droppedMsgs: out?.droppedMsgs ?? 0,
        receivedMsgs: inn?.msgs ?? 0,
        receivedBytes: inn?.bytes ?? 0,
      };
    });
    return { peers, snapshots: { ...this.snapshotCounters }, rejectedConnections: this.rejectedConnections };
  }

  setFaults(faults: TransportFaults): void {
    this.faults = faults;
  }

  /** stop closes every stream, connection and listener; queued messages are discarded. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.snapshotAbort.abort();
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    for (const s of this.inbound.values()) s.close(http2.constants.NGHTTP2_CANCEL);
    this.inbound.clear();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    if (this.started) {
      await Promise.all(
        this.listeners.map((l) => new Promise<void>((resolve) => l.server.listener.close(() => resolve()))),
      );
      for (const l of this.listeners) if (l.target.kind === "unix") await rm(l.target.path, { force: true });
    }
    this.log("info", "peer transport stopped", { "local-member-id": idToHex(this.opts.memberId) });
  }

  /** A peer connection refused by the TLS checks: logged in etcd's words, counted for /metrics. */
  private rejected(line: string): void {
    this.rejectedConnections++;
    this.log("warn", line);
  }

  private trackSession(s: http2.ServerHttp2Session): void {
    if (this.stopped) {
      s.destroy();
      return;
    }
    this.sessions.add(s);
    s.on("error", (err) => this.log("warn", "peer connection error", { error: err.message }));
    s.on("close", () => this.sessions.delete(s));
  }

  private handleStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", (err) => this.log("warn", "peer stream error", { error: err.message }));
    const path = headerString(headers, ":path");
    const handler = this.opts.httpHandlers?.[(path ?? "").split("?")[0] ?? ""];
    if (handler !== undefined) {
      void serveHandler(stream, headers, handler, this.opts.clusterId);
      return;
    }
    if (path !== STREAM_PATH && path !== SNAPSHOT_PATH) {
      respondAndClose(stream, 404, { [HEADER.refusal]: RefusalReason.BadRequest }, `unknown path ${String(path)}`);
      return;
    }
    const refusal = refusalOf(headers, {
      memberId: this.opts.memberId,
      clusterId: this.opts.clusterId,
      isRemoved: (id) => this.removed.has(id),
    });
    if (refusal !== undefined) {
      this.refuse(stream, headers, refusal);
      return;
    }
    const from = hexToId(headerString(headers, HEADER.from)) ?? 0n;
    if (path === STREAM_PATH) this.acceptMessageStream(stream, from);
    else void this.acceptSnapshot(stream, from);
  }

  private refuse(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    refusal: NonNullable<ReturnType<typeof refusalOf>>,
  ): void {
    const msg =
      refusal.reason === RefusalReason.ClusterIdMismatch
        ? `request cluster ID mismatch (got ${String(refusal.fields["got"])} want ${String(refusal.fields["want"])})`
        : refusal.reason === RefusalReason.MemberRemoved
          ? "rejected stream from remote peer because it was removed"
          : `refused peer request (${refusal.body})`;
    this.log("warn", msg, { "local-member-id": idToHex(this.opts.memberId), ...refusal.fields });
    const from = hexToId(headerString(headers, HEADER.from));
    if (from !== undefined) this.opts.onRefused?.(from, refusal.reason, "inbound");
    const extra = { [HEADER.refusal]: refusal.reason, [HEADER.clusterId]: idToHex(this.opts.clusterId) };
    respondAndClose(stream, refusal.status, extra, refusal.body);
  }

  private acceptMessageStream(stream: http2.ServerHttp2Stream, from: NodeId): void {
    const previous = this.inbound.get(from);
    this.inbound.set(from, stream);
    previous?.close(http2.constants.NGHTTP2_CANCEL);
    stream.respond({ ":status": 200 });
    this.peers.get(from)?.retryNow(); // it is up: our own stream to it need not wait out a backoff
    const parser = new FrameParser(MAX_FRAME_BYTES, (frame) => this.deliver(decodeMessage(frame), from));
    const counter = this.received.get(from) ?? { msgs: 0, bytes: 0 };
    this.received.set(from, counter);
    stream.on("data", (chunk: Buffer) => {
      counter.bytes += chunk.byteLength;
      try {
        parser.push(chunk);
      } catch (err) {
        this.log("error", "closing peer stream on a bad frame", {
          "remote-peer-id": idToHex(from),
          error: err instanceof Error ? err.message : String(err),
        });
        stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      }
    });
    stream.on("close", () => {
      if (this.inbound.get(from) === stream) this.inbound.delete(from);
    });
  }

  private deliver(m: Message, streamFrom: NodeId): void {
    if (m.from !== streamFrom || m.to !== this.opts.memberId) {
      throw new TransportError(
        "DECODE",
        `message ${idToHex(m.from)}→${idToHex(m.to)} on the stream of ${idToHex(streamFrom)}`,
      );
    }
    // A removal closes the sender's stream, but frames already read in the same chunk must not get through.
    if (this.removed.has(m.from) || this.stopped) return;
    const counter = this.received.get(m.from);
    if (counter !== undefined) counter.msgs++;
    if (this.faults.dropIncoming?.(m) === true) return;
    try {
      this.opts.onMessage(m);
    } catch (err) {
      // The server's bug must not look like a bad frame and cut the stream for every later message.
      this.log("error", "onMessage threw", {
        "remote-peer-id": idToHex(m.from),
        type: m.type,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private async acceptSnapshot(stream: http2.ServerHttp2Stream, from: NodeId): Promise<void> {
    const startMs = Date.now();
    try {
      const got = await receiveSnapshot(stream, from, this.opts.memberId, this.opts.snapshotDir);
      if (this.removed.has(from) || this.stopped)
        throw new TransportError("MEMBER_REMOVED", `snapshot from ${idToHex(from)}`);
      this.log("info", "received and saved database snapshot", {
        "remote-peer-id": idToHex(from),
        bytes: got.bytes,
        ms: Date.now() - startMs,
        path: got.path,
      });
      this.snapshotCounters.receivedOk++;
      this.opts.onSnapshot(got.m, got.path);
      respondAndClose(stream, 204, {}, "");
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.snapshotCounters.receivedFailed++;
      this.log("warn", "failed to receive database snapshot", { "remote-peer-id": idToHex(from), error });
      respondAndClose(stream, 400, { [HEADER.refusal]: "snapshot-rejected" }, error);
    }
  }
}

/** respondAndClose answers a request that will not be read further (when the stream can still answer). */
function respondAndClose(
  stream: http2.ServerHttp2Stream,
  status: number,
  headers: Record<string, string>,
  body: string,
): void {
  if (stream.destroyed || stream.closed) return;
  if (!stream.headersSent) stream.respond({ ":status": status, "content-type": "text/plain", ...headers });
  stream.end(body);
  // Stop the sender's upload too: close once our answer is flushed (RST_STREAM NO_ERROR after the end).
  stream.once("finish", () => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}

async function listen(l: Listener): Promise<void> {
  const t = l.target;
  if (t.kind === "unix") await rm(t.path, { force: true }); // a stale socket file from a crash (etcd removes it too)
  await new Promise<void>((resolve, reject) => {
    l.server.listener.once("error", reject);
    const onListening = (): void => {
      l.server.listener.off("error", reject);
      resolve();
    };
    if (t.kind === "unix") l.server.listener.listen(t.path, onListening);
    else l.server.listener.listen(t.port, t.host, onListening);
  });
  l.server.listener.on("error", () => undefined);
  if (t.kind === "tcp") {
    const port = (l.server.listener.address() as net.AddressInfo).port;
    const host = t.host.includes(":") ? `[${t.host}]` : t.host;
    l.url = `${t.secure ? "https" : "http"}://${host}:${port}`;
  }
}
