// The replayer's side of list_worker.ts: sends LISTs to the worker and resolves with their absolute times.
import { Worker } from "node:worker_threads";
import type { ListReply, ListRequest } from "./list_worker.js";

export class ListOffload {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (r: ListReply) => void>();
  private nextId = 1;

  constructor(endpoints: readonly string[]) {
    this.worker = new Worker(new URL("./list_worker.js", import.meta.url), {
      workerData: { endpoints: [...endpoints] },
    });
    this.worker.on("message", (r: ListReply) => {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      w?.(r);
    });
    this.worker.on("error", (err) => {
      for (const [id, w] of this.waiting)
        w({ id, sentAbsMs: 0, doneAbsMs: 0, bytes: 0, errorCode: `WORKER:${err.message}` });
      this.waiting.clear();
    });
  }

  list(prefix: string, limit: number | undefined, timeoutMs: number): Promise<ListReply> {
    const id = this.nextId++;
    const req: ListRequest = { id, prefix, timeoutMs, ...(limit === undefined ? {} : { limit }) };
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    this.worker.postMessage("close");
    await this.worker.terminate();
  }
}
