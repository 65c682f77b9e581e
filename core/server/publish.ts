// etcd's publish: once there is a leader, a member announces its name and client URLs through Raft, and serves
// clients only from then on.
import { EtcdError } from "../errors.js";
import type { WriteResponse } from "../mvcc/types.js";
import type { InternalRequest } from "./request_codec.js";
import type { ServerConfig } from "./server_config.js";

export interface PublishHost {
  readonly config: ServerConfig;
  readonly stopped: boolean;
  readonly heartbeatMs: number;
  whenLeader(): Promise<void>;
  propose(req: InternalRequest): Promise<WriteResponse | EtcdError>;
}

export class Publisher {
  readonly #host: PublishHost;
  #published = false;
  #waiters: (() => void)[] = [];

  constructor(host: PublishHost) {
    this.#host = host;
  }

  /** Proposes the publish until it applies (retrying every heartbeat) or the member stops. */
  async run(): Promise<void> {
    const host = this.#host;
    const config = host.config;
    const clientUrls = [...(config.clientUrls ?? [])];
    while (!host.stopped) {
      await host.whenLeader();
      if (host.stopped) return;
      try {
        const result = await host.propose({ publish: { memberId: config.memberId, name: config.name, clientUrls } });
        if (result instanceof EtcdError) throw result;
        this.#published = true;
        this.releaseWaiters();
        return;
      } catch (err) {
        if (host.stopped) return;
        config.log?.(
          "W",
          "etcdserver",
          `failed to publish local member to cluster through raft (${err instanceof Error ? err.message : String(err)})`,
        );
        await new Promise((r) => setTimeout(r, host.heartbeatMs));
      }
    }
  }

  /** Resolves once this member has published itself (or stopped). */
  whenPublished(): Promise<void> {
    if (this.#published || this.#host.stopped) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Wakes everyone waiting (published, or the member stops). */
  releaseWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
