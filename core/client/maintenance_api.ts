// Maintenance service wrappers: status, alarms (list, disarm), defragment, hash, hashKV, snapshot as an async
// iterator of chunks, move-leader. Defragment, snapshot and move-leader act on the member behind the current
// endpoint (as etcdctl's, which takes one endpoint for them); give the client that member's endpoint.
import type * as grpc from "@grpc/grpc-js";
import type * as pb from "../api/proto/types.js";
import { methodDef, type Connection } from "./connection.js";
import { toClientError } from "./errors.js";
import { big, header, type ResponseHeader } from "./wire.js";

export interface Status {
  readonly header: ResponseHeader;
  readonly version: string;
  readonly dbSize: bigint;
  readonly leader: bigint;
  readonly raftIndex: bigint;
  readonly raftTerm: bigint;
  readonly isLearner: boolean;
  readonly errors: string[];
}

export const ALARM_TYPES = ["NONE", "NOSPACE", "CORRUPT"] as const;
export type AlarmType = (typeof ALARM_TYPES)[number];

export interface Alarm {
  readonly memberId: bigint;
  readonly alarm: AlarmType;
}

export interface SnapshotChunk {
  readonly remainingBytes: bigint;
  readonly blob: Buffer;
}

type AlarmAction = "GET" | "ACTIVATE" | "DEACTIVATE";

export class MaintenanceApi {
  constructor(private readonly conn: Connection) {}

  async status(): Promise<Status> {
    const res = await this.conn.unary<pb.StatusRequest, pb.StatusResponse__Output>("Maintenance", "Status", {});
    return {
      header: header(res.header),
      version: res.version,
      dbSize: big(res.dbSize),
      leader: big(res.leader),
      raftIndex: big(res.raftIndex),
      raftTerm: big(res.raftTerm),
      isLearner: res.isLearner,
      errors: res.errors,
    };
  }

  /** alarmList returns the cluster's active alarms. */
  async alarmList(): Promise<Alarm[]> {
    return this.alarm("GET", 0n, "NONE");
  }

  /**
   * alarmDisarm clears alarms: one member's (memberId ≠ 0) of one type, or, with no argument, every active
   * alarm (etcdctl alarm disarm). Returns the alarms it cleared.
   */
  async alarmDisarm(which?: Alarm): Promise<Alarm[]> {
    const targets = which === undefined ? await this.alarmList() : [which];
    const cleared: Alarm[] = [];
    for (const a of targets) cleared.push(...(await this.alarm("DEACTIVATE", a.memberId, a.alarm)));
    return cleared;
  }

  private async alarm(action: AlarmAction, memberId: bigint, alarm: AlarmType): Promise<Alarm[]> {
    const res = await this.conn.unary<pb.AlarmRequest, pb.AlarmResponse__Output>("Maintenance", "Alarm", {
      action,
      memberID: memberId.toString(),
      alarm,
    });
    return res.alarms.map((a) => ({ memberId: big(a.memberID), alarm: a.alarm }));
  }

  /** defragment rebuilds the current endpoint's backend file (it blocks that member meanwhile). */
  async defragment(opts: { timeoutMs?: number } = {}): Promise<ResponseHeader> {
    const res = await this.conn.unary<pb.DefragmentRequest, pb.DefragmentResponse__Output>(
      "Maintenance",
      "Defragment",
      {},
      opts.timeoutMs,
    );
    return header(res.header);
  }

  /** hash is the current member's hash of its whole backend (not comparable across members: it covers meta). */
  async hash(): Promise<{ header: ResponseHeader; hash: number }> {
    const res = await this.conn.unary<pb.HashRequest, pb.HashResponse__Output>("Maintenance", "Hash", {});
    return { header: header(res.header), hash: res.hash };
  }

  /** hashKV hashes the key-value history up to `revision` (0 = latest): equal on every healthy member. */
  async hashKV(revision = 0n): Promise<{ header: ResponseHeader; hash: number; compactRevision: bigint }> {
    const res = await this.conn.unary<pb.HashKVRequest, pb.HashKVResponse__Output>("Maintenance", "HashKV", {
      revision: revision.toString(),
    });
    return { header: header(res.header), hash: res.hash, compactRevision: big(res.compact_revision) };
  }

  /** moveLeader hands leadership to `targetId`; send it to the current leader's endpoint. */
  async moveLeader(targetId: bigint): Promise<ResponseHeader> {
    const res = await this.conn.unary<pb.MoveLeaderRequest, pb.MoveLeaderResponse__Output>(
      "Maintenance",
      "MoveLeader",
      { targetID: targetId.toString() },
    );
    return header(res.header);
  }

  /** snapshot streams the current member's backend as chunks; the last one has remainingBytes 0. */
  async *snapshot(): AsyncGenerator<SnapshotChunk> {
    const md = await this.conn.metadata();
    const { client, endpoint } = this.conn.service("Maintenance");
    const def = methodDef("Maintenance", "Snapshot");
    const stream = client.makeServerStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      {},
      md,
      {},
    ) as grpc.ClientReadableStream<pb.SnapshotResponse__Output>;
    try {
      for await (const res of stream as AsyncIterable<pb.SnapshotResponse__Output>) {
        yield { remainingBytes: big(res.remaining_bytes), blob: res.blob };
      }
    } catch (err) {
      throw toClientError(err, endpoint);
    } finally {
      stream.cancel();
    }
  }
}
