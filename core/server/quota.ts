// etcd's backend quota (--quota-backend-bytes), checked by the front end before a write is proposed.
import { EtcdError } from "../errors.js";
import { QUOTA_BACKEND_BYTES_DEFAULT } from "../limits.js";
import type { KvStore } from "../mvcc/kv_store.js";
import type { WriteResponse } from "../mvcc/types.js";
import { AlarmAction, AlarmType, type AlarmStore } from "./alarms.js";
import type { InternalRequest } from "./request_codec.js";
import type { ServerConfig } from "./server_config.js";

/** Re-read the backend file size for quota checks at most this often. */
const QUOTA_SIZE_CACHE_MS = 100;
/** What etcd adds to a request's own bytes when checking the quota (its per-key overhead estimate). */
const QUOTA_REQUEST_OVERHEAD_BYTES = 64;
/** What a lease grant costs against the quota (its stored record). */
export const LEASE_COST_BYTES = 64;

export interface QuotaHost {
  readonly config: ServerConfig;
  readonly kv: KvStore;
  readonly alarms: AlarmStore;
  propose(req: InternalRequest): Promise<WriteResponse | EtcdError>;
}

export class BackendQuota {
  readonly #host: QuotaHost;
  /**
   * The backend's size in use, re-read at most every QUOTA_SIZE_CACHE_MS (a quota check per write must be cheap),
   * plus the cost of every request let through since.
   */
  #dbSize = { bytes: 0, atMs: -Infinity };

  constructor(host: QuotaHost) {
    this.#host = host;
  }

  /** The quota in bytes (negative: none). */
  get bytes(): number {
    const q = this.#host.config.quotaBackendBytes ?? 0;
    return q === 0 ? QUOTA_BACKEND_BYTES_DEFAULT : q;
  }

  /**
   * A request that would take the database past --quota-backend-bytes is refused with "database space exceeded",
   * and the NOSPACE alarm is raised through Raft (from then on the apply path refuses every request that grows the
   * database, on every member, until the alarm is disarmed).
   */
  check(requestBytes: number): void {
    const quota = this.bytes;
    if (quota < 0) return;
    const host = this.#host;
    const now = performance.now();
    if (now - this.#dbSize.atMs > QUOTA_SIZE_CACHE_MS) this.#dbSize = { bytes: host.kv.backend.quotaSize(), atMs: now };
    const cost = requestBytes + QUOTA_REQUEST_OVERHEAD_BYTES;
    if (this.#dbSize.bytes + cost <= quota) {
      // Until the size is read again, count what was let through: a burst inside one cache period must not
      // overshoot the quota by everything it wrote.
      this.#dbSize.bytes += cost;
      return;
    }
    if (!host.alarms.has(AlarmType.NOSPACE)) {
      void host
        .propose({ alarm: { action: AlarmAction.ACTIVATE, memberId: host.config.memberId, type: AlarmType.NOSPACE } })
        .catch(() => undefined);
    }
    throw new EtcdError("NO_SPACE");
  }

  /** The file size changed out of band (a defragmentation): read it again at the next check. */
  forgetSize(): void {
    this.#dbSize = { bytes: 0, atMs: -Infinity };
  }
}
