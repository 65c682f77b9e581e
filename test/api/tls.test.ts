// Proves core/api's TLS modules (tls_options, tls_verify, tls_cert) and core/cli/tls_flags.ts without a server: etcd's Go cipher-suite names map to OpenSSL's (an unknown one is etcd's
// start-up error, a listed suite is the only TLS 1.2 suite served, TLS 1.3 stays on); CRLs made by openssl parse to
// the revoked serials; the secure listener refuses a client without a certificate, with one of another CA, a
// revoked, an expired or a self-signed one (and picks up a new CRL without a restart), logging etcd's "rejected
// connection" wording; ALPN gives REST clients http/1.1 and gRPC-only clients h2; a verified client's CN reaches a
// grpc-js handler through the injected TLS socket; auto-TLS certificates are valid X.509 (O=etcd, P-521, SANs) and
// are reused; the --peer-* options drive the peer transport (good certs deliver, a dialer refuses a peer outside its
// allowed CN, --peer-auto-tls members with their own self-signed certificates talk; the listening side's refusals are
// proven in test/transport/peer_tls_enforcement.test.ts).
import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GO_CIPHER_SUITES, opensslCiphers, serverTlsOptions, type TlsInfo } from "../../core/api/tls_options.js";
import {
  commonNameOfCall,
  commonNameOfSocket,
  createSecureListener,
  peerTransportTls,
  revokedSerials,
} from "../../core/api/tls_verify.js";
import { selfCert } from "../../core/api/tls_cert.js";
import { peerTlsFromFlags } from "../../core/cli/tls_flags.js";
import { FilePki, LOOPBACK_SANS } from "../../harness/pki.js";
import { Cluster, WAIT_MS, msg } from "../transport/helpers.js";

/** A CA, a server cert, client certs (good, revoked, expired, self-signed), a stranger from another CA, and CRLs. */
function makeTestPki(): FilePki {
  const pki = new FilePki();
  pki.ca("ca");
  pki.ca("otherca");
  pki.leaf("server", "ca", "server", LOOPBACK_SANS);
  pki.leaf("client", "ca", "root", LOOPBACK_SANS);
  pki.leaf("revoked", "ca", "revoked", LOOPBACK_SANS);
  pki.leaf("stranger", "otherca", "stranger", LOOPBACK_SANS);
  pki.expiredLeaf("expired", "ca", "root", LOOPBACK_SANS);
  pki.selfSigned("selfsigned", "root");
  pki.crl("ca", pki.path("empty.crl"));
  pki.revoke("ca", "revoked");
  pki.crl("ca", pki.path("ca.crl"));
  return pki;
}

let pki: FilePki;
let dir: string;
const f = (name: string): string => join(dir, name);
const serial = (name: string): string =>
  new X509Certificate(readFileSync(f(name))).serialNumber.toLowerCase().replace(/^(00)+/, "");

beforeAll(() => {
  pki = makeTestPki();
  dir = pki.dir;
});
afterAll(() => pki.cleanup());

const serverInfo = (over: Partial<TlsInfo> = {}): TlsInfo => ({
  certFile: f("server.crt"),
  keyFile: f("server.key"),
  trustedCaFile: f("ca.crt"),
  clientCertAuth: true,
  crlFile: "",
  ...over,
});

interface Listening {
  readonly port: number;
  readonly rejected: string[];
  readonly accepted: tls.TLSSocket[];
  close(): Promise<void>;
}

const open: Listening[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

/** A secure listener on 127.0.0.1:0 that records refusals and answers each accepted socket with its ALPN and CN. */
async function listenSecure(
  info: TlsInfo,
  opts: {
    crlFile?: string;
    alpn?: string[];
    ciphers?: string[];
    check?: (s: tls.TLSSocket) => string | undefined;
  } = {},
): Promise<Listening> {
  const rejected: string[] = [];
  const accepted: tls.TLSSocket[] = [];
  const server = createSecureListener(
    {
      tls: serverTlsOptions(info, opts.ciphers ?? []),
      alpn: opts.alpn ?? ["h2", "http/1.1"],
      crlFile: opts.crlFile ?? "",
      onRejected: (l) => rejected.push(l),
      ...(opts.check !== undefined ? { check: opts.check } : {}),
    },
    (socket) => {
      accepted.push(socket);
      socket.end(`${String(socket.alpnProtocol)} ${commonNameOfSocket(socket) ?? "-"}`);
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const l: Listening = {
    port: (server.address() as AddressInfo).port,
    rejected,
    accepted,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  open.push(l);
  return l;
}

/** Connects with the named client certificate (or none); resolves with what the server wrote, or the error. */
function dial(
  port: number,
  cert: string | undefined,
  extra: tls.ConnectionOptions = {},
): Promise<{ ok: boolean; text: string; protocol: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({
      port,
      host: "127.0.0.1",
      servername: "localhost",
      ca: readFileSync(f("ca.crt")),
      ALPNProtocols: ["h2"],
      ...(cert !== undefined ? { cert: readFileSync(f(`${cert}.crt`)), key: readFileSync(f(`${cert}.key`)) } : {}),
      ...extra,
    });
    let text = "";
    let protocol = "";
    s.on("secureConnect", () => {
      protocol = s.getProtocol() ?? "";
    });
    s.on("data", (b: Buffer) => {
      text += b.toString();
    });
    s.on("error", (e) => resolve({ ok: false, text: e.message, protocol }));
    s.on("close", () => resolve({ ok: text !== "", text, protocol }));
  });
}

describe("cipher suites", () => {
  it("maps Go names to OpenSSL names and refuses an unknown one with etcd's text", () => {
    expect(opensslCiphers([])).toBeUndefined();
    expect(opensslCiphers(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"])).toMatch(
      /:ECDHE-RSA-AES128-GCM-SHA256$/,
    );
    expect(() => opensslCiphers(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "BOGUS"])).toThrow(
      'unexpected TLS cipher suite "BOGUS"',
    );
    // Every modern (non RC4/3DES) suite etcd accepts is one OpenSSL knows.
    const modern = Object.keys(GO_CIPHER_SUITES).filter((n) => !/RC4|3DES/.test(n));
    for (const name of modern)
      expect(() => tls.createSecureContext({ ciphers: opensslCiphers([name]) ?? "" }), name).not.toThrow();
    expect(modern.length).toBe(22);
  });

  it("serves only the listed TLS 1.2 suite, and TLS 1.3 as etcd does", async () => {
    const l = await listenSecure(serverInfo(), { ciphers: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"] });
    const tls12 = { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" } as const;
    const listed = await dial(l.port, "client", { ...tls12, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" });
    const other = await dial(l.port, "client", { ...tls12, ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384" });
    const v13 = await dial(l.port, "client");
    expect(listed).toMatchObject({ ok: true, protocol: "TLSv1.2" });
    expect(other.ok, other.text).toBe(false);
    expect(other.text).toMatch(/handshake failure/);
    expect(v13).toMatchObject({ ok: true, protocol: "TLSv1.3" });
  });
});

describe("CRL", () => {
  it("reads the revoked serials of openssl's CRLs, PEM and DER", () => {
    const pem = readFileSync(f("ca.crl"));
    const der = Buffer.from(pem.toString().replace(/-----[^-]+-----|\s/g, ""), "base64");
    expect([...revokedSerials(pem)]).toEqual([serial("revoked.crt")]);
    expect([...revokedSerials(der)]).toEqual([serial("revoked.crt")]);
    expect(revokedSerials(readFileSync(f("empty.crl"))).size).toBe(0);
    expect(() => revokedSerials(Buffer.from([0x30, 0x05, 0x02]))).toThrow(/malformed/);
  });
});

describe("secure listener", () => {
  it("accepts a client of the trusted CA and tells its CN; refuses the others with etcd's log wording", async () => {
    const l = await listenSecure(serverInfo(), { crlFile: f("ca.crl") });
    expect(await dial(l.port, "client")).toMatchObject({ ok: true, text: "h2 root" });
    const refused = await Promise.all([dial(l.port, undefined), dial(l.port, "stranger"), dial(l.port, "revoked")]);
    expect(refused.map((r) => r.ok)).toEqual([false, false, false]);
    expect(l.accepted.length).toBe(1);
    const reasons = l.rejected.map((line) => /\(error "([^"]+)"/.exec(line)?.[1]).sort();
    expect(reasons).toEqual([
      "tls: client didn't provide a certificate",
      "tls: failed to verify client certificate: x509: certificate signed by unknown authority",
      `transport: certificate serial ${serial("revoked.crt")} revoked`,
    ]);
    for (const line of l.rejected)
      expect(line).toMatch(
        /^rejected connection from "127\.0\.0\.1:\d+" \(error ".+", ServerName "(localhost)?"(, IPAddresses .+)?\)$/,
      );
    // After the handshake (the CRL check) etcd also names the certificate's SANs.
    expect(l.rejected.find((line) => line.includes("revoked"))).toMatch(
      /, IPAddresses \["127\.0\.0\.1"\], DNSNames \["localhost"\]\)$/,
    );
  });

  it("refuses an expired client certificate and a self-signed one that claims a trusted CN", async () => {
    const l = await listenSecure(serverInfo());
    expect((await Promise.all([dial(l.port, "expired"), dial(l.port, "selfsigned")])).map((r) => r.ok)).toEqual([
      false,
      false,
    ]);
    expect(l.accepted.length).toBe(0);
    expect(l.rejected.map((line) => /\(error "([^"]+)"/.exec(line)?.[1]).sort()).toEqual([
      expect.stringMatching(
        /^tls: failed to verify client certificate: x509: certificate has expired or is not yet valid: current time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ is after 2020-01-02T00:00:00Z$/,
      ),
      "tls: failed to verify client certificate: x509: certificate signed by unknown authority",
    ]);
  });

  it("re-reads the CRL for every connection, as etcd does", async () => {
    const crl = f("live.crl");
    writeFileSync(crl, readFileSync(f("empty.crl")));
    const l = await listenSecure(serverInfo(), { crlFile: crl });
    expect((await dial(l.port, "revoked")).ok).toBe(true);
    writeFileSync(crl, readFileSync(f("ca.crl")));
    expect((await dial(l.port, "revoked")).ok).toBe(false);
    expect(l.rejected.length).toBe(1);
  });

  it("without --client-cert-auth asks for no certificate and names no CN", async () => {
    const l = await listenSecure(serverInfo({ clientCertAuth: false }));
    expect(await dial(l.port, undefined)).toMatchObject({ ok: true, text: "h2 -" });
    expect(await dial(l.port, "stranger")).toMatchObject({ ok: true, text: "h2 -" });
  });

  it("gives http/1.1 to clients that offer it and h2 to gRPC clients that offer only h2", async () => {
    const l = await listenSecure(serverInfo());
    expect((await dial(l.port, "client", { ALPNProtocols: ["h2", "http/1.1"] })).text).toBe("http/1.1 root");
    expect((await dial(l.port, "client", { ALPNProtocols: ["h2"] })).text).toBe("h2 root");
    expect((await dial(l.port, "client", { ALPNProtocols: [] })).text).toBe("false root");
  });
});

describe("client CN in a gRPC handler", () => {
  it("grpc-js sees the verified certificate of an injected TLS socket", async () => {
    const server = new grpc.Server();
    const method = {
      path: "/t.T/Who",
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    };
    server.addService({ Who: method } as grpc.ServiceDefinition, {
      Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, Buffer.from(commonNameOfCall(call) ?? "-")),
    });
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const listener = createSecureListener({ tls: serverTlsOptions(serverInfo()), alpn: ["h2", "http/1.1"] }, (s) =>
      injector.injectConnection(s),
    );
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    const creds = grpc.credentials.createSsl(
      readFileSync(f("ca.crt")),
      readFileSync(f("client.key")),
      readFileSync(f("client.crt")),
    );
    const Client = grpc.makeGenericClientConstructor({ Who: method }, "T");
    const client = new Client(`127.0.0.1:${(listener.address() as AddressInfo).port}`, creds);
    try {
      const who = await new Promise<Buffer>((resolve, reject) => {
        (client as unknown as { Who(req: Buffer, cb: (e: Error | null, r?: Buffer) => void): void }).Who(
          Buffer.alloc(0),
          (e, r) => (e !== null ? reject(e) : resolve(r ?? Buffer.alloc(0))),
        );
      });
      expect(who.toString()).toBe("root");
    } finally {
      client.close();
      injector.destroy();
      listener.close();
      server.forceShutdown();
    }
  });
});

describe("auto TLS", () => {
  it("writes a valid self-signed certificate as etcd does, and reuses it", () => {
    const out = join(dir, "fixtures", "client");
    const now = new Date("2026-11-25T12:00:00Z");
    const first = selfCert(out, ["127.0.0.1", "::1", "localhost"], now);
    const pem = readFileSync(first.certFile, "utf8");
    const cert = new X509Certificate(pem);
    const key = createPrivateKey(readFileSync(first.keyFile));
    expect(readFileSync(first.keyFile, "utf8")).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    expect(cert.subject).toBe("O=etcd");
    expect(cert.issuer).toBe("O=etcd");
    expect(cert.subjectAltName).toBe("IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost");
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("secp521r1");
    expect(new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()).toBe(365 * 24 * 3600 * 1000);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    const text = execFileSync("openssl", ["x509", "-noout", "-text"], { input: pem, encoding: "utf8" });
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA512/);
    expect(selfCert(out, ["127.0.0.1"])).toEqual(first);
    expect(readFileSync(first.certFile, "utf8")).toBe(pem);
  });

  it("names an IPv6 listen address with an embedded IPv4 part as that address", () => {
    const auto = selfCert(join(dir, "fixtures", "mapped"), ["::ffff:10.1.2.3", "fe80::1:2"]);
    const cert = new X509Certificate(readFileSync(auto.certFile));
    expect(cert.checkIP("::ffff:10.1.2.3")).toBe("::ffff:10.1.2.3");
    expect(cert.checkIP("fe80::1:2")).toBe("fe80::1:2");
    expect(cert.subjectAltName?.split(", ")).toHaveLength(2);
  });

  it("serves TLS with the generated certificate to a client that trusts it", async () => {
    const auto = selfCert(join(dir, "fixtures", "auto2"), ["127.0.0.1", "localhost"]);
    const l = await listenSecure({ ...auto, trustedCaFile: "", clientCertAuth: false, crlFile: "" });
    expect(await dial(l.port, undefined, { ca: readFileSync(auto.certFile) })).toMatchObject({
      ok: true,
      text: "h2 -",
    });
  });
});

describe("peer TLS options", () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });
  const peer = (over: Partial<TlsInfo> = {}): TlsInfo =>
    serverInfo({ certFile: f("server.crt"), keyFile: f("server.key"), ...over });

  it("members with certificates of the peer CA exchange messages over https", async () => {
    cluster = new Cluster();
    const opts = peerTransportTls(peer({ allowedCn: "server" }));
    const a = await cluster.node(1n, { listenUrl: "https://127.0.0.1:0", extra: { tls: opts } });
    const b = await cluster.node(2n, { listenUrl: "https://127.0.0.1:0", extra: { tls: opts } });
    cluster.connectAll([a, b]);
    a.t.send([msg(1n, 2n, 1), msg(1n, 2n, 2)]);
    await cluster.signal.until(() => b.received.length === 2, WAIT_MS, "2 messages");
    expect(b.received.map((m) => m.index)).toEqual([1, 2]);
  });

  it("a dialer whose allowed CN the peer's certificate lacks never gets a message through", async () => {
    cluster = new Cluster();
    const a = await cluster.node(1n, { listenUrl: "https://127.0.0.1:0", extra: { tls: peerTransportTls(peer()) } });
    const picky = await cluster.node(2n, {
      listenUrl: "https://127.0.0.1:0",
      extra: { tls: peerTransportTls(peer({ allowedCn: "member-9" })) },
    });
    picky.t.addPeer(1n, [a.url]);
    picky.t.send([msg(2n, 1n, 1)]);
    await cluster.signal.until(() => picky.unreachable.length >= 2, WAIT_MS, "two failed dials");
    expect(a.received.length).toBe(0);
  });

  it("--peer-auto-tls: members with their own self-signed certificates exchange messages; no cert for https is etcd's error", async () => {
    cluster = new Cluster();
    const flags =
      (over: Record<string, string> = {}) =>
      (flag: string): string =>
        over[flag] ?? (/auth|auto-tls|skip/.test(flag) ? "false" : "");
    const auto = flags({
      "peer-auto-tls": "true",
      "peer-client-cert-auth": "true",
      "peer-trusted-ca-file": f("ca.crt"),
    });
    const urls = ["https://127.0.0.1:0"];
    const [ta, tb] = [peerTlsFromFlags(auto, join(dir, "m1"), urls), peerTlsFromFlags(auto, join(dir, "m2"), urls)];
    expect(readFileSync(join(dir, "m1", "fixtures", "peer", "cert.pem"), "utf8")).not.toBe(
      readFileSync(join(dir, "m2", "fixtures", "peer", "cert.pem"), "utf8"),
    );
    // As etcd 3.4, the self-signed certificate replaces every other --peer-* setting.
    expect(ta?.summary).toBe(
      `peerTLS: cert = ${join(dir, "m1", "fixtures", "peer", "cert.pem")}, key = ${join(dir, "m1", "fixtures", "peer", "key.pem")}, trusted-ca = , client-cert-auth = false, crl-file = `,
    );
    const a = await cluster.node(1n, { listenUrl: "https://127.0.0.1:0", extra: ta !== undefined ? { tls: ta } : {} });
    const b = await cluster.node(2n, { listenUrl: "https://127.0.0.1:0", extra: tb !== undefined ? { tls: tb } : {} });
    cluster.connectAll([a, b]);
    a.t.send([msg(1n, 2n, 7)]);
    await cluster.signal.until(() => b.received.length === 1, WAIT_MS, "1 message");
    expect(b.received[0]?.index).toBe(7);
    expect(peerTlsFromFlags(flags(), join(dir, "m3"), ["http://127.0.0.1:0"])).toBeUndefined();
    expect(() => peerTlsFromFlags(flags(), join(dir, "m3"), urls)).toThrow(
      "TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:0 with HTTPS scheme",
    );
    const both = flags({
      "peer-cert-file": f("server.crt"),
      "peer-key-file": f("server.key"),
      "peer-cert-allowed-cn": "member",
      "peer-cert-allowed-hostname": "localhost",
    });
    expect(() => peerTlsFromFlags(both, join(dir, "m3"), urls)).toThrow(
      'AllowedCN and AllowedHostname are mutually exclusive (cn="member", hostname="localhost")',
    );
  });
});
