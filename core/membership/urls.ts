// Member URLs checked as etcd 3.4 checks them (types.NewURLs over Go's net/url): the scheme is http, https, unix or
// unixs, the host is "host:port" (net.SplitHostPort must accept it), there is no path. The error texts are the
// ones etcd prints at start-up for a bad --initial-cluster, including the `parse "…": …` texts of Go's URL parser
// for the cases a user hits (a missing scheme, a bad character in the host, a missing ']', a bad port).
import { EtcdError } from "../errors.js";

const SCHEMES: ReadonlySet<string> = new Set(["http", "https", "unix", "unixs"]);

/** A URL that etcd refuses, with etcd's (Go's) text for it. */
export class MemberUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MemberUrlError";
  }
}

interface GoUrl {
  readonly scheme: string;
  readonly host: string;
  readonly path: string;
}

/** Go's url.Parse, reduced to what etcd looks at (scheme, host, path); throws with Go's error text. */
export function parseGoUrl(raw: string): GoUrl {
  const fail = (why: string): never => {
    throw new MemberUrlError(`parse ${JSON.stringify(raw)}: ${why}`);
  };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this check refuses, as Go's url.Parse
  if (/[\x00-\x1f\x7f]/.test(raw)) fail("net/url: invalid control character in URL");
  const hash = raw.indexOf("#");
  let rest = hash >= 0 ? raw.slice(0, hash) : raw;
  if (rest === "") return { scheme: "", host: "", path: "" };
  let scheme = "";
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(rest);
  if (m !== null) {
    scheme = (m[1] ?? "").toLowerCase();
    rest = rest.slice((m[1] ?? "").length + 1);
  } else if (rest.startsWith(":")) {
    fail("missing protocol scheme");
  }
  const q = rest.indexOf("?");
  if (q >= 0) rest = rest.slice(0, q);
  if (!rest.startsWith("/")) {
    if (scheme !== "") return { scheme, host: "", path: "" }; // opaque ("http:x:1"): no host
    const slash = rest.indexOf("/");
    if ((slash >= 0 ? rest.slice(0, slash) : rest).includes(":"))
      fail("first path segment in URL cannot contain colon");
    return { scheme, host: "", path: rest };
  }
  if (!rest.startsWith("//")) return { scheme, host: "", path: rest };
  const afterSlashes = rest.slice(2);
  const slash = afterSlashes.indexOf("/");
  const authority = slash >= 0 ? afterSlashes.slice(0, slash) : afterSlashes;
  const path = slash >= 0 ? afterSlashes.slice(slash) : "";
  const at = authority.lastIndexOf("@");
  const host = checkGoHost(at >= 0 ? authority.slice(at + 1) : authority, fail);
  return { scheme, host, path };
}

function checkGoHost(host: string, fail: (why: string) => never): string {
  let port = "";
  if (host.startsWith("[")) {
    const close = host.lastIndexOf("]");
    if (close < 0) fail("missing ']' in host");
    port = host.slice(close + 1);
    if (port !== "" && !/^:\d*$/.test(port)) fail(`invalid port ${JSON.stringify(port)} after host`);
  } else {
    const colon = host.lastIndexOf(":");
    if (colon >= 0) {
      port = host.slice(colon);
      if (!/^:\d*$/.test(port)) fail(`invalid port ${JSON.stringify(port)} after host`);
    }
  }
  for (const ch of host) {
    if (ch.charCodeAt(0) >= 0x80 || /[A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"%]/.test(ch)) continue;
    fail(`invalid character ${JSON.stringify(ch)} in host name`);
  }
  return host;
}

/** Whether Go's net.SplitHostPort accepts `hostport` (etcd only asks whether it fails). */
export function splitsHostPort(hostport: string): boolean {
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0 || hostport[end + 1] !== ":") return false;
    const inner = hostport.slice(1, end);
    const port = hostport.slice(end + 2);
    return !inner.includes("[") && !inner.includes("]") && !port.includes("[") && !port.includes("]");
  }
  const i = hostport.lastIndexOf(":");
  if (i < 0) return false;
  const host = hostport.slice(0, i);
  return !host.includes(":") && !hostport.includes("[") && !hostport.includes("]");
}

/**
 * etcd's types.NewURLs: each string trimmed, parsed and checked; the result normalised (scheme lower-cased) and
 * sorted, as etcd stores and hashes them. Throws MemberUrlError with etcd's text.
 */
export function parseMemberUrls(strs: readonly string[]): string[] {
  if (strs.length === 0) throw new MemberUrlError("no valid URLs given");
  const out: string[] = [];
  for (const s of strs) {
    const input = s.trim();
    const u = parseGoUrl(input);
    if (!SCHEMES.has(u.scheme)) throw new MemberUrlError(`URL scheme must be http, https, unix, or unixs: ${input}`);
    if (!splitsHostPort(u.host)) throw new MemberUrlError(`URL address does not have the form "host:port": ${input}`);
    if (u.path !== "") throw new MemberUrlError(`URL must not contain a path: ${input}`);
    const colon = input.indexOf(":");
    out.push(u.scheme + input.slice(colon));
  }
  return out.sort();
}

/** The Cluster API's check (MemberAdd, MemberUpdate): any bad URL is etcd's MEMBER_BAD_URLS. */
export function checkMemberUrls(strs: readonly string[]): string[] {
  try {
    return parseMemberUrls(strs);
  } catch (err) {
    if (err instanceof MemberUrlError) throw new EtcdError("MEMBER_BAD_URLS", err.message);
    throw err;
  }
}
