// Proves inbound peer-certificate enforcement with real TLS between transports on loopback, set up through
// peerTlsFromFlags as the CLI does: a member with a certificate of the peer CA exchanges raft messages; a peer with
// no certificate, another CA's, a revoked one, the wrong CN, the wrong host name (--peer-cert-allowed-hostname) or
// a SAN that does not name its address is refused, logged with etcd 3.4's "rejected connection" line and reason
// (the texts real etcd 3.4.23 logged for the same certificates), and gets no message through; a new CRL applies to
// the next connection without a restart.

import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { peerTlsFromFlags } from "../../core/cli/tls_flags.js";
import type { NodeId } from "../../core/raft/types.js";
import type { TransportTls } from "../../core/transport/transport.js";
import { Cluster, type TestNode, WAIT_MS, msg } from "./helpers.js";
import { type CertFiles, FilePki } from "../../harness/pki.js";

const SANS = "IP:127.0.0.1,DNS:localhost";
let pki: FilePki;
let certs: Record<string, CertFiles>;
let emptyCrl: string;
let crl: string;
let cluster: Cluster;

beforeAll(() => {
  pki = new FilePki();
  pki.ca("ca");
  pki.ca("other");
  certs = {
    member: pki.leaf("member", "ca", "member", SANS),
    stranger: pki.leaf("stranger", "other", "member", SANS),
    revoked: pki.leaf("revoked", "ca", "member", SANS),
    intruder: pki.leaf("intruder", "ca", "intruder", SANS),
    ipOther: pki.leaf("ip-other", "ca", "member", "IP:127.0.0.1,DNS:other.example"),
    farIp: pki.leaf("far-ip", "ca", "member", "IP:10.0.0.1"),
    dnsOnly: pki.leaf("dns-only", "ca", "member", "DNS:localhost"),
  };
  emptyCrl = pki.crl("ca", pki.path("empty.crl"));
  pki.revoke("ca", "revoked");
  crl = pki.crl("ca", pki.path("ca.crl"));
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  await cluster.cleanup();
});

/** The --peer-* flags of a member with the `member` certificate; `over` replaces some. */
function flags(over: Record<string, string>): (flag: string) => string {
  const base: Record<string, string> = {
    "peer-cert-file": certs.member?.cert ?? "",
    "peer-key-file": certs.member?.key ?? "",
    "peer-trusted-ca-file": pki.path("ca.crt"),
    "peer-client-cert-auth": "true",
    "peer-crl-file": crl,
  };
  return (flag) => over[flag] ?? base[flag] ?? (/auth|auto-tls|skip/.test(flag) ? "false" : "");
}

async function listener(id: NodeId, over: Record<string, string> = {}): Promise<TestNode> {
  const tls = peerTlsFromFlags(flags(over), cluster.dir, ["https://127.0.0.1:0"]);
  expect(tls, "https peer URL gives TLS options").toBeDefined();
  return cluster.node(id, { listenUrl: "https://127.0.0.1:0", extra: tls !== undefined ? { tls } : {} });
}

/** A peer that dials with `cert` (undefined: none) and trusts the good CA, so only the listener can refuse it. */
function dialer(id: NodeId, cert: CertFiles | undefined): Promise<TestNode> {
  const client = {
    ca: readFileSync(pki.path("ca.crt")),
    ...(cert !== undefined ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
  };
  const tls: TransportTls = { client };
  return cluster.node(id, { extra: { tls } });
}

const rejections = (n: TestNode): string[] =>
  n.logs.filter((l) => l.msg.startsWith("rejected connection from")).map((l) => l.msg);
const reasonOf = (line: string | undefined): string | undefined =>
  /\(error "((?:[^"\\]|\\.)*)"/.exec(line ?? "")?.[1]?.replace(/\\"/g, '"');

/** `cert` dials `to` and sends one message; resolves with the first line `to` logged for it (none: accepted). */
async function attempt(
  to: TestNode,
  id: NodeId,
  cert: CertFiles | undefined,
): Promise<{ line: string | undefined; delivered: boolean }> {
  const before = rejections(to).length;
  const received = to.received.length;
  const d = await dialer(id, cert);
  d.t.addPeer(to.id, [to.url]);
  d.t.send([msg(id, to.id, 1)]);
  await cluster.signal.until(
    () => rejections(to).length > before || to.received.length > received,
    WAIT_MS,
    `peer ${id} accepted or refused`,
  );
  await d.t.stop();
  return { line: rejections(to)[before], delivered: to.received.some((m) => m.from === id) };
}

describe("peer transport: inbound certificate enforcement", () => {
  it("members with certificates of the peer CA exchange messages both ways; a DNS-only SAN that resolves passes", async () => {
    cluster = new Cluster();
    const a = await listener(1n, { "peer-cert-allowed-cn": "member" });
    const b = await listener(2n, { "peer-cert-allowed-cn": "member" });
    cluster.connectAll([a, b]);
    a.t.send([msg(1n, 2n, 1), msg(1n, 2n, 2)]);
    b.t.send([msg(2n, 1n, 1)]);
    await cluster.signal.until(() => b.received.length === 2 && a.received.length === 1, WAIT_MS, "3 messages");
    expect(b.received.map((m) => m.index)).toEqual([1, 2]);
    expect(await attempt(a, 3n, certs.dnsOnly)).toEqual({ line: undefined, delivered: true });
    expect(rejections(a), "nothing refused").toEqual([]);
    expect(a.t.networkStats().rejectedConnections).toBe(0);
  });

  it("no certificate, another CA's, a revoked one, the wrong CN, a SAN not naming the peer: refused with etcd's reasons", async () => {
    cluster = new Cluster();
    const a = await listener(1n, { "peer-cert-allowed-cn": "member" });
    const revokedSerial = new X509Certificate(readFileSync(pki.path("revoked.crt"))).serialNumber
      .toLowerCase()
      .replace(/^(00)+/, "");
    const cases: [string, CertFiles | undefined, string][] = [
      ["none", undefined, "tls: client didn't provide a certificate"],
      [
        "stranger",
        certs.stranger,
        "tls: failed to verify client certificate: x509: certificate signed by unknown authority",
      ],
      ["revoked", certs.revoked, `transport: certificate serial ${revokedSerial} revoked`],
      ["intruder", certs.intruder, "client certificate authentication failed"],
      ["farIp", certs.farIp, "x509: certificate is valid for 10.0.0.1, not 127.0.0.1"],
    ];
    let id = 10n;
    for (const [name, cert, reason] of cases) {
      const r = await attempt(a, id++, cert);
      expect(r.delivered, `${name} delivered nothing`).toBe(false);
      expect(reasonOf(r.line), `${name}'s refusal`).toBe(reason);
    }
    expect(a.received.length, "no message from any refused peer").toBe(0);
    expect(a.t.networkStats().rejectedConnections).toBeGreaterThanOrEqual(cases.length);
    // After the handshake etcd also names the certificate's SANs; a failed verification does not.
    expect(rejections(a).find((l) => l.includes("authentication failed"))).toMatch(
      /^rejected connection from "127\.0\.0\.1:\d+" \(error "client certificate authentication failed", ServerName "", IPAddresses \["127\.0\.0\.1"\], DNSNames \["localhost"\]\)$/,
    );
    expect(rejections(a).find((l) => l.includes("unknown authority"))).toMatch(
      /^rejected connection from "127\.0\.0\.1:\d+" \(error "[^"]+", ServerName ""\)$/,
    );
  });

  it("--peer-cert-allowed-hostname: a certificate whose SANs lack the name is refused, one that has it passes", async () => {
    cluster = new Cluster();
    const a = await listener(1n, { "peer-cert-allowed-hostname": "localhost" });
    const refused = await attempt(a, 10n, certs.ipOther);
    expect(refused.delivered).toBe(false);
    expect(reasonOf(refused.line)).toBe("client certificate authentication failed");
    expect(await attempt(a, 11n, certs.intruder), "CN differs, SAN localhost: passes").toEqual({
      line: undefined,
      delivered: true,
    });
  });

  it("re-reads --peer-crl-file for every connection: a certificate revoked later is refused on its next connection", async () => {
    cluster = new Cluster();
    const live = pki.path("live.crl");
    copyFileSync(emptyCrl, live);
    const a = await listener(1n, { "peer-crl-file": live });
    expect(await attempt(a, 10n, certs.revoked), "not yet revoked").toEqual({ line: undefined, delivered: true });
    copyFileSync(crl, live);
    const r = await attempt(a, 11n, certs.revoked);
    expect(r.delivered).toBe(false);
    expect(reasonOf(r.line)).toMatch(/^transport: certificate serial [0-9a-f]+ revoked$/);
  });

  it("--experimental-peer-skip-client-san-verification lets a certificate with a foreign SAN in", async () => {
    cluster = new Cluster();
    const a = await listener(1n, { "experimental-peer-skip-client-san-verification": "true" });
    expect(await attempt(a, 10n, certs.farIp)).toEqual({ line: undefined, delivered: true });
  });
});
