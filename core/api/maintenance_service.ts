// etcd's Maintenance service: Status, Alarm, Defragment, Hash, HashKV, MoveLeader and the Snapshot stream.
// Snapshot sends a consistent copy of the backend in etcd's bbolt format (core/server/bolt_export.ts) in 32 KiB
// chunks, each with the bytes still to come, then the SHA-256 of what it sent as a last chunk, as etcd's stream
// does; `etcdctl snapshot status` and `etcdctl snapshot restore` read the saved file.
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { ALARM_NAMES, type AlarmType } from "../server/alarms.js";
import type { Histogram } from "../server/metrics.js";
import { exportBoltSnapshot } from "../server/bolt_export.js";
import type { EtcdServer } from "../server/etcd_server.js";
import { authInfoOf } from "./auth_service.js";
import { headerObject, int64, unary } from "./unary.js";

/** etcd streams snapshots in 32 KiB pieces. */
const SNAPSHOT_CHUNK_BYTES = 32 * 1024;

export interface StatusInfo {
  readonly version: string;
}

type ToStatus = (e: unknown) => Partial<grpc.StatusObject>;

/** proto-loader hands enums by name (enums: String); numbers are accepted too. */
function enumNumber(v: unknown, names: Record<number, string>): number {
  if (typeof v === "number") return v;
  for (const [n, name] of Object.entries(names)) if (name === v) return Number(n);
  return 0;
}

const ACTION_NAMES: Record<number, string> = { 0: "GET", 1: "ACTIVATE", 2: "DEACTIVATE" };

const EXPORT_DIR_PREFIX = "snapshot-export-";

const cleaned = new Set<string>();

/** Scratch dirs a process that died mid-snapshot left behind: removed once, before this process serves any. */
function removeStaleExports(memberDir: string): void {
  if (cleaned.has(memberDir) || !existsSync(memberDir)) return;
  cleaned.add(memberDir);
  for (const name of readdirSync(memberDir))
    if (name.startsWith(EXPORT_DIR_PREFIX)) rmSync(join(memberDir, name), { recursive: true, force: true });
}

export function maintenanceService(
  s: EtcdServer,
  info: StatusInfo,
  toStatus: ToStatus,
): grpc.UntypedServiceImplementation {
  removeStaleExports(join(s.config.dataDir, "member"));
  const hdr = (): Record<string, string> => headerObject(s.header());
  return {
    Status: unary(async () => {
      const size = s.kv.size();
      return {
        header: hdr(),
        version: info.version,
        dbSize: String(size.dbSizeBytes),
        leader: s.leader.toString(),
        raftIndex: String(s.committedIndex),
        raftTerm: String(s.term),
        raftAppliedIndex: String(s.appliedIndex),
        errors: s.alarms.list().map((a) => `memberID:${a.memberId} alarm:${ALARM_NAMES[a.alarm]} `),
        dbSizeInUse: String(size.dbSizeInUseBytes),
        isLearner: s.isLearner,
      };
    }, toStatus),
    Alarm: unary(async (req) => {
      const action = enumNumber(req["action"], ACTION_NAMES);
      const type = enumNumber(req["alarm"], ALARM_NAMES) as AlarmType;
      // etcd's Alarm answers carry no header.
      const { response } = await s.alarm(action, int64(req["memberID"]), type);
      return {
        header: null,
        alarms: response.map((a) => ({ memberID: a.memberId.toString(), alarm: ALARM_NAMES[a.alarm] })),
      };
    }, toStatus),
    Defragment: unary(async (_req, call) => {
      s.auth.checkMaintenance(authInfoOf(s, call));
      s.metrics.defragInflight++;
      try {
        return { header: headerObject(await timed(s.metrics.defrag, () => s.defragment())) };
      } finally {
        s.metrics.defragInflight--;
      }
    }, toStatus),
    Hash: unary(async (_req, call) => {
      s.auth.checkMaintenance(authInfoOf(s, call));
      return { header: hdr(), hash: (await timed(s.metrics.hash, async () => s.kv.backend.hash())) >>> 0 };
    }, toStatus),
    HashKV: unary(async (req, call) => {
      s.auth.checkMaintenance(authInfoOf(s, call));
      const r = await timed(s.metrics.hashRev, () => s.kv.hashKV(Number(int64(req["revision"]))));
      // etcd reports -1 for a store that was never compacted.
      return {
        header: headerObject(s.header(r.revision)),
        hash: r.hash >>> 0,
        compact_revision: String(r.compactRevision > 0 ? r.compactRevision : -1),
      };
    }, toStatus),
    MoveLeader: unary(async (req) => ({ header: headerObject(await s.moveLeader(int64(req["targetID"]))) }), toStatus),
    Snapshot: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      Promise.resolve()
        .then(() => s.auth.checkMaintenance(authInfoOf(s, call)))
        .then(() => sendSnapshot(s, call))
        .catch((err: unknown) => {
          call.emit("error", Object.assign(new Error(err instanceof Error ? err.message : String(err)), toStatus(err)));
        });
    },
  };
}

/** Runs `fn` and records how long it took in `h` (seconds), whether it succeeds or not. */
async function timed<T>(h: Histogram, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    h.observe((performance.now() - t0) / 1000);
  }
}

async function sendSnapshot(s: EtcdServer, call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  // Scratch space beside the backend (the same disk, not a possibly memory-backed /tmp): a copy of the backend
  // and the bbolt file, removed when the stream ends.
  const dir = mkdtempSync(join(s.config.dataDir, "member", EXPORT_DIR_PREFIX));
  try {
    const file = join(dir, "db");
    await exportBoltSnapshot(s.kv.backend, { file, workDir: dir });
    const fh = await open(file, "r");
    try {
      const total = (await fh.stat()).size;
      const sha = createHash("sha256");
      let sent = 0;
      while (sent < total) {
        // Every chunk but the last is a full 32 KiB, as etcd reads its pipe with io.ReadFull.
        const buf = Buffer.alloc(Math.min(SNAPSHOT_CHUNK_BYTES, total - sent));
        const { bytesRead } = await fh.read(buf, 0, buf.length, sent);
        if (bytesRead === 0) throw new Error(`snapshot file ended at ${sent} of ${total} bytes`);
        const blob = buf.subarray(0, bytesRead);
        sha.update(blob);
        sent += bytesRead;
        if (call.cancelled) return;
        // etcd's snapshot messages carry no header: only the bytes still to come and the chunk.
        if (!call.write({ remaining_bytes: String(total - sent), blob })) {
          await new Promise((resolve) => call.once("drain", resolve));
        }
      }
      call.write({ remaining_bytes: "0", blob: sha.digest() });
      call.end();
    } finally {
      await fh.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
