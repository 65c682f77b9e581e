// Worker thread that runs LISTs for the replayer on its own client and event loop. A LIST of every pod is tens
// of MiB; receiving it on the replayer's thread would delay the timers and callbacks of the small writes being
// measured (the client, not the server, would add latency). Times cross threads as absolute milliseconds
// (performance.timeOrigin + performance.now()).
import { parentPort, workerData } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { EtcdClient, errorCode } from "../core/client/index.js";
import { KubeStorage } from "../workloads/kube_mapping.js";

export interface ListRequest {
  readonly id: number;
  readonly prefix: string;
  readonly limit?: number;
  readonly timeoutMs: number;
}

export interface ListReply {
  readonly id: number;
  readonly sentAbsMs: number;
  readonly doneAbsMs: number;
  /** Response bytes of every page (0 when the LIST failed). */
  readonly bytes: number;
  readonly errorCode?: string;
}

const absMs = (): number => performance.timeOrigin + performance.now();

if (parentPort !== null) {
  const port = parentPort;
  const { endpoints } = workerData as { endpoints: string[] };
  const client = new EtcdClient({ endpoints, callTimeoutMs: 120_000 });
  const storage = new KubeStorage(client);
  port.on("message", (m: ListRequest | "close") => {
    if (m === "close") {
      client.close();
      port.close();
      return;
    }
    const sentAbsMs = absMs();
    storage.list(m.prefix, { timeoutMs: m.timeoutMs, ...(m.limit === undefined ? {} : { limit: m.limit }) }).then(
      (o) => port.postMessage({ id: m.id, sentAbsMs, doneAbsMs: absMs(), bytes: o.bytes } satisfies ListReply),
      (err: unknown) =>
        port.postMessage({
          id: m.id,
          sentAbsMs,
          doneAbsMs: absMs(),
          bytes: 0,
          errorCode: errorCode(err),
        } satisfies ListReply),
    );
  });
}
