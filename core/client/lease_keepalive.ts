// LeaseKeepAlive: keeps one lease alive over a LeaseKeepAlive stream, sending a refresh at once and then every
// TTL/3 seconds as etcd's clientv3 does. A response with TTL <= 0 means the lease is gone (LEASE_NOT_FOUND);
// an UNAVAILABLE endpoint moves the stream to the next endpoint.
import type * as grpc from "@grpc/grpc-js";
import { EtcdError } from "../errors.js";
import type * as pb from "../api/proto/types.js";
import type { Connection } from "./connection.js";
import { isUnavailable, toClientError } from "./errors.js";
import { big } from "./wire.js";

const MIN_REFRESH_MS = 500;

export class LeaseKeepAlive {
  /** Resolves with the TTL of the first keepalive response. */
  readonly first: Promise<bigint>;
  /** TTL the server reported last, in seconds. */
  lastTtlSeconds = 0n;
  /** Number of keepalive responses received. */
  responses = 0;
  error: Error | undefined;
  private resolveFirst!: (ttl: bigint) => void;
  private rejectFirst!: (err: Error) => void;
  private stream: grpc.ClientDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse__Output> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private reopens = 0;

  constructor(
    private readonly conn: Connection,
    readonly id: bigint,
  ) {
    this.first = new Promise((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    this.first.catch(() => undefined);
    this.open();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.stream?.cancel();
    this.rejectFirst(new Error("keepalive stopped"));
  }

  /** open starts a keepalive stream on the current endpoint, with the auth token when the client has one. */
  private open(): void {
    this.conn.metadata().then(
      (md) => {
        if (!this.stopped) this.openWith(md);
      },
      (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
    );
  }

  private openWith(md: grpc.Metadata): void {
    let service: { client: grpc.Client; endpoint: string };
    try {
      service = this.conn.service("Lease");
    } catch (err) {
      return this.fail(err instanceof Error ? err : new Error(String(err)));
    }
    const { client, endpoint } = service;
    const fn = (
      client as unknown as {
        LeaseKeepAlive(
          md: grpc.Metadata,
        ): grpc.ClientDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse__Output>;
      }
    ).LeaseKeepAlive;
    const stream = fn.call(client, md);
    this.stream = stream;
    stream.on("data", (res: pb.LeaseKeepAliveResponse__Output) => this.onResponse(res));
    const broken = (e: ReturnType<typeof toClientError> | undefined): void => {
      if (this.stopped || stream !== this.stream) return;
      this.stream = undefined; // one reopen per broken stream ("error" and "end" may both arrive)
      if ((e !== undefined && !isUnavailable(e)) || ++this.reopens > this.conn.endpointCount * 3) {
        return this.fail(e ?? new Error(`keepalive stream of lease ${this.id} ended by ${endpoint}`));
      }
      this.conn.failover(endpoint);
      this.schedule(Math.min(1000, 100 * this.reopens), true);
    };
    stream.on("error", (err: unknown) => broken(toClientError(err, endpoint)));
    stream.on("end", () => broken(undefined));
    stream.write({ ID: this.id.toString() });
  }

  private onResponse(res: pb.LeaseKeepAliveResponse__Output): void {
    if (this.stopped) return;
    const ttl = big(res.TTL);
    if (ttl <= 0n) return this.fail(new EtcdError("LEASE_NOT_FOUND", `lease ${this.id} expired or revoked`));
    this.reopens = 0;
    this.responses++;
    this.lastTtlSeconds = ttl;
    this.resolveFirst(ttl);
    this.schedule(Math.max(MIN_REFRESH_MS, (Number(ttl) * 1000) / 3), false);
  }

  private schedule(ms: number, reopen: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      if (reopen) this.open();
      else this.stream?.write({ ID: this.id.toString() });
    }, ms);
    this.timer.unref();
  }

  private fail(err: Error): void {
    this.error = err;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.stream?.cancel();
    this.rejectFirst(err);
  }
}
