// --experimental-failpoints: GET /debug/failpoints lists what is armed, PUT arms or disarms ("name=action[@n]" items
// separated by ";", see core/failpoints.ts). Loopback clients only, small bodies only: it can kill the process.
import type { IncomingMessage, ServerResponse } from "node:http";
import { FailpointSpecError, armFailpoints, armedFailpoints } from "../failpoints.js";

const MAX_BODY_BYTES = 4096;

export const FAILPOINTS_PATH = "/debug/failpoints";

function isLoopback(addr: string | undefined): boolean {
  return addr === "127.0.0.1" || addr === "::1" || addr === "::ffff:127.0.0.1";
}

export function serveFailpoints(req: IncomingMessage, res: ServerResponse): void {
  const text = (code: number, body: string): void =>
    void res.writeHead(code, { "Content-Type": "text/plain; charset=utf-8" }).end(body);
  if (!isLoopback(req.socket.remoteAddress)) return text(403, "failpoints are served to loopback clients only\n");
  if (req.method === "GET") return text(200, `${armedFailpoints()}\n`);
  if (req.method !== "PUT") return text(405, "method not allowed\n");
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      text(413, `body over ${MAX_BODY_BYTES} bytes\n`);
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    if (size > MAX_BODY_BYTES) return;
    try {
      armFailpoints(Buffer.concat(chunks).toString("utf8"));
      text(200, `${armedFailpoints()}\n`);
    } catch (err) {
      if (!(err instanceof FailpointSpecError)) throw err;
      text(400, `${err.message}\n`);
    }
  });
}
