// Cluster alarms (etcd's NOSPACE and CORRUPT), raised and cleared through Raft and kept in the backend's alarm
// bucket so they survive a restart, as etcd's alarm store. While NOSPACE is raised the apply path refuses what
// would grow the database (puts, txns that put, lease grants) with "etcdserver: mvcc: database space exceeded";
// reads, deletes and compaction go on, so an operator can free space, defragment and disarm.
import type { ReadView, WriteView } from "../backend/read_view.js";

export const ALARM_BUCKET = "alarm";

/** etcdserverpb.AlarmType numbers. */
export const AlarmType = { NONE: 0, NOSPACE: 1, CORRUPT: 2 } as const;
export type AlarmType = (typeof AlarmType)[keyof typeof AlarmType];
export const ALARM_NAMES: Record<AlarmType, string> = { 0: "NONE", 1: "NOSPACE", 2: "CORRUPT" };

/** etcdserverpb.AlarmRequest.AlarmAction numbers. */
export const AlarmAction = { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;
export type AlarmAction = (typeof AlarmAction)[keyof typeof AlarmAction];

export interface AlarmMember {
  readonly memberId: bigint;
  readonly alarm: AlarmType;
}

function keyOf(memberId: bigint, alarm: AlarmType): Uint8Array {
  const b = Buffer.alloc(9);
  b.writeBigUInt64BE(memberId);
  b.writeUInt8(alarm, 8);
  return b;
}

export class AlarmStore {
  readonly #active = new Map<string, AlarmMember>();

  static load(view: ReadView): AlarmStore {
    const store = new AlarmStore();
    for (const { key } of view.range(ALARM_BUCKET, {})) {
      const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
      store.#set({ memberId: b.readBigUInt64BE(0), alarm: b.readUInt8(8) as AlarmType });
    }
    return store;
  }

  #set(a: AlarmMember): void {
    this.#active.set(`${a.memberId}:${a.alarm}`, a);
  }

  list(alarm: AlarmType = AlarmType.NONE): AlarmMember[] {
    return [...this.#active.values()].filter((a) => alarm === AlarmType.NONE || a.alarm === alarm);
  }

  /** Asked for every write and quota check: no list is built. */
  has(alarm: AlarmType): boolean {
    for (const a of this.#active.values()) if (alarm === AlarmType.NONE || a.alarm === alarm) return true;
    return false;
  }

  /** Raises an alarm; returns the alarm list after it (etcd answers an activate with the alarm raised). */
  activate(tx: WriteView, memberId: bigint, alarm: AlarmType): AlarmMember[] {
    if (alarm === AlarmType.NONE) return [];
    tx.put(ALARM_BUCKET, keyOf(memberId, alarm), new Uint8Array(0));
    const a = { memberId, alarm };
    this.#set(a);
    return [a];
  }

  /** Clears alarms: a member id of 0 and/or alarm NONE match every member / every type (etcdctl's disarm). */
  deactivate(tx: WriteView, memberId: bigint, alarm: AlarmType): AlarmMember[] {
    const cleared = [...this.#active.values()].filter(
      (a) => (memberId === 0n || a.memberId === memberId) && (alarm === AlarmType.NONE || a.alarm === alarm),
    );
    for (const a of cleared) {
      tx.del(ALARM_BUCKET, keyOf(a.memberId, a.alarm));
      this.#active.delete(`${a.memberId}:${a.alarm}`);
    }
    return cleared;
  }
}
