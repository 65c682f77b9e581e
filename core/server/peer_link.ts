// What members ask each other outside Raft, over the peer listener (etcd serves the same on its peer port):
//   GET  /members            the member list, for a member joining with --initial-cluster-state=existing
//   POST /leases/renew       a keepalive a follower received, renewed by the leader (only the leader's lessor
//                            expires leases, so only it can renew them)
//   POST /leases/timetolive  TimeToLive, answered from the leader's lessor
//   POST /members/promote    MemberPromote, which only the leader can check (it knows the learner's progress)
//   POST /members/hashkv     this member's HashKV at a revision, for the corruption checks (etcd's peer hashkv)
// Bodies are small JSON documents; errors travel as core/errors codes and come back as the same EtcdError.
import { ERRORS, EtcdError, isEtcdError, type ErrorCode } from "../errors.js";
import type { Member } from "../membership/cluster.js";
import {
  goErrorText,
  peerRequest,
  type PeerHttpHandler,
  type PeerHttpResponse,
  type TransportTls,
} from "../transport/index.js";

export const PEER_PATHS = {
  members: "/members",
  renew: "/leases/renew",
  timeToLive: "/leases/timetolive",
  promote: "/members/promote",
  hashKV: "/members/hashkv",
} as const;

export interface LeaderSide {
  members(): readonly Member[];
  renew(id: bigint): Promise<number>;
  timeToLive(id: bigint, keys: boolean): { ttl: number; grantedTtl: number; keys: readonly Uint8Array[] };
  promote(id: bigint): Promise<void>;
  hashKV(revision: number): Promise<PeerHash>;
}

/** A member's HashKV at a revision, with its own current revision (etcd's HashKVResponse and its header). */
export interface PeerHash {
  readonly revision: number;
  readonly hash: number;
  readonly compactRevision: number;
}

interface MemberJson {
  readonly id: string;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

/** The handlers the server registers on its peer transport. */
export function peerHandlers(side: LeaderSide): Record<string, PeerHttpHandler> {
  return {
    [PEER_PATHS.members]: () => json(side.members().map(memberToJson)),
    [PEER_PATHS.renew]: (req) =>
      answer(async () => ({ ttl: await side.renew(BigInt(parseBody(req.body).id as string)) })),
    [PEER_PATHS.timeToLive]: (req) =>
      answer(async () => {
        const body = parseBody(req.body);
        const r = side.timeToLive(BigInt(body.id as string), body.keys === true);
        return { ttl: r.ttl, grantedTtl: r.grantedTtl, keys: r.keys.map((k) => Buffer.from(k).toString("base64")) };
      }),
    [PEER_PATHS.promote]: (req) =>
      answer(async () => {
        await side.promote(BigInt(parseBody(req.body).id as string));
        return {};
      }),
    [PEER_PATHS.hashKV]: (req) =>
      answer(async () => ({ ...(await side.hashKV(Number(parseBody(req.body).revision))) })),
  };
}

/** A peer's HashKV at `revision` (EtcdError COMPACTED / FUTURE_REV when it cannot hash at that revision). */
export async function fetchPeerHash(
  urls: readonly string[],
  revision: number,
  tls: TransportTls | undefined,
  timeoutMs: number,
): Promise<PeerHash> {
  const r = await call(urls, PEER_PATHS.hashKV, { revision }, tls, timeoutMs);
  return { revision: Number(r.revision), hash: Number(r.hash), compactRevision: Number(r.compactRevision) };
}

/** Asks the leader (at one of its peer URLs) to renew a lease; resolves with the new TTL. */
export async function forwardRenew(
  urls: readonly string[],
  id: bigint,
  tls: TransportTls | undefined,
  timeoutMs: number,
): Promise<number> {
  const r = await call(urls, PEER_PATHS.renew, { id: id.toString() }, tls, timeoutMs);
  return Number(r.ttl);
}

export async function forwardTimeToLive(
  urls: readonly string[],
  id: bigint,
  keys: boolean,
  tls: TransportTls | undefined,
  timeoutMs: number,
): Promise<{ ttl: number; grantedTtl: number; keys: Uint8Array[] }> {
  const r = await call(urls, PEER_PATHS.timeToLive, { id: id.toString(), keys }, tls, timeoutMs);
  return {
    ttl: Number(r.ttl),
    grantedTtl: Number(r.grantedTtl),
    keys: (r.keys as string[]).map((k) => new Uint8Array(Buffer.from(k, "base64"))),
  };
}

export async function forwardPromote(
  urls: readonly string[],
  id: bigint,
  tls: TransportTls | undefined,
  timeoutMs: number,
): Promise<void> {
  await call(urls, PEER_PATHS.promote, { id: id.toString() }, tls, timeoutMs);
}

export interface FetchOptions {
  readonly tls?: TransportTls | undefined;
  readonly timeoutMs: number;
  /** Each peer that failed, in etcd's words ("could not get cluster response from …"). */
  readonly warn?: (line: string) => void;
}

/** Why fetchMembers failed: etcd's words, and each peer's error. */
export class ClusterFetchError extends Error {
  constructor(readonly perPeer: readonly string[]) {
    super("could not retrieve cluster information from the given URLs");
    this.name = "ClusterFetchError";
  }
}

/**
 * The members of a running cluster, from the first peer URL that answers, and the cluster id it reports: how a
 * member started with --initial-cluster-state=existing learns what it joins (etcd's GetClusterFromRemotePeers).
 */
export async function fetchMembers(
  urls: readonly string[],
  opts: FetchOptions,
): Promise<{ clusterId: bigint; members: Member[] }> {
  const errors: string[] = [];
  for (const url of urls) {
    try {
      const r = await peerRequest(url, PEER_PATHS.members, {
        timeoutMs: opts.timeoutMs,
        ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
      });
      if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.toString("utf8").slice(0, 200)}`);
      const cid = String(r.headers["x-etcd-cluster-id"] ?? "");
      if (!/^[0-9a-f]{1,16}$/.test(cid)) throw new Error(`no cluster id in the answer (${JSON.stringify(cid)})`);
      const list = JSON.parse(r.body.toString("utf8")) as MemberJson[];
      return { clusterId: BigInt(`0x${cid}`), members: list.map(memberFromJson) };
    } catch (err) {
      const why = `Get ${JSON.stringify(url + PEER_PATHS.members)}: ${goErrorText(err)}`;
      opts.warn?.(`could not get cluster response from ${url}: ${why}`);
      errors.push(`${url}: ${why}`);
    }
  }
  throw new ClusterFetchError(errors);
}

function memberToJson(m: Member): MemberJson {
  return {
    id: m.id.toString(16),
    name: m.name,
    peerURLs: m.peerUrls,
    clientURLs: m.clientUrls,
    isLearner: m.isLearner,
  };
}

function memberFromJson(j: MemberJson): Member {
  return {
    id: BigInt(`0x${j.id}`),
    name: j.name,
    peerUrls: [...j.peerURLs],
    clientUrls: [...j.clientURLs],
    isLearner: j.isLearner,
  };
}

function json(body: unknown, status = 200): PeerHttpResponse {
  return { status, body: JSON.stringify(body), contentType: "application/json" };
}

function parseBody(body: Buffer): Record<string, unknown> {
  const v = JSON.parse(body.toString("utf8")) as unknown;
  if (typeof v !== "object" || v === null) throw new Error("peer request body is not a JSON object");
  return v as Record<string, unknown>;
}

async function answer(fn: () => Promise<Record<string, unknown>>): Promise<PeerHttpResponse> {
  try {
    return json(await fn());
  } catch (err) {
    if (isEtcdError(err)) return json({ error: err.code, detail: err.detail ?? "" }, 409);
    return json({ error: "INTERNAL", detail: err instanceof Error ? err.message : String(err) }, 500);
  }
}

async function call(
  urls: readonly string[],
  path: string,
  body: unknown,
  tls: TransportTls | undefined,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  let last: unknown = new EtcdError("NO_LEADER");
  for (const url of urls) {
    try {
      const r = await peerRequest(url, path, {
        method: "POST",
        body: JSON.stringify(body),
        timeoutMs,
        ...(tls !== undefined ? { tls } : {}),
      });
      const out = JSON.parse(r.body.toString("utf8")) as Record<string, unknown>;
      if (r.status === 200) return out;
      if (r.status === 409 && typeof out.error === "string" && out.error in ERRORS)
        throw new EtcdError(out.error as ErrorCode, String(out.detail ?? ""));
      throw new Error(`${path}: status ${r.status}`);
    } catch (err) {
      if (isEtcdError(err)) throw err;
      last = err;
    }
  }
  throw isEtcdError(last)
    ? last
    : new EtcdError(
        "TIMEOUT",
        `forwarding ${path} to the leader: ${last instanceof Error ? last.message : String(last)}`,
      );
}
