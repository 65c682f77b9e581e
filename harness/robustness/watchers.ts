// Watches under faults, on raw Watch streams (the client's Watcher resumes by itself and drops replays, which
// would hide exactly what the checker looks for). Each logical watch records every response; when a stream
// breaks, or at a seeded moment on purpose, it opens a new stream on the next member from the revision after the
// last event or progress notification it saw; canceled for compaction, it starts again at the compacted revision.
import * as grpc from "@grpc/grpc-js";
import type * as pb from "../../core/api/proto/types.js";
import { EtcdClient } from "../../core/client/index.js";
import type { WatchEventRec, WatchOpenRecord } from "./history.js";
import { Rng } from "./rng.js";
import { KEY_PREFIX, type Recorder } from "./workload.js";
import { setTimeout as sleep } from "node:timers/promises";

type Stream = grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse__Output>;

export interface WatchersOptions {
  readonly endpoints: readonly string[];
  readonly seed: number;
  readonly watches: number;
}

function kvRec(kv: pb.KeyValue__Output): WatchEventRec["kv"] {
  return {
    key: kv.key.toString("utf8"),
    value: kv.value.toString("utf8"),
    mod: Number(kv.mod_revision || 0),
    create: Number(kv.create_revision || 0),
    ver: Number(kv.version || 0),
    lease: kv.lease === "" ? "0" : kv.lease,
  };
}

function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1] = b[b.length - 1]! + 1;
  return b;
}

/** runWatchers keeps `watches` logical watches open until stop() and resolves once they are closed. */
export async function runWatchers(rec: Recorder, opts: WatchersOptions, stop: () => boolean): Promise<void> {
  const tasks: Promise<void>[] = [];
  for (let w = 0; w < opts.watches; w++) tasks.push(logicalWatch(rec, opts, w, stop));
  await Promise.all(tasks);
}

async function logicalWatch(rec: Recorder, opts: WatchersOptions, watch: number, stop: () => boolean): Promise<void> {
  const rng = Rng.derive(opts.seed, 1000 + watch);
  const clients = opts.endpoints.map((e) => new EtcdClient({ endpoints: [e], dialTimeoutMs: 1_000 }));
  const prevKv = rng.next() < 0.7;
  // The first watch starts at revision 1 (the whole history), the others "from now".
  let next = watch === 0 ? 1 : 0;
  let reason: WatchOpenRecord["reason"] = "new";
  let member = rng.int(0, clients.length - 1);
  // The last watch now and then starts over as a new logical watch from an older revision, often one already
  // compacted: etcd must then cancel it with the compacted revision, and the watch restarts there.
  const rewinds = watch === opts.watches - 1 && watch > 0;
  let id = watch;
  let session = 0;
  try {
    while (!stop()) {
      const life = rewinds ? rng.int(500, 2_500) : rng.int(1_000, 6_000);
      const end = await oneStream(
        rec,
        clients[member]!,
        { watch: id, session: session++, startRev: next, prevKv, reason },
        life,
        stop,
      );
      next = end.next;
      // A stream that never got created has nothing to continue from: the next one is a new watch.
      reason = end.next === 0 ? "new" : end.reason;
      member = (member + 1) % clients.length;
      if (end.reason === "resume" && end.broken) await sleep(rng.int(50, 300));
      if (rewinds && reason === "resume" && rng.next() < 0.5) {
        id += 100;
        session = 0;
        next = Math.max(1, rec.maxRev - rng.int(10, 600));
        reason = "new";
      }
    }
  } finally {
    for (const c of clients) c.close();
  }
}

interface StreamEnd {
  /** Where the next stream starts (0: from now, nothing seen yet). */
  readonly next: number;
  readonly reason: WatchOpenRecord["reason"];
  readonly broken: boolean;
}

/** oneStream opens one Watch stream, records it until it breaks, is compacted or lifeMs passes. */
function oneStream(
  rec: Recorder,
  client: EtcdClient,
  s: { watch: number; session: number; startRev: number; prevKv: boolean; reason: WatchOpenRecord["reason"] },
  lifeMs: number,
  stop: () => boolean,
): Promise<StreamEnd> {
  return new Promise((resolve) => {
    let next = s.startRev;
    let finished = false;
    let stream: Stream | undefined;
    const finish = (end: StreamEnd): void => {
      if (finished) return;
      finished = true;
      clearTimeout(life);
      clearInterval(stopPoll);
      stream?.cancel();
      resolve(end);
    };
    const life = setTimeout(() => finish({ next, reason: "resume", broken: false }), lifeMs);
    const stopPoll = setInterval(() => {
      if (stop()) finish({ next, reason: "resume", broken: false });
    }, 100);
    rec.add({
      t: "watch-open",
      watch: s.watch,
      session: s.session,
      time: rec.now(),
      prefix: KEY_PREFIX,
      startRev: s.startRev,
      prevKv: s.prevKv,
      progressNotify: true,
      reason: s.reason,
    });
    let svc: grpc.Client;
    try {
      svc = client.connection.service("Watch").client;
    } catch {
      finish({ next, reason: "resume", broken: true });
      return;
    }
    const md = new grpc.Metadata();
    md.set("hasleader", "true");
    stream = (svc as unknown as { Watch(md: grpc.Metadata): Stream }).Watch(md);
    stream.on("data", (res: pb.WatchResponse__Output) => {
      if (finished) return;
      const events: WatchEventRec[] = res.events.map((e) => ({
        type: e.type,
        kv: kvRec(e.kv!),
        ...(s.prevKv && e.prev_kv !== null ? { prev: kvRec(e.prev_kv) } : {}),
      }));
      const rev = Number(res.header?.revision ?? 0);
      const compactRev = Number(res.compact_revision || 0);
      rec.add({
        t: "watch",
        watch: s.watch,
        session: s.session,
        time: rec.now(),
        member: BigInt(res.header?.member_id || "0").toString(16),
        rev,
        ...(res.created ? { created: true } : {}),
        ...(res.canceled ? { canceled: true, compactRev } : {}),
        events,
      });
      if (res.created && next === 0) next = rev + 1;
      const last = events[events.length - 1];
      if (last !== undefined) next = Math.max(next, last.kv.mod + 1);
      else if (!res.created && !res.canceled) next = Math.max(next, rev + 1);
      if (res.canceled)
        finish(
          compactRev > 0
            ? { next: compactRev, reason: "compacted", broken: false }
            : { next, reason: "resume", broken: true },
        );
    });
    stream.on("error", () => finish({ next, reason: "resume", broken: true }));
    stream.on("end", () => finish({ next, reason: "resume", broken: true }));
    const create: pb.WatchCreateRequest = {
      key: Buffer.from(KEY_PREFIX),
      range_end: prefixEnd(KEY_PREFIX),
      start_revision: String(s.startRev),
      progress_notify: true,
    };
    if (s.prevKv) create.prev_kv = true;
    stream.write({ create_request: create });
  });
}
