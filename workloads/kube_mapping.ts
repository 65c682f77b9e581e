// kube-apiserver's etcd3 storage, as calls on an etcd client (staging/src/k8s.io/apiserver/pkg/storage/etcd3/
// store.go; see ../shared/reference/kube-workload.md §1): keys /registry/<resource>/[<ns>/]<name> with the
// special prefixes of default_storage_factory_builder.go; create = Txn(mod_revision == 0 → Put); update =
// Txn(mod_revision == rev → Put, else Range) retried on conflict from the Else result; delete = Range, then
// Txn(mod_revision == rev → DeleteRange, else Range); list = Range over the prefix, unpaginated or with
// limit + continuation pinned to the first page's revision; watch with prev_kv from a revision; events put
// on a shared lease (one LeaseGrant(ttl+60 s) per minute, etcd3/lease_manager.go); periodic compaction through
// the compact_rev_key CAS (etcd3/compact.go). The client is any object with the EtcdKv shape (core/client's
// EtcdClient has it), so workloads/ needs nothing from core/.

export type Bytes = Buffer | string;

/** The subset of an etcd client this module calls (structurally matched by core/client's EtcdClient). */
export interface EtcdKv {
  get(
    key: Bytes,
    opts?: {
      rangeEnd?: Bytes;
      prefix?: boolean;
      limit?: number;
      revision?: bigint;
      countOnly?: boolean;
      timeoutMs?: number;
    },
  ): Promise<{
    header: { revision: bigint };
    kvs: { key: Buffer; value: Buffer; modRevision: bigint; version: bigint }[];
    more: boolean;
    count: bigint;
  }>;
  rangeSummary(
    key: Bytes,
    opts?: {
      rangeEnd?: Bytes;
      prefix?: boolean;
      limit?: number;
      revision?: bigint;
      countOnly?: boolean;
      timeoutMs?: number;
    },
  ): Promise<{
    revision: bigint;
    kvCount: number;
    more: boolean;
    count: bigint;
    bytes: number;
    lastKey: Buffer | undefined;
  }>;
  txn(spec: {
    compare: {
      key: Bytes;
      target: "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";
      result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
      value: bigint | Bytes;
    }[];
    success: KvOp[];
    failure?: KvOp[];
  }): Promise<{ header: { revision: bigint }; succeeded: boolean; responses: KvOpResult[] }>;
  leaseGrant(ttlSeconds: number): Promise<{ id: bigint }>;
  compact(revision: bigint, opts?: { physical?: boolean }): Promise<unknown>;
}

export type KvOp =
  | { range: { key: Bytes } }
  | { put: { key: Bytes; value: Bytes; lease?: bigint } }
  | { delete: { key: Bytes } };

export type KvOpResult =
  | { range: { kvs: { modRevision: bigint; version: bigint; value: Buffer }[] } }
  | { put: unknown }
  | { delete: unknown };

/** Resources whose etcd prefix differs from their name (SpecialDefaultResourcePrefixes). */
const SPECIAL_PREFIXES: Readonly<Record<string, string>> = {
  nodes: "minions",
  services: "services/specs",
  endpoints: "services/endpoints",
  replicationcontrollers: "controllers",
  ingresses: "ingress",
  podsecuritypolicies: "podsecuritypolicy",
  poddisruptionbudgets: "poddisruptionbudgets",
};

/** Built-in groups whose resources are keyed without the group (everything else: <group>/<resource>). */
const BUILTIN_GROUPS: ReadonlySet<string> = new Set([
  "",
  "apps",
  "extensions",
  "batch",
  "rbac.authorization.k8s.io",
  "coordination.k8s.io",
  "networking.k8s.io",
  "policy",
  "storage.k8s.io",
  "scheduling.k8s.io",
  "autoscaling",
  "discovery.k8s.io",
  "events.k8s.io",
  "certificates.k8s.io",
  "admissionregistration.k8s.io",
  "node.k8s.io",
  "apiextensions.k8s.io",
]);

/** resourcePrefix is "/registry/<resource-prefix>" (with the group for CRDs and aggregated APIs). */
export function resourcePrefix(resource: string, group = "", registry = "/registry"): string {
  const base = SPECIAL_PREFIXES[resource] ?? resource;
  return BUILTIN_GROUPS.has(group) ? `${registry}/${base}` : `${registry}/${group}/${base}`;
}

/** keyFor is an object's etcd key: <prefix>/<resource>/[<ns>/]<name>. */
export function keyFor(resource: string, ns: string | undefined, name: string, group = ""): string {
  const p = resourcePrefix(resource, group);
  return ns === undefined || ns === "" ? `${p}/${name}` : `${p}/${ns}/${name}`;
}

/** listPrefix is the LIST/WATCH prefix for a resource, cluster-wide or in one namespace (trailing "/"). */
export function listPrefix(resource: string, ns?: string, group = ""): string {
  const p = resourcePrefix(resource, group);
  return ns === undefined || ns === "" ? `${p}/` : `${p}/${ns}/`;
}

/** Bound on GuaranteedUpdate retries after conflicts (kube-apiserver loops until success; we cap it). */
export const MAX_UPDATE_ATTEMPTS = 16;
/** Lease reuse window for TTL'd objects: min(60 s, 5% of ttl) (lease_manager.go). */
export const LEASE_REUSE_MAX_SECONDS = 60;

export interface CreateOutcome {
  readonly created: boolean;
  /** The object already there when the create lost (409 AlreadyExists). */
  readonly existing: Buffer | undefined;
  readonly revision: bigint;
}

export interface UpdateOutcome {
  readonly updated: boolean;
  readonly attempts: number;
  readonly revision: bigint;
}

export interface ListOutcome {
  readonly items: number;
  readonly pages: number;
  readonly bytes: number;
  readonly revision: bigint;
}

/** KubeStorage issues the etcd calls kube-apiserver would for each storage operation. */
export class KubeStorage {
  /** Last known mod_revision per key: stands in for the watch cache's "suggestion" of the current object. */
  private readonly known = new Map<string, bigint>();
  private lease: { id: bigint; ttl: number; expiresAtS: number } | undefined;
  private compactVersion = 0n;
  private lastCompactRev = 0n;

  constructor(
    readonly kv: EtcdKv,
    private readonly nowSeconds: () => number = () => performance.now() / 1000,
  ) {}

  async create(key: string, value: Bytes, ttlSeconds?: number): Promise<CreateOutcome> {
    const lease = ttlSeconds === undefined ? undefined : await this.leaseFor(ttlSeconds);
    const res = await this.kv.txn({
      compare: [{ key, target: "MOD", result: "EQUAL", value: 0n }],
      success: [{ put: { key, value, ...(lease === undefined ? {} : { lease }) } }],
      failure: [{ range: { key } }],
    });
    if (res.succeeded) {
      this.known.set(key, res.header.revision);
      return { created: true, existing: undefined, revision: res.header.revision };
    }
    const r = res.responses[0];
    const kv = r !== undefined && "range" in r ? r.range.kvs[0] : undefined;
    if (kv !== undefined) this.known.set(key, kv.modRevision);
    return { created: false, existing: kv?.value, revision: res.header.revision };
  }

  async get(key: string): Promise<Buffer | undefined> {
    const res = await this.kv.get(key);
    const kv = res.kvs[0];
    if (kv !== undefined) this.known.set(key, kv.modRevision);
    return kv?.value;
  }

  /**
   * update is GuaranteedUpdate: start from the known revision (or a Range), Txn(mod == rev → Put, else Range),
   * retry from the Else branch on conflict. `pinnedRev` (a client-pinned resourceVersion) is never retried.
   */
  async update(key: string, value: Bytes, pinnedRev?: bigint): Promise<UpdateOutcome> {
    let rev = pinnedRev ?? this.known.get(key) ?? (await this.currentRev(key));
    // GuaranteedUpdate of a missing object is NotFound (kube-apiserver does not create on update here).
    if (rev === 0n) return { updated: false, attempts: 0, revision: 0n };
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      const res = await this.kv.txn({
        compare: [{ key, target: "MOD", result: "EQUAL", value: rev }],
        success: [{ put: { key, value } }],
        failure: [{ range: { key } }],
      });
      if (res.succeeded) {
        this.known.set(key, res.header.revision);
        return { updated: true, attempts: attempt, revision: res.header.revision };
      }
      const r = res.responses[0];
      const kv = r !== undefined && "range" in r ? r.range.kvs[0] : undefined;
      rev = kv?.modRevision ?? 0n;
      if (kv === undefined) this.known.delete(key);
      else this.known.set(key, rev);
      if (pinnedRev !== undefined || kv === undefined)
        return { updated: false, attempts: attempt, revision: res.header.revision };
    }
    return { updated: false, attempts: MAX_UPDATE_ATTEMPTS, revision: 0n };
  }

  /** delete: Range, then Txn(mod == rev → DeleteRange, else Range), retried on conflict. */
  async delete(key: string): Promise<boolean> {
    let rev = await this.currentRev(key);
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS && rev !== 0n; attempt++) {
      const res = await this.kv.txn({
        compare: [{ key, target: "MOD", result: "EQUAL", value: rev }],
        success: [{ delete: { key } }],
        failure: [{ range: { key } }],
      });
      if (res.succeeded) {
        this.known.delete(key);
        return true;
      }
      const r = res.responses[0];
      rev = (r !== undefined && "range" in r ? r.range.kvs[0]?.modRevision : undefined) ?? 0n;
    }
    return false;
  }

  /** list: one Range over the prefix, or pages of `limit` continued from lastKey+"\0" at the first page's revision. */
  async list(prefix: string, opts: { limit?: number; timeoutMs?: number } = {}): Promise<ListOutcome> {
    const end = prefixEnd(prefix);
    const timeout = opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs };
    if (opts.limit === undefined || opts.limit <= 0) {
      const s = await this.kv.rangeSummary(prefix, { rangeEnd: end, ...timeout });
      return { items: s.kvCount, pages: 1, bytes: s.bytes, revision: s.revision };
    }
    let from: Bytes = prefix;
    let revision: bigint | undefined;
    let items = 0,
      pages = 0,
      bytes = 0;
    for (;;) {
      const s = await this.kv.rangeSummary(from, {
        rangeEnd: end,
        limit: opts.limit,
        ...(revision === undefined ? {} : { revision }),
        ...timeout,
      });
      revision ??= s.revision;
      items += s.kvCount;
      bytes += s.bytes;
      pages++;
      if (!s.more || s.lastKey === undefined) return { items, pages, bytes, revision };
      from = Buffer.concat([s.lastKey, Buffer.from([0])]);
    }
  }

  /** count: the object-count metric's Range(prefix, count_only). */
  async count(prefix: string): Promise<bigint> {
    return (await this.kv.get(prefix, { rangeEnd: prefixEnd(prefix), countOnly: true })).count;
  }

  /**
   * compactRound is one round of kube-apiserver's compactor: CAS on compact_rev_key's version, and if it won,
   * Compact at the revision seen in the previous round. Returns the revision compacted (0n if none).
   */
  async compactRound(): Promise<bigint> {
    const key = "compact_rev_key";
    const res = await this.kv.txn({
      compare: [{ key, target: "VERSION", result: "EQUAL", value: this.compactVersion }],
      success: [{ put: { key, value: String(this.lastCompactRev) } }],
      failure: [{ range: { key } }],
    });
    const prev = this.lastCompactRev;
    this.lastCompactRev = res.header.revision;
    if (!res.succeeded) {
      const r = res.responses[0];
      this.compactVersion = (r !== undefined && "range" in r ? r.range.kvs[0]?.version : undefined) ?? 0n;
      return 0n;
    }
    this.compactVersion++;
    if (prev === 0n) return 0n;
    await this.kv.compact(prev);
    return prev;
  }

  private async currentRev(key: string): Promise<bigint> {
    const res = await this.kv.get(key);
    return res.kvs[0]?.modRevision ?? 0n;
  }

  /** leaseFor reuses the current lease while it expires within [now+ttl, now+ttl+reuse], else grants a new one. */
  private async leaseFor(ttlSeconds: number): Promise<bigint> {
    const reuse = Math.min(LEASE_REUSE_MAX_SECONDS, Math.floor(ttlSeconds * 0.05));
    const now = this.nowSeconds();
    const l = this.lease;
    if (l !== undefined && l.ttl === ttlSeconds && l.expiresAtS >= now + ttlSeconds) return l.id;
    const grant = await this.kv.leaseGrant(ttlSeconds + reuse);
    this.lease = { id: grant.id, ttl: ttlSeconds, expiresAtS: now + ttlSeconds + reuse };
    return grant.id;
  }
}

/** prefixEnd: the smallest key greater than every key starting with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix, "utf8");
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
