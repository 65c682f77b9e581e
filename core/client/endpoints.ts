// Endpoint strings as etcd's clients take them: "host:port", "http://host:port", "https://host:port",
// "unix://path". Each becomes a grpc-js target plus whether it needs TLS.

export interface Endpoint {
  /** The string the user gave, kept for error messages. */
  readonly raw: string;
  /** The grpc-js target ("127.0.0.1:2379", "unix:/run/etcd.sock"). */
  readonly target: string;
  readonly secure: boolean;
}

/** parseEndpoint validates one endpoint string; a malformed one throws with the value passed. */
export function parseEndpoint(raw: string): Endpoint {
  const s = raw.trim();
  if (s.length === 0) throw new Error(`endpoint is empty (got ${JSON.stringify(raw)})`);
  if (s.startsWith("unix://") || s.startsWith("unixs://")) {
    const path = s.slice(s.indexOf("://") + 3);
    if (path.length === 0) throw new Error(`unix endpoint has no path: ${JSON.stringify(raw)}`);
    return { raw, target: `unix:${path}`, secure: s.startsWith("unixs://") };
  }
  let secure = false;
  let hostPort = s;
  const scheme = /^([a-z]+):\/\//.exec(s);
  if (scheme !== null) {
    if (scheme[1] !== "http" && scheme[1] !== "https") {
      throw new Error(`endpoint scheme must be http, https or unix: ${JSON.stringify(raw)}`);
    }
    secure = scheme[1] === "https";
    hostPort = s.slice(scheme[0].length).replace(/\/+$/, "");
  }
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(hostPort);
  if (m === null) throw new Error(`endpoint must be host:port: ${JSON.stringify(raw)}`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`endpoint port out of range: ${JSON.stringify(raw)}`);
  return { raw, target: hostPort, secure };
}

/** parseEndpoints validates a non-empty list of endpoints. */
export function parseEndpoints(raw: readonly string[]): Endpoint[] {
  if (raw.length === 0) throw new Error("endpoints list is empty");
  return raw.map(parseEndpoint);
}
