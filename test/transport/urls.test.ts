// Proves peer URL parsing as etcd accepts peer URLs: http/https need a port, unix/unixs map to a socket path made
// of host plus path (unix://localhost:2380 is the file "localhost:2380", as etcd), IPv6 hosts lose their
// brackets, and anything else is refused with BAD_URL naming the URL.

import { describe, expect, it } from "vitest";
import { isTransportError } from "../../core/transport/errors.js";
import { parsePeerUrl } from "../../core/transport/urls.js";

describe("peer URLs", () => {
  it("parses tcp and unix forms", () => {
    expect(parsePeerUrl("http://127.0.0.1:2380")).toEqual({
      kind: "tcp",
      secure: false,
      host: "127.0.0.1",
      port: 2380,
      url: "http://127.0.0.1:2380",
    });
    expect(parsePeerUrl("https://[::1]:12380")).toMatchObject({ kind: "tcp", secure: true, host: "::1", port: 12380 });
    expect(parsePeerUrl("unix://localhost:2380")).toMatchObject({
      kind: "unix",
      secure: false,
      path: "localhost:2380",
    });
    expect(parsePeerUrl("unixs:///tmp/etcd/peer.sock")).toMatchObject({
      kind: "unix",
      secure: true,
      path: "/tmp/etcd/peer.sock",
    });
  });

  it("refuses what cannot be a peer URL, naming it", () => {
    for (const bad of ["127.0.0.1:2380", "ftp://h:1", "http://127.0.0.1", "unix://", "http://"]) {
      let code: string | undefined;
      let message = "";
      try {
        parsePeerUrl(bad);
      } catch (err) {
        code = isTransportError(err) ? err.code : String(err);
        message = err instanceof Error ? err.message : "";
      }
      expect(code, `parsing ${JSON.stringify(bad)}`).toBe("BAD_URL");
      expect(message, `message for ${bad}`).toContain(JSON.stringify(bad));
    }
  });
});
