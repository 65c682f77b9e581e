// The --peer-* TLS flags as etcd 3.4 reads them, turned into the peer transport's TLS settings.
import { join } from "node:path";
import { parseGoBool } from "../go_values.js";
import { TlsConfigError, isTlsInfoEmpty, type TlsInfo } from "../api/tls_options.js";
import { peerTransportTls, type PeerTls } from "../api/tls_verify.js";
import { selfCert, urlHosts } from "../api/tls_cert.js";

/** Go's strconv.ParseBool, as etcd's flag package reads a boolean flag's text; anything else is an error. */
function goBool(flag: string, text: string): boolean {
  const value = text === "" ? false : parseGoBool(text);
  if (value !== undefined) return value;
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
export function peerTlsFromFlags(
  values: (flag: string) => string,
  dataDir: string,
  peerUrls: readonly string[],
): PeerTls | undefined {
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
    throw new TlsConfigError(
      `TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${secure} with HTTPS scheme`,
    );
  }
  const cipherSuites = values("cipher-suites")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const skipClientSanVerify = goBool(
    "experimental-peer-skip-client-san-verification",
    values("experimental-peer-skip-client-san-verification"),
  );
  const t = peerTransportTls(info, { cipherSuites, skipClientSanVerify });
  if (!selfSigned) return t;
  return { ...t, client: { ...t.client, rejectUnauthorized: false, checkServerIdentity: () => undefined } };
}
