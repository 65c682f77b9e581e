// Calling the JSON gateway of real etcd and etcd-ts alike in differential tests: one call (status + body), a
// streaming call read line by line as the lines arrive, and the normalizing of what legitimately differs
// between two single-member clusters (cluster and member ids).
import { etcdctl } from "./processes.js";

export const b64 = (s: string): string => Buffer.from(s).toString("base64");

export interface Answer {
  readonly status: number;
  readonly body: string;
}

export async function post(endpoint: string, path: string, body: unknown = {}, signal?: AbortSignal): Promise<Answer> {
  const init: RequestInit = { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) };
  if (signal !== undefined) init.signal = signal;
  const res = await fetch(`http://${endpoint}${path}`, init);
  return { status: res.status, body: await res.text() };
}

/** The cluster and member id of a single-member server, as decimal strings. */
export function idsOf(endpoint: string): string[] {
  const r = etcdctl(endpoint, ["endpoint", "status", "-w", "json"]);
  const m = /"cluster_id":(\d+),"member_id":(\d+)/.exec(r.stdout);
  if (m === null) throw new Error(`no ids from endpoint status: ${r.stdout} ${r.stderr}`);
  return [m[1] ?? "", m[2] ?? ""];
}

export function replaceIds(body: string, ids: readonly string[]): string {
  let out = body;
  for (const id of ids) out = out.replaceAll(id, "ID");
  return out;
}

/** A streaming gateway call: its lines as they come, until close() aborts it. */
export class LineStream {
  readonly lines: string[] = [];
  ended = false;
  readonly #abort = new AbortController();

  constructor(endpoint: string, path: string, body: unknown) {
    void this.#read(endpoint, path, body)
      .catch(() => undefined)
      .finally(() => {
        this.ended = true;
      });
  }

  async #read(endpoint: string, path: string, body: unknown): Promise<void> {
    const res = await fetch(`http://${endpoint}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: this.#abort.signal,
    });
    const reader = res.body?.getReader();
    if (reader === undefined) return;
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += Buffer.from(value).toString("utf8");
      let i: number;
      while ((i = text.indexOf("\n")) >= 0) {
        this.lines.push(text.slice(0, i));
        text = text.slice(i + 1);
      }
    }
  }

  close(): void {
    this.#abort.abort();
  }
}
