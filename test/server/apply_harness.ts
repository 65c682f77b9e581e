// An Applier over a real data dir with every store a member keeps (KV, leases, alarms, auth, members), without
// Raft, WAL traffic or processes: tests hand it committed entries in batches of their choosing, restart it (close
// and reopen everything from disk, as a member restarts), and read back the answers and a digest of the backend.
import { V2Keys } from "../../core/server/v2_keys.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { SimpleTokenProvider } from "../../core/auth/tokens.js";
import { EtcdError } from "../../core/errors.js";
import { Cluster } from "../../core/membership/cluster.js";
import type { Lessor } from "../../core/lease/lessor.js";
import { KvStore } from "../../core/mvcc/kv_store.js";
import { UNLIMITED } from "../../core/mvcc/validate.js";
import type { WriteResponse } from "../../core/mvcc/types.js";
import { EntryType, type ConfChange, type Entry } from "../../core/raft/index.js";
import { AlarmStore } from "../../core/server/alarms.js";
import { Applier } from "../../core/server/applier.js";
import { ServerAuth } from "../../core/server/auth_apply.js";
import { openLessor } from "../../core/server/leases.js";
import { MEMBER_BUCKETS, makeMemberDir } from "../../core/server/member_dir.js";
import { ServerMetrics } from "../../core/server/metrics.js";
import { encodePayload, type InternalRequest, type RaftPayload } from "../../core/server/request_codec.js";
import type { ServerConfig } from "../../core/server/server_config.js";
import type { WalStorage } from "../../core/wal/wal_storage.js";

/** Every bucket the member keeps; the digest covers them all (the consistent index included). */
const BUCKETS = ["key", "mvcc_meta", "meta", ...MEMBER_BUCKETS];

interface Open {
  kv: KvStore;
  applier: Applier;
  lessor: Lessor;
  auth: ServerAuth;
}

export class ApplyHarness {
  readonly dir: string;
  readonly config: ServerConfig;
  /** Answers by request id, in the order they were given. */
  readonly answers = new Map<bigint, WriteResponse | EtcdError>();
  readonly warnings: string[] = [];
  /** The conf changes handed to Raft, in order (a refused one as node 0). */
  readonly raftConfChanges: ConfChange[] = [];
  #open: Open | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.config = { name: "a", dataDir: dir, memberId: 1n, clusterId: 7n, clock: () => 0 };
  }

  /** `base`: where the temp data dir goes (a tmpfs such as /dev/shm keeps many small fsyncs cheap). */
  static async create(base = tmpdir()): Promise<ApplyHarness> {
    const h = new ApplyHarness(mkdtempSync(join(base, "etcd-ts-apply-")));
    await h.#start();
    return h;
  }

  get kv(): KvStore {
    return this.#o.kv;
  }

  get lessor(): Lessor {
    return this.#o.lessor;
  }

  get #o(): Open {
    if (this.#open === undefined) throw new Error("apply harness: stopped");
    return this.#open;
  }

  async #start(): Promise<void> {
    makeMemberDir(this.dir);
    const memberDir = join(this.dir, "member");
    // No read workers: nothing here reads long ranges, and starting threads would dominate a restart. The limits are
    // a member's (openMemberDir): the proposer checks the configured bounds, apply does not.
    const kv = KvStore.open(memberDir, { extraBuckets: MEMBER_BUCKETS, readWorkers: 0, limits: UNLIMITED });
    // The applier reads the WAL only to hand past conf changes back to Raft, and these logs carry none: opening a
    // WAL (preallocating its segment) would cost more than the whole apply.
    const storage = new Proxy(
      {},
      {
        get: () => {
          throw new Error("apply harness: no WAL");
        },
      },
    ) as WalStorage;
    const lessor = openLessor(this.config, kv);
    const alarms = kv.backend.readNow((v) => AlarmStore.load(v));
    const cluster = kv.backend.readNow((v) => Cluster.load(v));
    const auth = kv.backend.readNow(
      (v) =>
        new ServerAuth(v, {
          tokenProvider: new SimpleTokenProvider({ ttlSeconds: 300 }),
          propose: () => Promise.reject(new Error("apply harness: no proposals")),
          leaseKeys: (id) => lessor.timeToLive(id, true)?.keys ?? [],
        }),
    );
    const applier = new Applier(
      {
        kv,
        storage,
        metrics: new ServerMetrics(),
        alarms,
        auth,
        lessor,
        cluster,
        v2: new V2Keys(),
        applyConfChangeToRaft: (cc) => void this.raftConfChanges.push(cc),
        onMemberChange: () => undefined,
        answer: (id, res) => void this.answers.set(id, res),
        afterApply: () => undefined,
        warn: (m) => void this.warnings.push(m),
      },
      kv.consistentIndex(),
    );
    this.#open = { kv, applier, lessor, auth };
  }

  /** Applies one batch of committed entries. */
  apply(entries: readonly Entry[]): Promise<void> {
    return this.#o.applier.apply(entries);
  }

  /** Closes everything and opens it again from disk. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#start();
  }

  async stop(): Promise<void> {
    const o = this.#open;
    this.#open = undefined;
    if (o === undefined) return;
    await o.kv.close();
  }

  /** CRC32 over every (bucket, key, value) of the backend, and HashKV. */
  async digest(): Promise<{ all: number; hashKV: number; revision: number }> {
    const kv = this.#o.kv;
    // The stored contents: the consistent index is written to the meta bucket only when the buffer is committed.
    kv.backend.flushNow();
    const all = kv.backend.readNow((v) => {
      let h = 0;
      for (const b of BUCKETS) {
        h = crc32(b, h);
        for (const { key, value } of v.range(b, {})) h = crc32(value, crc32(key, h));
      }
      return h;
    });
    const hk = await kv.hashKV(0);
    return { all, hashKV: hk.hash, revision: hk.revision };
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Committed normal entries from requests (index from `first`, term 1); ids are 1, 2, … in log order. */
export function entriesOf(
  reqs: readonly (
    | InternalRequest
    | { raw: Uint8Array }
    | { req: InternalRequest; auth: NonNullable<RaftPayload["auth"]> }
  )[],
  first = 1,
): Entry[] {
  return reqs.map((r, i) => {
    const id = BigInt(i + 1);
    const data =
      "raw" in r
        ? r.raw
        : encodePayload(
            "auth" in r && "req" in r ? { id, req: r.req, auth: r.auth } : { id, req: r as InternalRequest },
          );
    return { term: 1, index: first + i, type: EntryType.Normal, data };
  });
}

/** A stable text of an answer: EtcdError by code, bytes as hex, bigints as text. */
export function answerText(res: WriteResponse | EtcdError | undefined): string {
  if (res === undefined) return "none";
  if (res instanceof EtcdError) return `error:${res.code}`;
  return JSON.stringify(res, (_k, v: unknown) => {
    if (typeof v === "bigint") return `${v}n`;
    if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
    if (v instanceof Error) return `error:${(v as EtcdError).code ?? v.message}`;
    return v;
  });
}
