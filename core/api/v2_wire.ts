// What every v2 handler shares: Go's JSON escaping, whole answers with a Content-Length, etcd's 405 answer, the
// cluster id header value, and reading a request body.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { EtcdServer } from "../server/etcd_server.js";

/** A v2 request body is small (a form or a member's URLs); larger ones are refused. */
const MAX_V2_BODY_BYTES = 4 * 1024 * 1024;

/** JSON as Go's encoder writes it: <, > and & (and U+2028/U+2029) escaped, so values read back byte for byte. */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A whole answer with its Content-Length (Go's server sends one for a small body written at once). */
export function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, "Content-Length": String(Buffer.byteLength(body)) }).end(body);
}

/** etcd's allowMethod: anything else is 405 with an Allow header. */
export function allowMethod(res: ServerResponse, method: string, allowed: readonly string[]): boolean {
  if (allowed.includes(method)) return true;
  send(
    res,
    405,
    { Allow: allowed.join(","), "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
    "Method Not Allowed\n",
  );
  return false;
}

export function clusterIdHex(s: EtcdServer): string {
  return s.config.clusterId.toString(16);
}

/** The request body as text (only read when the method carries one, as Go's ParseForm does). */
export function readBody(req: IncomingMessage, wanted: boolean): Promise<string> {
  if (!wanted) {
    req.resume();
    return Promise.resolve("");
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_V2_BODY_BYTES) reject(new Error("v2 request body too large"));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
