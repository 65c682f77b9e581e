// TLS settings as etcd 3.4's transport.TLSInfo holds them, turned into node:tls options: certificate and key, the
// trusted CA, client-certificate authentication, and etcd's Go cipher-suite names mapped to OpenSSL's.
import { readFileSync } from "node:fs";
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
    throw new TlsConfigError(
      `open ${path}: ${code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (err as Error).message}`,
    );
  }
}

/** node:tls server options for one listener (client or peer side of etcd's ServerConfig). */
export function serverTlsOptions(info: TlsInfo, cipherSuites: readonly string[] = []): tls.TlsOptions {
  if (info.certFile === "" || info.keyFile === "")
    throw new TlsConfigError("KeyFile and CertFile must both be present");
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
    throw new TlsConfigError(
      /key values mismatch/.test(text) ? "tls: private key does not match public key" : `tls: ${text}`,
    );
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
