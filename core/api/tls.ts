// TLS for the client and peer listeners, as etcd 3.4's transport.TLSInfo sets it up: certificate and key, the
// trusted CA, client-certificate authentication, a CRL checked after each handshake (etcd re-reads the file for
// every connection, so a new CRL applies without a restart), etcd's Go cipher-suite names mapped to OpenSSL's,
// and --auto-tls certificates written into <data-dir>/fixtures/{client,peer} (ECDSA P-521, ecdsa-with-SHA512,
// O=etcd, one year, as etcd generates them; node:crypto makes the key and signs, a small DER writer below lays out
// the X.509 structure, so no openssl binary or npm package is needed).
//
// The verified client certificate's common name (etcd's auth uses it as the user name when --client-cert-auth
// is on) is read with `commonNameOfCall(call)` in a gRPC handler (grpc-js hands the decrypted TLS socket's peer
// certificate through call.getAuthContext(), since the listener injects the TLSSocket itself) and with
// `commonNameOfSocket(req.socket)` in an HTTP handler. Both return undefined without a verified certificate.
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { lookup } from "node:dns/promises";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type * as http2 from "node:http2";
import { isIP } from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";

/** A start-up error in the TLS settings; the message is etcd's where etcd has one. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TlsConfigError";
  }
}

/** etcd's TLSInfo: one listener's (or dialer's) certificate settings; "" means not set. */
export interface TlsInfo {
  readonly certFile: string;
  readonly keyFile: string;
  readonly trustedCaFile: string;
  readonly clientCertAuth: boolean;
  readonly crlFile: string;
  /** Peer only: the peer certificate's CN must equal this (--peer-cert-allowed-cn). */
  readonly allowedCn?: string;
  /** Peer only: the peer certificate must be valid for this host name (--peer-cert-allowed-hostname). */
  readonly allowedHostname?: string;
}

export function isTlsInfoEmpty(i: TlsInfo): boolean {
  return i.certFile === "" && i.keyFile === "";
}

/**
 * Go's crypto/tls cipher-suite names (tls.CipherSuites() and tls.InsecureCipherSuites(), which etcd 3.4.23
 * accepts) → OpenSSL names. The TLS 1.3 suites map to "" : Go ignores them in Config.CipherSuites (TLS 1.3 suites
 * are not configurable there), and so does etcd-ts (TLS 1.3 stays on with OpenSSL's defaults, as in etcd).
 */
export const GO_CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_RC4_128_SHA: "RC4-SHA",
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: "DES-CBC3-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA: "AES128-SHA",
  TLS_RSA_WITH_AES_256_CBC_SHA: "AES256-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA256: "AES128-SHA256",
  TLS_RSA_WITH_AES_128_GCM_SHA256: "AES128-GCM-SHA256",
  TLS_RSA_WITH_AES_256_GCM_SHA384: "AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: "ECDHE-ECDSA-RC4-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: "ECDHE-ECDSA-AES128-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: "ECDHE-ECDSA-AES256-SHA",
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: "ECDHE-RSA-RC4-SHA",
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: "ECDHE-RSA-DES-CBC3-SHA",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: "ECDHE-ECDSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: "ECDHE-RSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: "ECDHE-ECDSA-AES256-GCM-SHA384",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_AES_128_GCM_SHA256: "",
  TLS_AES_256_GCM_SHA384: "",
  TLS_CHACHA20_POLY1305_SHA256: "",
};

/** TLS 1.3 suites kept on when --cipher-suites lists only TLS 1.2 ones (Node would otherwise cap at TLS 1.2). */
const TLS13_SUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

/** --cipher-suites (Go names) → a node:tls `ciphers` string; undefined for an empty list (OpenSSL's defaults). */
export function opensslCiphers(goNames: readonly string[]): string | undefined {
  if (goNames.length === 0) return undefined;
  const out: string[] = [];
  for (const name of goNames) {
    const openssl = GO_CIPHER_SUITES[name];
    if (openssl === undefined) throw new TlsConfigError(`unexpected TLS cipher suite ${JSON.stringify(name)}`);
    if (openssl !== "" && !out.includes(openssl)) out.push(openssl);
  }
  return [TLS13_SUITES, ...out].join(":");
}

/** Reads a certificate, key or CA file; a failure says so as Go's os.Open does (etcd prints it as is). */
function readFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TlsConfigError(`open ${path}: ${code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (err as Error).message}`);
  }
}

/** node:tls server options for one listener (client or peer side of etcd's ServerConfig). */
export function serverTlsOptions(info: TlsInfo, cipherSuites: readonly string[] = []): tls.TlsOptions {
  if (info.certFile === "" || info.keyFile === "") throw new TlsConfigError("KeyFile and CertFile must both be present");
  const ciphers = opensslCiphers(cipherSuites);
  const opts: tls.TlsOptions = {
    cert: readFile(info.certFile),
    key: readFile(info.keyFile),
    minVersion: "TLSv1.2",
    // As Go's tls.RequireAndVerifyClientCert: no certificate, or one the CA did not sign, fails the handshake.
    requestCert: info.clientCertAuth,
    rejectUnauthorized: info.clientCertAuth,
    ...(info.trustedCaFile !== "" ? { ca: readFile(info.trustedCaFile) } : {}),
    ...(ciphers !== undefined ? { ciphers } : {}),
  };
  try {
    tls.createSecureContext(opts);
  } catch (err) {
    const text = (err as Error).message;
    // Go's tls.LoadX509KeyPair text for a key that is not the certificate's (etcd exits with it).
    throw new TlsConfigError(/key values mismatch/.test(text) ? "tls: private key does not match public key" : `tls: ${text}`);
  }
  return opts;
}

/** node:tls client options for dialing (etcd's ClientConfig): our certificate, and the CA that signs the peer's. */
export function clientTlsOptions(info: TlsInfo, cipherSuites: readonly string[] = []): tls.ConnectionOptions {
  const ciphers = opensslCiphers(cipherSuites);
  return {
    minVersion: "TLSv1.2",
    ...(info.certFile !== "" ? { cert: readFile(info.certFile) } : {}),
    ...(info.keyFile !== "" ? { key: readFile(info.keyFile) } : {}),
    ...(info.trustedCaFile !== "" ? { ca: readFile(info.trustedCaFile) } : {}),
    ...(ciphers !== undefined ? { ciphers } : {}),
  };
}

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
    for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)) out.push(new X509Certificate(m[0]));
  }
  return out;
}

/** Go's x509 error for a signature that does not verify, by the signer's key type. */
function signatureFailure(ca: X509Certificate): string {
  const type = ca.publicKey.asymmetricKeyType;
  return type === "rsa" || type === "rsa-pss" ? "crypto/rsa: verification error" : type === "ed25519" ? "x509: Ed25519 verification failure" : "x509: ECDSA verification failure";
}

/**
 * Go's "unknown authority" text. Go tries every trusted CA whose subject is the certificate's issuer and, when one
 * is found but its key did not sign (a certificate forged in a trusted CA's name), says so; OpenSSL does not
 * consider such a CA at all, so the candidate is looked for here.
 */
function unknownAuthority(socket: tls.TLSSocket, cas: readonly X509Certificate[]): string {
  const raw = socket.getPeerCertificate().raw;
  const leaf = raw !== undefined ? new X509Certificate(raw) : undefined;
  const candidate = leaf === undefined ? undefined : cas.find((ca) => ca.subject === leaf.issuer && !leaf.verify(ca.publicKey));
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
  if (/ISSUER|SELF_SIGNED|UNABLE_TO_VERIFY_LEAF|SIGNATURE_FAILURE/.test(code)) return prefix + unknownAuthority(socket, cas);
  if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/.test(code)) return prefix + outOfValidity(socket, new Date());
  return prefix + code;
}

/** Go's x509 text for a certificate used outside its validity period (RFC 3339 times, seconds, UTC). */
function outOfValidity(socket: tls.TLSSocket, now: Date): string {
  const cert = socket.getPeerCertificate();
  const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");
  const [from, to] = [new Date(cert.valid_from), new Date(cert.valid_to)];
  const detail = now < from ? `current time ${rfc3339(now)} is before ${rfc3339(from)}` : `current time ${rfc3339(now)} is after ${rfc3339(to)}`;
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
  if (/certificate verify failed|unknown ca|unable to get/i.test(text) || code === "ERR_SSL_CERTIFICATE_VERIFY_FAILED") {
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
  const options: tls.TlsOptions = { ...o.tls, rejectUnauthorized: false, ALPNCallback: ({ protocols }) => chooseAlpn(o.alpn, protocols) };
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

// ---------------------------------------------------------------------------------------------------------------
// A minimal DER reader (CRLs) and writer (auto-TLS certificates).

interface Tlv {
  readonly tag: number;
  /** The value bytes. */
  readonly value: Buffer;
  /** Offset just past this element. */
  readonly end: number;
}

function readTlv(buf: Buffer, at: number): Tlv {
  const tag = buf[at];
  let len = buf[at + 1];
  if (tag === undefined || len === undefined) throw new Error(`x509: malformed DER at ${at}: truncated header`);
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error(`x509: malformed DER at ${at}: length of ${n} bytes`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] ?? 0);
    p += n;
  }
  if (p + len > buf.length) throw new Error(`x509: malformed DER at ${at}: length ${len} past end ${buf.length}`);
  return { tag, value: buf.subarray(p, p + len), end: p + len };
}

function children(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let p = 0; p < buf.length;) {
    const t = readTlv(buf, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/;

/**
 * The revoked serial numbers of a CRL (PEM or DER, as Go's x509.ParseCRL reads it), in normalSerial form. Like
 * etcd, only the list is used: the CRL's signature and dates are not checked.
 */
export function revokedSerials(crl: Buffer): Set<string> {
  const pem = PEM_CRL.exec(crl.toString("latin1"));
  const der = pem?.[1] !== undefined ? Buffer.from(pem[1].replace(/\s+/g, ""), "base64") : crl;
  const top = readTlv(der, 0);
  const tbs = top.tag === 0x30 ? children(top.value)[0] : undefined;
  if (tbs === undefined || tbs.tag !== 0x30) throw new Error("x509: malformed crl");
  const fields = children(tbs.value);
  // TBSCertList: version? signature issuer thisUpdate nextUpdate? revokedCertificates? [0] extensions?
  let i = fields[0]?.tag === 0x02 ? 4 : 3;
  const next = fields[i];
  if (next !== undefined && (next.tag === 0x17 || next.tag === 0x18)) i++;
  const list = fields[i];
  const out = new Set<string>();
  if (list === undefined || list.tag !== 0x30) return out;
  for (const entry of children(list.value)) {
    const serial = children(entry.value)[0];
    if (serial?.tag === 0x02) out.add(normalSerial(serial.value.toString("hex")));
  }
  return out;
}

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [a * 40 + b];
  for (const v of rest) {
    const groups = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) groups.unshift((x & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

/** A positive INTEGER from big-endian magnitude bytes. */
function integer(magnitude: Buffer): Buffer {
  let m = magnitude;
  while (m.length > 1 && m[0] === 0 && ((m[1] ?? 0) & 0x80) === 0) m = m.subarray(1);
  return der(0x02, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2), "ascii")) : der(0x18, Buffer.from(iso, "ascii"));
}

const OID = {
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  organization: "2.5.4.10",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der(0x30, oid(id), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), der(0x04, value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  const full = new URL(`http://[${ip}]`).hostname.slice(1, -1);
  const [head = "", tail = ""] = full.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === "" ? [] : tail.split(":");
  const groups = full.includes("::") ? [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t] : h;
  return Buffer.from(groups.flatMap((g) => { const v = parseInt(g, 16); return [v >> 8, v & 0xff]; }));
}

export interface SelfCert {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * etcd's --auto-tls / --peer-auto-tls: a self-signed certificate for `hosts` (IPs become IP SANs, names DNS SANs)
 * written to dir/cert.pem and dir/key.pem (0600), valid for one year. Files already there are reused, as etcd
 * reuses them across restarts.
 */
export function selfCert(dir: string, hosts: readonly string[], now: Date = new Date()): SelfCert {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-521" });
  const name = der(0x30, der(0x31, der(0x30, oid(OID.organization), der(0x0c, Buffer.from("etcd")))));
  const alg = der(0x30, oid(OID.ecdsaWithSha512));
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const sans = [...new Set(hosts)].map((h) => (isIP(h) !== 0 ? der(0x87, ipBytes(h)) : der(0x82, Buffer.from(h, "ascii"))));
  const extensions = [
    // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b1010_0000, 5 unused bits.
    extension(OID.keyUsage, true, der(0x03, Buffer.from([0x05, 0xa0]))),
    extension(OID.extKeyUsage, false, der(0x30, oid(OID.serverAuth))),
    extension(OID.basicConstraints, true, der(0x30)),
    ...(sans.length > 0 ? [extension(OID.subjectAltName, false, der(0x30, ...sans))] : []),
  ];
  const tbs = der(0x30,
    der(0xa0, integer(Buffer.from([2]))),
    integer(randomBytes(16)),
    alg, name, der(0x30, time(now), time(notAfter)), name,
    publicKey.export({ type: "spki", format: "der" }),
    der(0xa3, der(0x30, ...extensions)),
  );
  const signature = sign("sha512", tbs, privateKey);
  const cert = der(0x30, tbs, alg, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const pem = `-----BEGIN CERTIFICATE-----\n${cert.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
  new X509Certificate(pem); // throws if the layout is wrong, before anything is written
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
  writeFileSync(certFile, pem, { mode: 0o644 });
  return { certFile, keyFile };
}

/** The hosts of listen URLs (for selfCert's SANs), without brackets. */
export function urlHosts(urls: readonly string[]): string[] {
  return urls.map((u) => new URL(u).hostname.replace(/^\[(.*)\]$/, "$1")).filter((h) => h !== "");
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
  (cert.subjectaltname ?? "").split(", ").filter((x) => x.startsWith(prefix)).map((x) => x.slice(prefix.length));

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
    return { ok: false, err: code === "ENOTFOUND" || code === "ENODATA" ? `lookup ${name}: no such host` : (err as Error).message };
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
    throw new TlsConfigError(`AllowedCN and AllowedHostname are mutually exclusive (cn=${JSON.stringify(info.allowedCn)}, hostname=${JSON.stringify(info.allowedHostname)})`);
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
    const sync = (info.clientCertAuth ? allowedPeer(info, socket.getPeerCertificate()) : undefined) ?? crlRejection(info.crlFile, socket);
    const reason = sync ?? (opts.skipClientSanVerify === true ? undefined : await sanRejection(socket));
    return reason === undefined ? undefined : rejectedLine(socket, reason, true);
  };
  const handshakeFailure = (socket: tls.TLSSocket, err: Error): string => rejectedLine(socket, handshakeFailureReason(err));
  const summary = `peerTLS: cert = ${info.certFile}, key = ${info.keyFile}, trusted-ca = ${info.trustedCaFile}, ` +
    `client-cert-auth = ${String(info.clientCertAuth)}, crl-file = ${info.crlFile}`;
  return { server: server as http2.SecureServerOptions, client: { ...client, checkServerIdentity }, refuseInbound, handshakeFailure, summary };
}

/** Go's strconv.ParseBool, as etcd's flag package reads a boolean flag's text; anything else is an error. */
function goBool(flag: string, text: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["", "0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  throw new TlsConfigError(`invalid boolean value ${JSON.stringify(text)} for -${flag}: parse error`);
}

/**
 * The --peer-* flags as etcd 3.4 reads them, for PeerTransport's `tls` option: `values(flag)` gives each flag's text
 * (its default when unset), `peerUrls` are --listen-peer-urls. Undefined when no peer TLS is configured (http://
 * and unix:// peers). With --peer-auto-tls and no certificate given, a self-signed one goes to
 * <data-dir>/fixtures/peer and, as in etcd, it replaces every other --peer-* setting: no client-certificate
 * authentication, and peers' certificates are not verified (each member signs its own, so there is no CA to check
 * against). An https/unixs peer URL without certificates, or both allow-lists set, is etcd's start-up error
 * (TlsConfigError with etcd's text).
 */
export function peerTlsFromFlags(values: (flag: string) => string, dataDir: string, peerUrls: readonly string[]): PeerTls | undefined {
  const secure = peerUrls.find((u) => u.startsWith("https://") || u.startsWith("unixs://"));
  let info: TlsInfo = {
    certFile: values("peer-cert-file"),
    keyFile: values("peer-key-file"),
    trustedCaFile: values("peer-trusted-ca-file"),
    clientCertAuth: goBool("peer-client-cert-auth", values("peer-client-cert-auth")),
    crlFile: values("peer-crl-file"),
    allowedCn: values("peer-cert-allowed-cn"),
    allowedHostname: values("peer-cert-allowed-hostname"),
  };
  const selfSigned = goBool("peer-auto-tls", values("peer-auto-tls")) && isTlsInfoEmpty(info);
  if (selfSigned) {
    const cert = selfCert(join(dataDir, "fixtures", "peer"), urlHosts(peerUrls));
    info = { ...cert, trustedCaFile: "", clientCertAuth: false, crlFile: "" };
  }
  if (isTlsInfoEmpty(info)) {
    if (secure === undefined) return undefined;
    throw new TlsConfigError(`TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${secure} with HTTPS scheme`);
  }
  const cipherSuites = values("cipher-suites").split(",").map((s) => s.trim()).filter((s) => s !== "");
  const skipClientSanVerify = goBool("experimental-peer-skip-client-san-verification", values("experimental-peer-skip-client-san-verification"));
  const t = peerTransportTls(info, { cipherSuites, skipClientSanVerify });
  if (!selfSigned) return t;
  return { ...t, client: { ...t.client, rejectUnauthorized: false, checkServerIdentity: () => undefined } };
}
