// Verifying the other side of a TLS connection, as etcd 3.4 does: the secure listener (client-certificate
// authentication with Go's refusal reasons, a CRL re-read for every connection so a new one applies without a
// restart, an after-handshake allow-list check), the peer listener's checks (allowed CN / host name, the SAN check
// against the connecting address), and the verified certificate's common name, which etcd's auth uses as the user
// name when --client-cert-auth is on: `commonNameOfCall(call)` in a gRPC handler (grpc-js hands the decrypted TLS
// socket's peer certificate through call.getAuthContext(), since the listener injects the TLSSocket itself) and
// `commonNameOfSocket(req.socket)` in an HTTP handler. Both return undefined without a verified certificate.
import { X509Certificate } from "node:crypto";
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import type * as http2 from "node:http2";
import { isIP } from "node:net";
import * as tls from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList } from "@peculiar/asn1-x509";
import { TlsConfigError, clientTlsOptions, serverTlsOptions, type TlsInfo } from "./tls_options.js";

// ---------------------------------------------------------------------------------------------------------------
// The secure listener.

export interface SecureListenerOptions {
  readonly tls: tls.TlsOptions;
  /** ALPN protocols offered, in preference order (the client port: h2 then http/1.1). */
  readonly alpn: readonly string[];
  /** --client-crl-file / --peer-crl-file, re-read per connection as etcd does; "" for none. */
  readonly crlFile?: string;
  /** Extra check after the handshake (peer allowed CN / hostname); returns why the peer is refused. */
  readonly check?: (socket: tls.TLSSocket) => string | undefined;
  /** A refused connection, in etcd's words (embed/config_logging.go: "rejected connection"). */
  readonly onRejected?: (line: string) => void;
}

/** The certificates of a PEM bundle (node:tls `ca` option: one or several buffers or strings). */
export function pemCertificates(ca: tls.SecureContextOptions["ca"]): X509Certificate[] {
  const parts = ca === undefined ? [] : Array.isArray(ca) ? ca : [ca];
  const out: X509Certificate[] = [];
  for (const part of parts) {
    const text = typeof part === "string" ? part : Buffer.from(part).toString("latin1");
    for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g))
      out.push(new X509Certificate(m[0]));
  }
  return out;
}

/** Go's x509 error for a signature that does not verify, by the signer's key type. */
function signatureFailure(ca: X509Certificate): string {
  const type = ca.publicKey.asymmetricKeyType;
  return type === "rsa" || type === "rsa-pss"
    ? "crypto/rsa: verification error"
    : type === "ed25519"
      ? "x509: Ed25519 verification failure"
      : "x509: ECDSA verification failure";
}

/**
 * Go's "unknown authority" text. Go tries every trusted CA whose subject is the certificate's issuer and, when one
 * is found but its key did not sign (a certificate forged in a trusted CA's name), says so; OpenSSL does not
 * consider such a CA at all, so the candidate is looked for here.
 */
function unknownAuthority(socket: tls.TLSSocket, cas: readonly X509Certificate[]): string {
  const raw = socket.getPeerCertificate().raw;
  const leaf = raw !== undefined ? new X509Certificate(raw) : undefined;
  const candidate =
    leaf === undefined ? undefined : cas.find((ca) => ca.subject === leaf.issuer && !leaf.verify(ca.publicKey));
  if (candidate === undefined) return "certificate signed by unknown authority";
  const cn = /^CN=(.*)$/m.exec(candidate.subject)?.[1] ?? "";
  return `certificate signed by unknown authority (possibly because of ${JSON.stringify(signatureFailure(candidate))} while trying to verify candidate authority certificate ${JSON.stringify(cn)})`;
}

/** Why a client certificate did not verify, in Go's words (what etcd logs for the same client). */
function unauthorizedReason(socket: tls.TLSSocket, cas: readonly X509Certificate[]): string | undefined {
  if (socket.authorized) return undefined;
  if (socket.getPeerCertificate().raw === undefined) return "tls: client didn't provide a certificate";
  const code = String(socket.authorizationError);
  const prefix = "tls: failed to verify client certificate: x509: ";
  if (/ISSUER|SELF_SIGNED|UNABLE_TO_VERIFY_LEAF|SIGNATURE_FAILURE/.test(code))
    return prefix + unknownAuthority(socket, cas);
  if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/.test(code)) return prefix + outOfValidity(socket, new Date());
  return prefix + code;
}

/** Go's x509 text for a certificate used outside its validity period (RFC 3339 times, seconds, UTC). */
function outOfValidity(socket: tls.TLSSocket, now: Date): string {
  const cert = socket.getPeerCertificate();
  const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");
  const [from, to] = [new Date(cert.valid_from), new Date(cert.valid_to)];
  const detail =
    now < from
      ? `current time ${rfc3339(now)} is before ${rfc3339(from)}`
      : `current time ${rfc3339(now)} is after ${rfc3339(to)}`;
  return `certificate has expired or is not yet valid: ${detail}`;
}

/**
 * The server's ALPN choice: http/1.1 when the client offers it (curl, browsers, Go's net/http: REST clients reach
 * node:http, since grpc-js serves only gRPC over h2), else h2 (gRPC clients offer only h2).
 */
function chooseAlpn(ours: readonly string[], offered: readonly string[]): string | undefined {
  if (ours.includes("http/1.1") && offered.includes("http/1.1")) return "http/1.1";
  return ours.find((p) => offered.includes(p));
}

/** Go's wording for why a handshake failed, from OpenSSL's error (what etcd logs for the same client). */
export function handshakeFailureReason(err: Error & { code?: string }): string {
  const code = err.code ?? "";
  const text = err.message;
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" || /peer did not return a certificate/i.test(text)) {
    return "tls: client didn't provide a certificate";
  }
  if (
    /certificate verify failed|unknown ca|unable to get/i.test(text) ||
    code === "ERR_SSL_CERTIFICATE_VERIFY_FAILED"
  ) {
    return "tls: failed to verify client certificate: x509: certificate signed by unknown authority";
  }
  if (/no shared cipher/i.test(text)) return "tls: no cipher suite supported by both client and server";
  if (/wrong version number|http request/i.test(text)) return "tls: first record does not look like a TLS handshake";
  return `tls: ${text}`;
}

/** Go's %q of a []string: ["a" "b"]. */
const goQuoted = (xs: readonly string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(" ")}]`;

/**
 * etcd 3.4's line for a refused connection (capnslog wording; zap logs the same fields). A refusal after the
 * handshake (CRL, allowed CN) also names the certificate's IP and DNS SANs, as etcd does.
 */
function rejectedLine(socket: tls.TLSSocket, reason: string, afterHandshake = false): string {
  const remote = `${socket.remoteAddress ?? ""}:${socket.remotePort ?? ""}`;
  const serverName = (socket as tls.TLSSocket & { servername?: string | false }).servername;
  const head = `rejected connection from ${JSON.stringify(remote)} (error ${JSON.stringify(reason)}, ServerName ${JSON.stringify(typeof serverName === "string" ? serverName : "")}`;
  if (!afterHandshake) return head + ")";
  const sans = (socket.getPeerCertificate().subjectaltname ?? "").split(", ");
  const of = (prefix: string): string[] => sans.filter((x) => x.startsWith(prefix)).map((x) => x.slice(prefix.length));
  return `${head}, IPAddresses ${goQuoted(of("IP Address:"))}, DNSNames ${goQuoted(of("DNS:"))})`;
}

/**
 * A TLS listener that calls `onSecure` with each socket whose handshake, certificate verification, CRL check and
 * extra check passed; the others are logged as etcd logs them and closed. The client certificate is verified here
 * rather than by node:tls's rejectUnauthorized (which closes the socket without saying why). tls.Server is a
 * net.Server: listen() and close() as usual.
 */
export function createSecureListener(o: SecureListenerOptions, onSecure: (socket: tls.TLSSocket) => void): tls.Server {
  const verify = o.tls.rejectUnauthorized === true && o.tls.requestCert === true;
  const options: tls.TlsOptions = {
    ...o.tls,
    rejectUnauthorized: false,
    ALPNCallback: ({ protocols }) => chooseAlpn(o.alpn, protocols),
  };
  const cas = verify ? pemCertificates(o.tls.ca) : [];
  const server = tls.createServer(options, (socket) => {
    const unauthorized = verify ? unauthorizedReason(socket, cas) : undefined;
    const reason = unauthorized ?? crlRejection(o.crlFile ?? "", socket) ?? o.check?.(socket);
    if (reason !== undefined) {
      o.onRejected?.(rejectedLine(socket, reason, unauthorized === undefined));
      socket.destroy();
      return;
    }
    onSecure(socket);
  });
  server.on("tlsClientError", (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    // A client that connected and left without a handshake (a port probe) is not worth a warning.
    if ((err as { code?: string }).code === "ECONNRESET") return;
    o.onRejected?.(rejectedLine(socket, handshakeFailureReason(err)));
  });
  return server;
}

// ---------------------------------------------------------------------------------------------------------------
// Peer certificate: common name (auth uses it as the user), CRL.

function cnOf(subject: unknown): string | undefined {
  const cn = (subject as { CN?: string | string[] } | undefined)?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** The CN of a verified client certificate on an HTTP request's socket, or undefined. */
export function commonNameOfSocket(socket: unknown): string | undefined {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return undefined;
  const cn = cnOf(socket.getPeerCertificate().subject);
  return cn === "" ? undefined : cn;
}

interface WithAuthContext {
  getAuthContext?(): { sslPeerCertificate?: { subject?: unknown } } | null;
}

/** The CN of the verified client certificate of a gRPC call (grpc-js ServerUnaryCall and friends), or undefined. */
export function commonNameOfCall(call: WithAuthContext): string | undefined {
  const cn = cnOf(call.getAuthContext?.()?.sslPeerCertificate?.subject);
  return cn === "" ? undefined : cn;
}

/** Serial numbers as Go's big.Int.Bytes() in hex: lower case, no leading zero bytes. */
function normalSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^(00)+/, "");
  return s === "" ? "00" : s;
}

/** Why the peer's certificates are refused by the CRL at `crlFile`, or undefined ("" = no CRL). */
function crlRejection(crlFile: string, socket: tls.TLSSocket): string | undefined {
  if (crlFile === "") return undefined;
  let revoked: Set<string>;
  try {
    revoked = revokedSerials(readFileSync(crlFile));
  } catch (err) {
    return `transport: ${(err as Error).message}`;
  }
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert !== undefined && cert.serialNumber !== undefined && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    const serial = normalSerial(cert.serialNumber);
    if (revoked.has(serial)) return `transport: certificate serial ${serial} revoked`;
    cert = cert.issuerCertificate as tls.DetailedPeerCertificate | undefined;
  }
  return undefined;
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/;

/**
 * The revoked serial numbers of a CRL (PEM or DER, as Go's x509.ParseCRL reads it), in normalSerial form. Like
 * etcd, only the list is used: the CRL's signature and dates are not checked.
 */
export function revokedSerials(crl: Buffer): Set<string> {
  const pem = PEM_CRL.exec(crl.toString("latin1"));
  const der = pem?.[1] !== undefined ? Buffer.from(pem[1].replace(/\s+/g, ""), "base64") : crl;
  let list: CertificateList;
  try {
    list = AsnConvert.parse(der, CertificateList);
  } catch (err) {
    throw new Error(`x509: malformed crl: ${(err as Error).message}`);
  }
  const out = new Set<string>();
  for (const entry of list.tbsCertList.revokedCertificates ?? []) {
    out.add(normalSerial(Buffer.from(entry.userCertificate).toString("hex")));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Peer TLS: the options core/transport's TransportTls takes (structurally; core/api does not import transport).

/** How long the peer SAN check may spend resolving a certificate's DNS names (then the connection is refused). */
export const PEER_SAN_LOOKUP_TIMEOUT_MS = 5_000;

export interface PeerTls {
  readonly server: http2.SecureServerOptions;
  readonly client: http2.SecureClientSessionOptions;
  /**
   * The listening side's checks after each handshake, in etcd 3.4's order: a verified certificate (with
   * --peer-client-cert-auth), the allowed CN / host name, the CRL (re-read per connection), and the SAN check (the
   * certificate must name the address the peer connects from). Resolves to etcd's "rejected connection" line, or
   * undefined to accept. PeerTransport calls it and closes a refused socket before HTTP/2 starts.
   */
  readonly refuseInbound: (socket: tls.TLSSocket) => Promise<string | undefined>;
  /** A failed handshake as etcd logs it. */
  readonly handshakeFailure: (socket: tls.TLSSocket, err: Error) => string;
  /** etcd's start-up line for these settings ("peerTLS: cert = …, client-cert-auth = …, crl-file = …"). */
  readonly summary: string;
}

const sansOf = (cert: tls.PeerCertificate, prefix: "IP Address:" | "DNS:"): string[] =>
  (cert.subjectaltname ?? "")
    .split(", ")
    .filter((x) => x.startsWith(prefix))
    .map((x) => x.slice(prefix.length));

/**
 * Go's x509 VerifyHostname, as etcd applies --peer-cert-allowed-hostname and --client-cert-allowed-hostname: an IP
 * must be one of the IP SANs, a name one of the DNS SANs (wildcards as RFC 6125); the CN is never used (Go ≥ 1.15).
 */
function certHasHost(cert: tls.PeerCertificate, host: string): boolean {
  if (cert.raw === undefined) return false;
  const x509 = new X509Certificate(cert.raw);
  return isIP(host) !== 0 ? x509.checkIP(host) !== undefined : x509.checkHost(host, { subject: "never" }) !== undefined;
}

/** etcd's VerifyPeerCertificate: the peer's certificate must carry the allowed CN (or the allowed host name). */
function allowedPeer(info: TlsInfo, cert: tls.PeerCertificate): string | undefined {
  const cnWanted = info.allowedCn ?? "";
  const hostWanted = info.allowedHostname ?? "";
  if (cnWanted === "" && hostWanted === "") return undefined;
  if (cnWanted !== "" && cnOf(cert.subject) === cnWanted) return undefined;
  if (hostWanted !== "" && certHasHost(cert, hostWanted)) return undefined;
  return "client certificate authentication failed";
}

/**
 * The after-handshake check of --client-cert-allowed-hostname (and of the peer allow-lists): undefined when no
 * allow-list is set. A refused client is logged with etcd's "client certificate authentication failed".
 */
export function allowedCertCheck(info: TlsInfo): ((socket: tls.TLSSocket) => string | undefined) | undefined {
  if ((info.allowedCn ?? "") === "" && (info.allowedHostname ?? "") === "") return undefined;
  return (socket) => allowedPeer(info, socket.getPeerCertificate());
}

/** node's "::ffff:1.2.3.4" for an IPv4 peer on a dual-stack socket is Go's "1.2.3.4". */
const goRemoteHost = (addr: string): string => (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(addr) ? addr.slice(7) : addr);

/** Whether `name` resolves to `host` (Go's net.LookupIP in etcd's isHostInDNS); a failure says why, as Go does. */
async function resolvesTo(name: string, host: string): Promise<{ ok: boolean; err?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lookup ${name}: i/o timeout`)), PEER_SAN_LOOKUP_TIMEOUT_MS);
    timer.unref();
  });
  try {
    const addrs = await Promise.race([lookup(name, { all: true }), timeout]);
    return { ok: addrs.some((a) => goRemoteHost(a.address) === host) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      err: code === "ENOTFOUND" || code === "ENODATA" ? `lookup ${name}: no such host` : (err as Error).message,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * etcd 3.4's SAN check on the peer listener (--experimental-peer-skip-client-san-verification turns it off): a
 * client certificate that names IPs or DNS names must name the address the connection comes from, directly or
 * through DNS. A certificate without SANs passes; so does a unix-socket peer (no remote address to match, where
 * Go's SplitHostPort would refuse every certificate with SANs).
 */
async function sanRejection(socket: tls.TLSSocket): Promise<string | undefined> {
  const cert = socket.getPeerCertificate();
  const remote = socket.remoteAddress;
  if (cert.raw === undefined || remote === undefined) return undefined;
  const ips = sansOf(cert, "IP Address:");
  const names = sansOf(cert, "DNS:");
  if (ips.length === 0 && names.length === 0) return undefined;
  const host = goRemoteHost(remote);
  if (ips.length > 0) {
    if (certHasHost(cert, host)) return undefined;
    if (names.length === 0) return `x509: certificate is valid for ${ips.join(", ")}, not ${host}`;
  }
  let lastErr: string | undefined;
  for (const name of names) {
    const r = await resolvesTo(name, host);
    if (r.ok) return undefined;
    lastErr = r.err ?? lastErr;
  }
  return `tls: ${JSON.stringify(host)} does not match any of DNSNames ${goQuoted(names)}${lastErr !== undefined ? ` (${lastErr})` : ""}`;
}

export interface PeerTlsOptions {
  /** --cipher-suites (etcd applies the one list to client and peer TLS). */
  readonly cipherSuites?: readonly string[];
  /** --experimental-peer-skip-client-san-verification. */
  readonly skipClientSanVerify?: boolean;
}

/**
 * --peer-* settings → the TLS options of the peer listener and of sessions to peers. With --peer-client-cert-auth
 * the listener demands a certificate signed by --peer-trusted-ca-file (checked in refuseInbound, so a refusal is
 * logged with Go's reason); the dialing side always verifies the peer's certificate against that CA (or the
 * system's when none is given) and, with an allowed CN / host name, refuses a peer whose certificate carries
 * neither (etcd's VerifyPeerCertificate applies in both directions).
 */
export function peerTransportTls(info: TlsInfo, opts: PeerTlsOptions = {}): PeerTls {
  if ((info.allowedCn ?? "") !== "" && (info.allowedHostname ?? "") !== "") {
    throw new TlsConfigError(
      `AllowedCN and AllowedHostname are mutually exclusive (cn=${JSON.stringify(info.allowedCn)}, hostname=${JSON.stringify(info.allowedHostname)})`,
    );
  }
  const cipherSuites = opts.cipherSuites ?? [];
  const server: tls.TlsOptions = { ...serverTlsOptions(info, cipherSuites), rejectUnauthorized: false };
  const client = clientTlsOptions(info, cipherSuites);
  const cas = pemCertificates(server.ca);
  const checkServerIdentity = (host: string, cert: tls.PeerCertificate): Error | undefined => {
    const bad = tls.checkServerIdentity(host, cert);
    if (bad !== undefined) return bad;
    const refused = allowedPeer(info, cert);
    return refused === undefined ? undefined : new Error(refused);
  };
  const refuseInbound = async (socket: tls.TLSSocket): Promise<string | undefined> => {
    const unauthorized = info.clientCertAuth ? unauthorizedReason(socket, cas) : undefined;
    if (unauthorized !== undefined) return rejectedLine(socket, unauthorized);
    const sync =
      (info.clientCertAuth ? allowedPeer(info, socket.getPeerCertificate()) : undefined) ??
      crlRejection(info.crlFile, socket);
    const reason = sync ?? (opts.skipClientSanVerify === true ? undefined : await sanRejection(socket));
    return reason === undefined ? undefined : rejectedLine(socket, reason, true);
  };
  const handshakeFailure = (socket: tls.TLSSocket, err: Error): string =>
    rejectedLine(socket, handshakeFailureReason(err));
  const summary =
    `peerTLS: cert = ${info.certFile}, key = ${info.keyFile}, trusted-ca = ${info.trustedCaFile}, ` +
    `client-cert-auth = ${String(info.clientCertAuth)}, crl-file = ${info.crlFile}`;
  return {
    server: server as http2.SecureServerOptions,
    client: { ...client, checkServerIdentity },
    refuseInbound,
    handshakeFailure,
    summary,
  };
}
