// The v2 tree: directories and files under "/", each with its created and modified index and an optional
// expiry (nanoseconds since the Unix epoch; 0n means permanent), and the JSON shape etcd answers for a node.

export interface V2Node {
  readonly path: string;
  value: string;
  /** Children by name for a directory; undefined for a file. */
  readonly children: Map<string, V2Node> | undefined;
  readonly createdIndex: number;
  modifiedIndex: number;
  expireNs: bigint;
  parent: V2Node | undefined;
}

/** A node as etcd's JSON shows it (field order and omitted zero values as Go's encoder writes them). */
export interface NodeJson {
  key?: string;
  value?: string;
  dir?: boolean;
  expiration?: string;
  ttl?: number;
  nodes?: NodeJson[];
  modifiedIndex?: number;
  createdIndex?: number;
}

export function newNode(
  path: string,
  parent: V2Node | undefined,
  dir: boolean,
  value: string,
  index: number,
  expireNs: bigint,
): V2Node {
  return {
    path,
    value,
    children: dir ? new Map() : undefined,
    createdIndex: index,
    modifiedIndex: index,
    expireNs,
    parent,
  };
}

export function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Names starting with "_" are hidden from directory listings (etcd's hidden keys). */
export function isHidden(n: V2Node): boolean {
  return nameOf(n.path).startsWith("_");
}

/** Go's time.Time in RFC 3339 with nanoseconds, trailing zeros dropped, in UTC. */
export function formatNs(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n)
    .toString()
    .padStart(9, "0")
    .replace(/0+$/, "");
  return frac === "" ? `${base}Z` : `${base}.${frac}Z`;
}

/** Seconds left, rounded up (1 for anything under a second), as etcd reports a TTL. */
export function ttlOf(expireNs: bigint, nowNs: bigint): number {
  const left = expireNs - nowNs;
  const whole = left / 1_000_000_000n;
  return Number(left % 1_000_000_000n > 0n ? whole + 1n : whole);
}

function withExpiry(j: NodeJson, n: V2Node, nowNs: bigint): NodeJson {
  if (n.expireNs === 0n) return j;
  const ttl = ttlOf(n.expireNs, nowNs);
  return { ...j, expiration: formatNs(n.expireNs), ...(ttl !== 0 ? { ttl } : {}) };
}

function indexes(j: NodeJson, n: V2Node): NodeJson {
  if (n.modifiedIndex !== 0) j.modifiedIndex = n.modifiedIndex;
  if (n.createdIndex !== 0) j.createdIndex = n.createdIndex;
  return j;
}

/** The visible children, in key order when `sorted` (otherwise in creation order). */
function listed(n: V2Node, recursive: boolean, sorted: boolean, nowNs: bigint): NodeJson[] {
  const out: NodeJson[] = [];
  for (const c of n.children?.values() ?? []) if (!isHidden(c)) out.push(repr(c, recursive, sorted, nowNs));
  if (sorted) out.sort((a, b) => ((a.key ?? "") < (b.key ?? "") ? -1 : (a.key ?? "") > (b.key ?? "") ? 1 : 0));
  return out;
}

/** A node inside a listing: a directory's children only when recursive. */
export function repr(n: V2Node, recursive: boolean, sorted: boolean, nowNs: bigint): NodeJson {
  const key = n.path === "/" ? {} : { key: n.path };
  if (n.children === undefined) return indexes(withExpiry({ ...key, value: n.value }, n, nowNs), n);
  const j = withExpiry({ ...key, dir: true }, n, nowNs);
  if (recursive) {
    const nodes = listed(n, recursive, sorted, nowNs);
    if (nodes.length > 0) j.nodes = nodes;
  }
  return indexes(j, n);
}

/** The node a Get answers: a directory always lists its children (recursively if asked). */
export function getRepr(n: V2Node, recursive: boolean, sorted: boolean, nowNs: bigint): NodeJson {
  if (n.children === undefined) return repr(n, false, false, nowNs);
  const key = n.path === "/" ? {} : { key: n.path };
  const j = withExpiry({ ...key, dir: true }, n, nowNs);
  const nodes = listed(n, recursive, sorted, nowNs);
  if (nodes.length > 0) j.nodes = nodes;
  return indexes(j, n);
}
