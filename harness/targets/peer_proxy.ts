// A TCP proxy in front of every member's peer port (members listen on one port and advertise the proxy's), able
// to cut a member off entirely (a partition) or any directed link src → dst (a one-way drop). EtcdCluster's
// "proxy" fault mode and the robustness suite both put their members behind it. A connection is attributed to
// the member that opened it by the sender-id header every peer request carries (X-Server-From): read from the
// plain HTTP/1.1 head for real etcd, and for etcd-ts's HTTP/2 by letting a throwaway in-process HTTP/2 server
// decode the first request's headers from a copy of the opening bytes. Which way a connection's raft messages
// flow follows from its path: etcd's GET /raft/stream/… is a reader pulling from the member it dials, every
// other peer request (etcd's pipeline POSTs and snapshots, etcd-ts's /raft/stream) carries the dialler's
// messages. A cut closes the connections that carry the link and refuses new ones, as a REJECT rule would (fast
// failures, the member's clock and client port running on); silent packet loss (a DROP rule, where connections
// hang until keepalives notice) is not modelled.
import { createServer as createH2Server, type Http2Server } from "node:http2";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";

const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEAD_MAX_BYTES = 64 * 1024;

/** Which member sends raft messages over a connection and which receives them (undefined: unknown sender). */
export interface Flow {
  readonly sender: number | undefined;
  readonly receiver: number | undefined;
}

/** flowOf: the direction of a peer request's raft messages, from the dialler's id, the dialled member and the path. */
export function flowOf(from: number | undefined, dst: number, path: string, http2: boolean): Flow {
  if (!http2 && path.startsWith("/raft/stream/")) return { sender: dst, receiver: from };
  return { sender: from, receiver: dst };
}

export class PeerLinks {
  /** Cut directed links as "src>dst". */
  private readonly cut = new Set<string>();
  /** Members cut off from every other member, in both directions. */
  private readonly isolated = new Set<number>();
  private readonly proxies: MemberProxy[] = [];
  /** Member id (lower-case hex, no leading zeros) → member index. */
  readonly ids = new Map<string, number>();

  /** listen starts member `index`'s proxy on a free port forwarding to its real peer port; resolves the proxy's port. */
  async listen(index: number, upstreamPort: number): Promise<number> {
    const p = new MemberProxy(index, upstreamPort, this);
    this.proxies.push(p);
    return p.listen();
  }

  isCut(f: Flow): boolean {
    if (f.sender !== undefined && this.isolated.has(f.sender)) return true;
    if (f.receiver !== undefined && this.isolated.has(f.receiver)) return true;
    // An unattributed request (a version or membership probe) is only refused by a member cut off entirely.
    if (f.sender === undefined || f.receiver === undefined) return false;
    return this.cut.has(`${f.sender}>${f.receiver}`);
  }

  /** isIsolated: member i is cut off from every other member. */
  isIsolated(i: number): boolean {
    return this.isolated.has(i);
  }

  /** drop cuts the link src → dst (one way). */
  drop(src: number, dst: number): void {
    this.cut.add(`${src}>${dst}`);
    this.enforce();
  }

  /** isolate cuts every link between member i and every other member, both ways, until heal(i) or healAll(). */
  isolate(i: number): void {
    this.isolated.add(i);
    this.enforce();
  }

  /** heal undoes isolate(i) (links cut by drop stay cut). */
  heal(i: number): void {
    this.isolated.delete(i);
  }

  healAll(): void {
    this.cut.clear();
    this.isolated.clear();
  }

  private enforce(): void {
    for (const p of this.proxies) p.enforce();
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}

interface Conn {
  /** The flow, resolved again at every check: a connection opened before the member ids were known gets its sender later. */
  readonly flow: () => Flow;
  readonly down: Socket;
  readonly up: Socket;
}

class MemberProxy {
  private server: Server | undefined;
  private readonly conns = new Set<Conn>();
  private readonly pending = new Set<Socket>();

  constructor(
    private readonly index: number,
    private readonly upstreamPort: number,
    private readonly links: PeerLinks,
  ) {}

  listen(): Promise<number> {
    const server = createServer((sock) => this.accept(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const addr = server.address();
        resolve(typeof addr === "object" && addr !== null ? addr.port : 0);
      });
    });
  }

  private accept(down: Socket): void {
    // Nothing reaches a member cut off entirely, not even the request head.
    if (this.links.isIsolated(this.index)) {
      down.destroy();
      return;
    }
    this.pending.add(down);
    let head = Buffer.alloc(0);
    let decided = false;
    let h2: H2Sniffer | undefined;
    const decide = (from: string | undefined, path: string, http2: boolean): void => {
      if (decided) return;
      decided = true;
      down.off("data", onData);
      down.pause();
      h2?.close();
      this.pending.delete(down);
      const hex = from?.toLowerCase().replace(/^0+/, "");
      this.forward(down, head, () =>
        flowOf(hex === undefined ? undefined : this.links.ids.get(hex), this.index, path, http2),
      );
    };
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b]);
      if (head.length >= H2_PREFACE.length && head.subarray(0, H2_PREFACE.length).toString("latin1") === H2_PREFACE) {
        if (h2 === undefined) {
          h2 = new H2Sniffer((from, path) => decide(from, path, true));
          h2.feed(head);
        } else {
          h2.feed(b);
        }
      } else if (head.length >= H2_PREFACE.length || !H2_PREFACE.startsWith(head.toString("latin1"))) {
        const text = head.toString("latin1");
        const end = text.indexOf("\r\n\r\n");
        if (end >= 0 || head.length >= HEAD_MAX_BYTES) {
          const path = /^[A-Z]+ (\S+)/.exec(text)?.[1] ?? "";
          decide(/\r\nx-server-from:\s*([0-9a-fA-F]+)\r\n/i.exec(text)?.[1], path, false);
        }
      }
      if (!decided && head.length >= HEAD_MAX_BYTES) decide(undefined, "", false);
    };
    down.on("data", onData);
    down.on("error", () => down.destroy());
    down.on("close", () => {
      this.pending.delete(down);
      h2?.close();
    });
  }

  private forward(down: Socket, head: Buffer, flow: () => Flow): void {
    if (this.links.isCut(flow())) {
      down.destroy();
      return;
    }
    const up = connect(this.upstreamPort, "127.0.0.1");
    const conn: Conn = { flow, down, up };
    this.conns.add(conn);
    const drop = (): void => {
      this.conns.delete(conn);
      down.destroy();
      up.destroy();
    };
    up.on("error", drop).on("close", drop);
    down.on("close", drop);
    up.write(head);
    down.pipe(up);
    up.pipe(down);
    down.resume();
  }

  enforce(): void {
    for (const c of [...this.conns]) {
      if (!this.links.isCut(c.flow())) continue;
      this.conns.delete(c);
      c.down.destroy();
      c.up.destroy();
    }
    if (this.links.isIsolated(this.index)) for (const s of [...this.pending]) s.destroy();
  }

  close(): Promise<void> {
    for (const c of this.conns) {
      c.down.destroy();
      c.up.destroy();
    }
    for (const s of this.pending) s.destroy();
    this.conns.clear();
    this.pending.clear();
    const server = this.server;
    this.server = undefined;
    return server === undefined ? Promise.resolve() : new Promise((r) => server.close(() => r()));
  }
}

/**
 * H2Sniffer decodes the first request's headers of an HTTP/2 connection from a copy of its bytes, with Node's own
 * HTTP/2 server over an in-memory stream (header compression makes a text search impossible). Its replies go
 * nowhere; the real bytes are forwarded untouched.
 */
class H2Sniffer {
  private readonly server: Http2Server;
  private readonly wire: Duplex;
  private done = false;

  constructor(onHeaders: (from: string | undefined, path: string) => void) {
    this.server = createH2Server();
    this.server.on("stream", (_stream, headers) => {
      if (this.done) return;
      const from = headers["x-server-from"];
      onHeaders(typeof from === "string" ? from : undefined, String(headers[":path"] ?? ""));
    });
    this.server.on("sessionError", () => undefined);
    this.wire = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    this.wire.on("error", () => undefined);
    this.server.emit("connection", this.wire);
  }

  feed(b: Buffer): void {
    if (!this.done) this.wire.push(b);
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.wire.destroy();
    this.server.close();
  }
}
