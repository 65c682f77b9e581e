// etcd 3.4's corruption checks (--experimental-initial-corrupt-check, --experimental-corrupt-check-time). Every
// member's HashKV at a revision covers the same history, so two members that compacted at the same revision must
// agree on it; a disagreement means one of them holds data the log never wrote (a damaged or edited backend).
//   - At start, before serving clients, a member compares its hash with each peer's at its own revision and
//     refuses to start on a mismatch.
//   - While running, the leader periodically compares its hash with the followers'; on a mismatch it raises the
//     CORRUPT alarm through Raft (for member 0: which side is damaged is unknown, as in etcd 3.4), and every member
//     then refuses writes with "etcdserver: corrupt cluster" until an operator disarms it.
// A peer that cannot hash at the revision (behind it, or compacted past it) is skipped with a warning, as in etcd.
import { EtcdError, isEtcdError } from "../errors.js";
import { idToHex } from "../membership/ids.js";
import type { HashKVResponse } from "../mvcc/types.js";
import type { Member } from "../membership/cluster.js";
import { AlarmAction, AlarmType } from "./alarms.js";
import { fetchPeerHash, type PeerHash } from "./peer_link.js";
import type { AlarmChange } from "./request_codec.js";
import type { ServerConfig } from "./server_config.js";

export interface CorruptCheckHost {
  readonly memberId: bigint;
  hashKV(revision: number): Promise<HashKVResponse>;
  /** The other members (voters and learners) with their peer URLs. */
  peers(): readonly { readonly id: bigint; readonly urls: readonly string[] }[];
  fetchPeerHash(urls: readonly string[], revision: number): Promise<PeerHash>;
  readonly isLeader: boolean;
  /** Resolves once this member has applied everything committed when it was called (a linearizable read). */
  linearizableBarrier(): Promise<void>;
  /** Proposes the CORRUPT alarm for member 0. */
  raiseCorrupt(): Promise<unknown>;
  log(level: "I" | "W" | "E", msg: string): void;
}

/** What the checks need of a running member (EtcdServer). */
export interface CheckedMember {
  readonly config: ServerConfig;
  readonly kv: { hashKV(revision: number): Promise<HashKVResponse> };
  readonly isLeader: boolean;
  readonly requestTimeoutMs: number;
  members(): readonly Member[];
  linearizableBarrier(): Promise<void>;
  propose(req: AlarmChange): Promise<unknown>;
}

/** The checks' view of a member: its peers over the peer listener, the alarm through Raft, logs under etcdserver. */
export function corruptCheckHost(s: CheckedMember): CorruptCheckHost {
  const self = s.config.memberId;
  return {
    memberId: self,
    hashKV: (revision) => s.kv.hashKV(revision),
    peers: () =>
      s
        .members()
        .filter((m) => m.id !== self)
        .map((m) => ({ id: m.id, urls: m.peerUrls })),
    fetchPeerHash: (urls, revision) => fetchPeerHash(urls, revision, s.config.peer?.tls, s.requestTimeoutMs),
    get isLeader() {
      return s.isLeader;
    },
    linearizableBarrier: () => s.linearizableBarrier(),
    raiseCorrupt: () => s.propose({ alarm: { action: AlarmAction.ACTIVATE, memberId: 0n, type: AlarmType.CORRUPT } }),
    log: (level, msg) => s.config.log?.(level, "etcdserver", msg),
  };
}

/** The start-up check found a peer that disagrees: the member must not serve. */
export class DataInconsistencyError extends Error {
  constructor(memberId: bigint) {
    super(`${idToHex(memberId)} found data inconsistency with peers`);
    this.name = "DataInconsistencyError";
  }
}

type PeerAnswer = { readonly id: bigint; readonly urls: readonly string[] } & (
  | { readonly hash: PeerHash }
  | { readonly error: unknown }
);

async function peerHashes(host: CorruptCheckHost, revision: number): Promise<PeerAnswer[]> {
  return Promise.all(
    host.peers().map(async (p) => {
      try {
        return { ...p, hash: await host.fetchPeerHash(p.urls, revision) };
      } catch (error) {
        return { ...p, error };
      }
    }),
  );
}

/** The start-up check: throws DataInconsistencyError when a peer with our compact revision has another hash. */
export async function checkInitialHashKV(host: CorruptCheckHost): Promise<void> {
  const self = idToHex(host.memberId);
  host.log("I", `${self} starting initial corruption check...`);
  const local = await host.hashKV(0);
  let mismatches = 0;
  for (const p of await peerHashes(host, local.revision)) {
    const peer = idToHex(p.id);
    if ("error" in p) {
      const why = p.error instanceof Error ? p.error.message : String(p.error);
      const urls = JSON.stringify(p.urls);
      if (isEtcdError(p.error, "COMPACTED"))
        host.log(
          "W",
          `${self} cannot check the hash of peer(${urls}) at revision ${local.revision}: local node is lagging behind(${JSON.stringify(why)})`,
        );
      else if (isEtcdError(p.error, "FUTURE_REV"))
        host.log(
          "W",
          `${self} cannot check the hash of peer(${urls}) at revision ${local.revision}: peer is lagging behind(${JSON.stringify(why)})`,
        );
      else host.log("W", `${self} failed hash kv request from peer(${urls}): ${why}`);
      continue;
    }
    if (p.hash.compactRevision !== local.compactRevision) {
      host.log(
        "W",
        `${self} cannot check hash of peer(${peer}): peer has a different compact revision ${p.hash.compactRevision} (revision:${local.revision})`,
      );
      continue;
    }
    if (p.hash.hash !== local.hash) {
      host.log(
        "E",
        `found different hash values from remote peer: ${self}'s hash ${local.hash} != ${peer}'s hash ${p.hash.hash} (revision ${local.revision}, peer revision ${p.hash.revision}, compact revision ${local.compactRevision})`,
      );
      mismatches++;
    }
  }
  if (mismatches > 0) throw new DataInconsistencyError(host.memberId);
  host.log("I", `${self} succeeded on initial corruption checking: no corruption`);
}

/** One periodic round on the leader (etcd's checkHashKV); true when it raised the CORRUPT alarm. */
export async function checkHashKV(host: CorruptCheckHost): Promise<boolean> {
  const first = await host.hashKV(0);
  const peers = await peerHashes(host, first.revision);
  await host.linearizableBarrier();
  const second = await host.hashKV(0);
  const problems: string[] = [];
  if (
    second.hash !== first.hash &&
    second.revision === first.revision &&
    second.compactRevision === first.compactRevision
  ) {
    problems.push(`mismatched hashes ${first.hash} and ${second.hash} for revision ${first.revision}`);
  }
  for (const p of peers) {
    if (!("hash" in p)) continue;
    const peer = idToHex(p.id);
    if (p.hash.revision > second.revision)
      problems.push(`revision ${p.hash.revision} from member ${peer}, expected at most ${second.revision}`);
    if (p.hash.compactRevision > second.compactRevision) {
      problems.push(
        `compact revision ${p.hash.compactRevision} from member ${peer}, expected at most ${second.compactRevision}`,
      );
    }
    if (p.hash.compactRevision === first.compactRevision && p.hash.hash !== first.hash) {
      problems.push(
        `hash ${p.hash.hash} at revision ${first.revision} from member ${peer}, expected hash ${first.hash}`,
      );
    }
  }
  if (problems.length === 0) return false;
  for (const line of problems) host.log("W", line);
  await host.raiseCorrupt();
  return true;
}

/** The leader's periodic check (every `intervalMs`; a round never overlaps the previous one). */
export class CorruptMonitor {
  readonly #host: CorruptCheckHost;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(host: CorruptCheckHost, intervalMs: number) {
    this.#host = host;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#host.log("I", `enabled corruption checking with ${this.#intervalMs / 1000}s interval`);
    this.#timer = setInterval(() => void this.#round(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #round(): Promise<void> {
    if (this.#running || !this.#host.isLeader) return;
    this.#running = true;
    try {
      await checkHashKV(this.#host);
    } catch (err) {
      if (!(err instanceof EtcdError && err.code === "STOPPED"))
        this.#host.log("W", `failed to check hash KV: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.#running = false;
    }
  }
}
