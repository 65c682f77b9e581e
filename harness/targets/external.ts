// A target that is already running somewhere: the harness only connects to its endpoints.
import { EtcdClient } from "../../core/client/index.js";
import type { Target } from "./target.js";

export class ExternalTarget implements Target {
  readonly name = "external";
  private ver = "";

  constructor(private readonly list: readonly string[]) {}

  get describe(): string {
    return `external endpoints ${this.list.join(",")}`;
  }

  endpoints(): string[] {
    return [...this.list];
  }

  version(): string {
    return this.ver;
  }

  async start(): Promise<void> {
    const client = new EtcdClient({ endpoints: this.list, callTimeoutMs: 5_000 });
    try {
      this.ver = (await client.status()).version;
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {}
}
