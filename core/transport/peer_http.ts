// Plain request/response endpoints on the peer listener besides the raft streams, as etcd serves /members and
// /version on its peer port (a member joining with --initial-cluster-state=existing asks a peer for the member
// list there). The server registers handlers by path; peerRequest is the matching client, one HTTP/2 request to
// a peer URL with a bounded time. Every answer carries the local cluster id header, as etcd's peer handlers do.

import type * as http2 from "node:http2";
import { TransportError } from "./errors.js";
import { HEADER, idToHex } from "./protocol.js";
import { type TransportTls, connectSession, parsePeerUrl } from "./urls.js";

export interface PeerHttpRequest {
  readonly method: string;
  /** The path without its query string. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface PeerHttpResponse {
  readonly status: number;
  readonly body: string | Uint8Array;
  readonly contentType?: string;
}

export type PeerHttpHandler = (req: PeerHttpRequest) => PeerHttpResponse | Promise<PeerHttpResponse>;

/** Bodies of requests to handlers are small (JSON); larger ones are refused with 413. */
export const PEER_HTTP_MAX_BODY_BYTES = 1024 * 1024;
export const PEER_HTTP_TIMEOUT_MS = 5000;

/** serveHandler answers one request with `handler`, reading its (bounded) body first. */
export async function serveHandler(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  handler: PeerHttpHandler,
  clusterId: bigint,
): Promise<void> {
  const url = new URL(String(headers[":path"] ?? "/"), "http://peer");
  let res: PeerHttpResponse;
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of stream as AsyncIterable<Buffer>) {
      size += c.byteLength;
      if (size > PEER_HTTP_MAX_BODY_BYTES)
        throw new TransportError("INVALID_ARGUMENT", `request body over ${PEER_HTTP_MAX_BODY_BYTES} bytes`);
      chunks.push(c);
    }
    const method = String(headers[":method"] ?? "GET");
    res = await handler({ method, path: url.pathname, query: url.searchParams, headers, body: Buffer.concat(chunks) });
  } catch (err) {
    res = { status: err instanceof TransportError ? 413 : 500, body: err instanceof Error ? err.message : String(err) };
  }
  if (stream.destroyed || stream.closed) return;
  stream.respond({
    ":status": res.status,
    "content-type": res.contentType ?? "text/plain; charset=utf-8",
    [HEADER.clusterId]: idToHex(clusterId),
  });
  stream.end(res.body);
}

export interface PeerRequestOptions {
  readonly method?: string;
  readonly body?: string | Uint8Array;
  readonly tls?: TransportTls;
  readonly timeoutMs?: number;
}

export interface PeerReply {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** peerRequest makes one request to `path` on a peer URL; rejects on connection failure or after timeoutMs. */
export function peerRequest(peerUrl: string, path: string, opts: PeerRequestOptions = {}): Promise<PeerReply> {
  const session = connectSession(parsePeerUrl(peerUrl), opts.tls);
  const timeoutMs = opts.timeoutMs ?? PEER_HTTP_TIMEOUT_MS;
  return new Promise<PeerReply>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${opts.method ?? "GET"} ${peerUrl}${path}: no reply within ${timeoutMs} ms`));
      session.destroy();
    }, timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    session.on("error", fail);
    const req = session.request(
      { ":method": opts.method ?? "GET", ":path": path },
      { endStream: opts.body === undefined },
    );
    req.on("error", fail);
    req.once("response", (headers) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.once("end", () => {
        clearTimeout(timer);
        resolve({ status: Number(headers[":status"]), headers, body: Buffer.concat(chunks) });
      });
    });
    req.once("close", () =>
      fail(new Error(`${peerUrl}${path}: stream closed before a reply (rst code ${req.rstCode ?? "none"})`)),
    );
    if (opts.body !== undefined) req.end(opts.body);
  }).finally(() => session.close());
}
