// A TLS alert a peer sent us, in Go's words: etcd logs a refused handshake as "remote error: tls: <alert>" (Go's
// crypto/tls names of the alerts), where OpenSSL reports "sslv3 alert bad certificate ... SSL alert number 42".
// Members and the tools that watch their logs match on Go's words.

/** Go crypto/tls's text for each alert number. */
const GO_ALERT_TEXT: Readonly<Record<number, string>> = {
  0: "close notify",
  10: "unexpected message",
  20: "bad record MAC",
  21: "decryption failed",
  22: "record overflow",
  30: "decompression failure",
  40: "handshake failure",
  42: "bad certificate",
  43: "unsupported certificate",
  44: "revoked certificate",
  45: "expired certificate",
  46: "unknown certificate",
  47: "illegal parameter",
  48: "unknown certificate authority",
  49: "access denied",
  50: "error decoding message",
  51: "error decrypting message",
  70: "protocol version not supported",
  71: "insufficient security level",
  80: "internal error",
  86: "inappropriate fallback",
  90: "user canceled",
  100: "no renegotiation",
  109: "missing extension",
  110: "unsupported extension",
  112: "unrecognized name",
  116: "certificate required",
  120: "no application protocol",
};

/** "remote error: tls: bad certificate" for an error carrying a TLS alert from the peer; undefined otherwise. */
export function remoteTlsAlert(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const n = /SSL alert number (\d+)/.exec(err.message)?.[1];
  if (n === undefined) return undefined;
  const alert = Number(n);
  return `remote error: tls: ${GO_ALERT_TEXT[alert] ?? `alert(${alert})`}`;
}

/** An error's text as etcd would log it: a peer's TLS alert in Go's words, anything else as it is. */
export function goErrorText(err: unknown): string {
  return remoteTlsAlert(err) ?? (err instanceof Error ? err.message : String(err));
}
