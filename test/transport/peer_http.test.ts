// Proves the peer listener's extra endpoints (etcd serves /members and /version on its peer port): a handler
// registered by path answers GET and POST through peerRequest with the local cluster id header; unknown paths
// get 404; a peer that is down makes peerRequest reject instead of hanging.

import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { peerRequest } from "../../core/transport/transport.js";
import { Cluster } from "./helpers.js";

let cluster: Cluster;
afterEach(async () => {
  await cluster.cleanup();
});

describe("peer transport: HTTP endpoints on the peer listener", () => {
  it("serves registered paths, with the cluster id header, and 404 for others", async () => {
    cluster = new Cluster();
    const seen: string[] = [];
    const a = await cluster.node(1n, {
      clusterId: 0xcafen,
      extra: {
        httpHandlers: {
          "/members": (req) => {
            seen.push(`${req.method} ${req.path} ${req.query.get("x") ?? ""} ${req.body.toString()}`);
            return {
              status: 200,
              body: JSON.stringify([{ id: "1", peerURLs: ["http://a"] }]),
              contentType: "application/json",
            };
          },
        },
      },
    });
    const get = await peerRequest(a.url, "/members?x=1");
    expect(get.status).toBe(200);
    expect(get.headers["x-etcd-cluster-id"]).toBe("cafe");
    expect(JSON.parse(get.body.toString())).toEqual([{ id: "1", peerURLs: ["http://a"] }]);
    const post = await peerRequest(a.url, "/members", { method: "POST", body: "hello" });
    expect(post.status).toBe(200);
    expect(seen).toEqual(["GET /members 1 ", "POST /members  hello"]);
    const missing = await peerRequest(a.url, "/version");
    expect(missing.status).toBe(404);
  });

  it("rejects when the peer is down", async () => {
    cluster = new Cluster();
    const srv = createServer();
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    await expect(peerRequest(`http://127.0.0.1:${port}`, "/members", { timeoutMs: 3000 })).rejects.toThrow(
      /ECONNREFUSED|closed/,
    );
  });
});
