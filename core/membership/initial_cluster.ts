// --initial-cluster as etcd 3.4 reads it at bootstrap: "name=url,name=url2,…" (a name may repeat to list several
// peer URLs), checked in etcd's order — every URL parses (types.NewURLsMap), the local name is present, its URLs
// equal --initial-advertise-peer-urls, no URL appears twice — then each member's id from its sorted peer URLs and
// the cluster token (ids.ts) and the cluster id from the member ids. Error messages are the text etcd logs after
// "etcdmain: ", checked against real etcd 3.4.23 in test/membership/initial_cluster_etcd.test.ts.
// Known difference: etcd resolves host names before comparing advertise URLs (localhost = 127.0.0.1); etcd-ts compares
// the URL strings.
import { computeClusterId, computeMemberId } from "./ids.js";
import type { Member } from "./member_codec.js";
import { MemberUrlError, parseMemberUrls } from "./urls.js";

export const InitialClusterErrorKind = {
  BadUrl: "BAD_URL",
  LocalNameMissing: "LOCAL_NAME_MISSING",
  AdvertiseMismatch: "ADVERTISE_MISMATCH",
  DuplicateUrl: "DUPLICATE_URL",
  Empty: "EMPTY",
} as const;
export type InitialClusterErrorKind = (typeof InitialClusterErrorKind)[keyof typeof InitialClusterErrorKind];

/** A start-up refusal; `message` is etcd's text, `kind` is what callers branch on. */
export class InitialClusterError extends Error {
  constructor(
    readonly kind: InitialClusterErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "InitialClusterError";
  }
}

export interface LocalMember {
  /** --name */
  readonly name: string;
  /** --initial-advertise-peer-urls */
  readonly advertisePeerUrls: readonly string[];
}

/** name → sorted peer URLs, in first-seen name order. */
export type UrlsMap = ReadonlyMap<string, readonly string[]>;

/** etcd's URLsMap parse: comma-separated pairs, empty pairs skipped, a pair without "=" is a name with URL "". */
export function parseUrlsMap(initialCluster: string): UrlsMap {
  const raw = new Map<string, string[]>();
  for (const pair of initialCluster.split(",")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = eq >= 0 ? pair.slice(0, eq) : pair;
    const url = eq >= 0 ? pair.slice(eq + 1) : "";
    const list = raw.get(name) ?? [];
    list.push(url);
    raw.set(name, list);
  }
  const out = new Map<string, readonly string[]>();
  for (const [name, urls] of raw) {
    try {
      out.set(name, parseMemberUrls(urls));
    } catch (err) {
      if (!(err instanceof MemberUrlError)) throw err;
      throw new InitialClusterError(InitialClusterErrorKind.BadUrl, `error setting up initial cluster: ${err.message}`);
    }
  }
  return out;
}

/** etcd's URLsMap.String(): every "name=url" pair, sorted, joined by commas. */
export function urlsMapString(map: UrlsMap): string {
  const pairs: string[] = [];
  for (const [name, urls] of map) for (const u of urls) pairs.push(`${name}=${u}`);
  return pairs.sort().join(",");
}

/** Go's %q of a []string: ["a" "b"]. */
function goQuoteList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/** etcd's advertiseMatchesCluster: the local entry's URLs and the advertise URLs must be the same list. */
function checkAdvertise(map: UrlsMap, local: LocalMember, advertise: readonly string[]): void {
  const fromCluster = [...(map.get(local.name) ?? [])].sort();
  const ap = [...advertise].sort();
  let mismatch: string | undefined;
  if (ap.length !== fromCluster.length) mismatch = `len(${goQuoteList(ap)}) != len(${goQuoteList(fromCluster)})`;
  else {
    const i = ap.findIndex((u, k) => u !== fromCluster[k]);
    if (i >= 0) mismatch = `resolved urls: ${JSON.stringify(ap[i])} != ${JSON.stringify(fromCluster[i])}`;
  }
  if (mismatch === undefined) return;
  const apSet = new Set(ap);
  const clusterSet = new Set(fromCluster);
  const missingFromAp = [...clusterSet].filter((u) => !apSet.has(u)).sort();
  const fail = (message: string): never => {
    throw new InitialClusterError(InitialClusterErrorKind.AdvertiseMismatch, message);
  };
  if (missingFromAp.length > 0) {
    const m = missingFromAp.map((u) => `${local.name}=${u}`).join(",");
    fail(`--initial-cluster has ${m} but missing from --initial-advertise-peer-urls=${ap.join(",")} (${mismatch})`);
  }
  // etcd prints the advertise URLs under the local name here, labelled --initial-cluster.
  const apAsCluster = urlsMapString(new Map([[local.name, ap]]));
  const missingFromCluster = [...apSet].filter((u) => !clusterSet.has(u)).sort();
  if (missingFromCluster.length > 0) {
    fail(
      `--initial-advertise-peer-urls has ${missingFromCluster.join(",")} but missing from --initial-cluster=${apAsCluster}`,
    );
  }
  fail(`failed to resolve ${ap.join(",")} to match --initial-cluster=${apAsCluster} (${mismatch})`);
}

function hasDuplicateUrl(map: UrlsMap): boolean {
  const seen = new Set<string>();
  for (const urls of map.values()) {
    for (const u of urls) {
      if (seen.has(u)) return true;
      seen.add(u);
    }
  }
  return false;
}

/**
 * The members and cluster id a new cluster starts with. With `local`, also etcd's checks of this member's own
 * flags (VerifyBootstrap). Throws InitialClusterError with etcd's message.
 */
export function membersFromInitialCluster(
  initialCluster: string,
  token: string,
  local?: LocalMember,
): { members: Member[]; clusterId: bigint } {
  const map = parseUrlsMap(initialCluster);
  if (local !== undefined) {
    if (!map.has(local.name)) {
      throw new InitialClusterError(
        InitialClusterErrorKind.LocalNameMissing,
        `couldn't find local name ${JSON.stringify(local.name)} in the initial cluster configuration`,
      );
    }
    let advertise: string[];
    try {
      advertise = parseMemberUrls(local.advertisePeerUrls);
    } catch (err) {
      if (!(err instanceof MemberUrlError)) throw err;
      throw new InitialClusterError(InitialClusterErrorKind.BadUrl, err.message);
    }
    checkAdvertise(map, local, advertise);
  }
  if (hasDuplicateUrl(map)) {
    throw new InitialClusterError(
      InitialClusterErrorKind.DuplicateUrl,
      `initial cluster ${urlsMapString(map)} has duplicate url`,
    );
  }
  if (map.size === 0) {
    throw new InitialClusterError(InitialClusterErrorKind.Empty, "initial cluster unset and no discovery URL found");
  }
  const members: Member[] = [...map].map(([name, peerUrls]) => ({
    id: computeMemberId(peerUrls, token),
    name,
    peerUrls,
    clientUrls: [],
    isLearner: false,
  }));
  // Distinct URL sets (no URL repeats) hash to distinct ids unless SHA-1 collides.
  if (new Set(members.map((m) => m.id)).size !== members.length)
    throw new Error("membership: two initial members share an id");
  members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { members, clusterId: computeClusterId(members.map((m) => m.id)) };
}
