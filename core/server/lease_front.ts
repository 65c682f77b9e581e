// A member's lease front end, as etcd's v3_server.go serves leases: grants and revokes go through Raft; keep-alives
// and TimeToLive are answered by the leader's lessor, the only one that tracks expiry, so a follower forwards them to
// the leader over the peer listener. It owns the lessor and the leader's expiry loop, and opens both again when a
// snapshot replaces the backend.
import type { AuthInfo } from "../auth/tokens.js";
import { EtcdError } from "../errors.js";
import type { Lessor } from "../lease/lessor.js";
import { ELECTION_TIMEOUT_MS, MAX_LEASE_TTL_SECONDS } from "../limits.js";
import type { KvStore } from "../mvcc/kv_store.js";
import type { EffectResponse, WriteResponse } from "../mvcc/types.js";
import { LeaseLoop, leaseIdFrom, openLessor } from "./leases.js";
import { forwardRenew, forwardTimeToLive } from "./peer_link.js";
import { LEASE_COST_BYTES } from "./quota.js";
import type { LeaseRequest } from "./request_codec.js";
import type { LeaseTimeToLive, ResponseHeader, ServerConfig, WithHeader } from "./server_config.js";

/** What the lease front end reads from its member. */
export interface LeaseFrontHost {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  readonly isLeader: boolean;
  /** The leader's id (0n: none known). */
  readonly leader: bigint;
  readonly requestTimeoutMs: number;
  checkNotLearner(): void;
  header(revision?: number): ResponseHeader;
  /** The leader's peer URLs; NO_LEADER when there is none. */
  leaderPeerUrls(): readonly string[];
  propose(req: LeaseRequest, auth?: AuthInfo): Promise<WriteResponse | EtcdError>;
  /** Refuses a write of `bytes` while the backend quota is spent (NOSPACE). */
  checkQuota(bytes: number): void;
  nextRequestId(): bigint;
}

type LocalTimeToLive = { ttl: number; grantedTtl: number; keys: readonly Uint8Array[] };

export class LeaseFront {
  readonly #host: LeaseFrontHost;
  #lessor: Lessor;
  #loop: LeaseLoop;

  constructor(host: LeaseFrontHost) {
    this.#host = host;
    this.#lessor = openLessor(host.config, host.kv);
    this.#loop = this.#newLoop();
  }

  get lessor(): Lessor {
    return this.#lessor;
  }

  #newLoop(): LeaseLoop {
    return new LeaseLoop(
      this.#lessor,
      () => this.#host.isLeader,
      (req) => this.#host.propose(req),
    );
  }

  start(): void {
    this.#loop.start();
  }

  stop(): void {
    this.#loop.stop();
  }

  /** A snapshot replaced the backend: the lessor and its loop start again from it. */
  reload(): void {
    this.#loop.stop();
    this.#lessor = openLessor(this.#host.config, this.#host.kv);
    this.#loop = this.#newLoop();
    this.#loop.start();
    if (this.#host.isLeader) this.#lessor.promote(this.#electionTimeoutMs);
  }

  /**
   * A new leader gives every lease an election timeout more before expiring any (clients need the time to find
   * it); a member that lost leadership expires nothing.
   */
  onLeadership(leader: boolean): void {
    if (leader) this.#lessor.promote(this.#electionTimeoutMs);
    else this.#lessor.demote();
  }

  get #electionTimeoutMs(): number {
    return this.#host.config.electionTimeoutMs ?? ELECTION_TIMEOUT_MS;
  }

  /** Grants a lease (id 0: the member picks one); the TTL is raised to the minimum as etcd does. */
  async grant(id: bigint, ttl: number): Promise<WithHeader<{ id: bigint; ttl: number }>> {
    // etcd refuses a TTL past its maximum before proposing (apply refuses it too, for entries from elsewhere).
    if (!(ttl <= MAX_LEASE_TTL_SECONDS))
      throw new EtcdError("LEASE_TTL_TOO_LARGE", `ttl ${ttl} > ${MAX_LEASE_TTL_SECONDS}`);
    this.#host.checkQuota(LEASE_COST_BYTES);
    const chosen = id === 0n ? leaseIdFrom(this.#host.nextRequestId()) : id;
    const r = await this.#write({ leaseGrant: { id: chosen, ttl } });
    return { header: this.#host.header(r.revision), response: r.value as { id: bigint; ttl: number } };
  }

  /** Revokes a lease and deletes its keys (one revision). */
  async revoke(id: bigint, auth?: AuthInfo): Promise<WithHeader<EffectResponse>> {
    const r = await this.#write({ leaseRevoke: { id } }, auth);
    return { header: this.#host.header(r.revision), response: r };
  }

  /** A keepalive: back to the full TTL. Only the leader's lessor renews; a follower forwards the keepalive. */
  async renew(id: bigint): Promise<{ header: ResponseHeader; ttl: number }> {
    const h = this.#host;
    h.checkNotLearner();
    if (h.isLeader) return { header: h.header(), ttl: this.#lessor.renew(id) };
    const ttl = await forwardRenew(h.leaderPeerUrls(), id, h.config.peer?.tls, h.requestTimeoutMs);
    return { header: h.header(), ttl };
  }

  /** TimeToLive is answered by the leader's lessor (a follower's does not track expiry). */
  async timeToLive(id: bigint, keys: boolean): Promise<WithHeader<LeaseTimeToLive>> {
    const h = this.#host;
    h.checkNotLearner();
    const st =
      h.isLeader || h.config.peer === undefined
        ? this.localTimeToLive(id, keys)
        : await forwardTimeToLive(h.leaderPeerUrls(), id, keys, h.config.peer?.tls, h.requestTimeoutMs);
    return { header: h.header(), response: { id, ...st } };
  }

  /** This member's answer to TimeToLive (a leader's, or a lone member's); what a follower's forward reaches. */
  localTimeToLive(id: bigint, keys: boolean): LocalTimeToLive {
    const h = this.#host;
    if (!h.isLeader && h.config.peer !== undefined) throw new EtcdError(h.leader === 0n ? "NO_LEADER" : "NOT_LEADER");
    const st = this.#lessor.timeToLive(id, keys);
    return st === undefined
      ? { ttl: -1, grantedTtl: 0, keys: [] }
      : { ttl: st.ttl, grantedTtl: st.grantedTtl, keys: st.keys };
  }

  leases(): WithHeader<readonly bigint[]> {
    return { header: this.#host.header(), response: this.#lessor.leases() };
  }

  async #write(req: LeaseRequest, auth?: AuthInfo): Promise<EffectResponse> {
    const result = await this.#host.propose(req, auth);
    if (result instanceof EtcdError) throw result;
    if (!("effect" in result)) throw new Error(`apply answered ${Object.keys(result).join()} to a lease request`);
    return result.effect;
  }
}
