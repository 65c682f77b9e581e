// Request and response shapes of the KV store: plain objects mirroring etcd's etcdserverpb messages (field
// names camelCased, enums as etcd's numbers), independent of any gRPC library. KeyValues travel as their
// encoded mvccpb.KeyValue bytes (see kv_codec.ts).
import type { WriteView } from "../backend/read_view.js";
import type { EtcdError } from "../errors.js";

export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
export type SortOrder = (typeof SortOrder)[keyof typeof SortOrder];
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
export type SortTarget = (typeof SortTarget)[keyof typeof SortTarget];
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;
export type CompareTarget = (typeof CompareTarget)[keyof typeof CompareTarget];
export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
export type CompareResult = (typeof CompareResult)[keyof typeof CompareResult];

export interface RangeRequest {
  readonly key: Uint8Array;
  /** Absent/empty = the single key; [0x00] = every key ≥ key; otherwise [key, rangeEnd). */
  readonly rangeEnd?: Uint8Array;
  readonly limit?: number;
  /** 0 or absent = the current revision. */
  readonly revision?: number;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

/** Bytes free before / after a range's framed kvs (a RangeResponse header is ≤ 46 bytes, more+count ≤ 13). */
export const RANGE_FRAME_HEAD_BYTES = 64;
export const RANGE_FRAME_TAIL_BYTES = 16;

/** The kvs as RangeResponse field-2 frames in buf[start, end), with the free gaps above around them. */
export interface FramedKvs {
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
}

export interface RangeResponse {
  readonly revision: number;
  /** Present when the range was read by the range task: the kvs already framed for the wire. */
  readonly framed?: FramedKvs;
  /** Encoded mvccpb.KeyValue of each key (value cut out when keysOnly; none when countOnly). */
  readonly kvs: readonly Uint8Array[];
  readonly more: boolean;
  readonly count: number;
  /**
   * Present when kvs/framed are views of an output slab lent by a read worker: call once they will not be read
   * again (the API: when the response is on the socket) so the next long Range reuses the slab. Not calling it
   * only delays the reuse until the slab is garbage-collected (core/backend/read_view.ts).
   */
  readonly release?: () => void;
}

export interface PutRequest {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly lease?: bigint;
  readonly prevKv?: boolean;
  readonly ignoreValue?: boolean;
  readonly ignoreLease?: boolean;
}

export interface PutResponse {
  readonly revision: number;
  readonly prevKv?: Uint8Array;
}

export interface DeleteRangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly prevKv?: boolean;
}

export interface DeleteRangeResponse {
  readonly revision: number;
  readonly deleted: number;
  readonly prevKvs: readonly Uint8Array[];
}

export interface Compare {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly target: CompareTarget;
  readonly result: CompareResult;
  /** The operand for the target: version/createRevision/modRevision (number), value (bytes), lease (bigint). */
  readonly version?: number;
  readonly createRevision?: number;
  readonly modRevision?: number;
  readonly value?: Uint8Array;
  readonly lease?: bigint;
}

export type RequestOp =
  | { readonly range: RangeRequest }
  | { readonly put: PutRequest }
  | { readonly deleteRange: DeleteRangeRequest }
  | { readonly txn: TxnRequest };

export type ResponseOp =
  | { readonly range: RangeResponse }
  | { readonly put: PutResponse }
  | { readonly deleteRange: DeleteRangeResponse }
  | { readonly txn: TxnResponse };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface TxnResponse {
  readonly revision: number;
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
}

export interface CompactResponse {
  readonly revision: number;
}

export interface HashKVResponse {
  readonly revision: number;
  readonly hash: number;
  readonly compactRevision: number;
}

/**
 * A change to another module's state (a lease grant or revoke) that must commit in the same backend transaction
 * as the batch's key writes. `run` writes its own buckets through the view and returns keys to delete at one new
 * revision (a revoke's attached keys) and a value for the proposer. It throws an EtcdError before writing
 * anything to refuse the request.
 */
export interface Effect {
  run(tx: WriteView): EffectResult;
  /**
   * When run() or the deletes it asked for failed and its writes were rolled back: what to write and answer
   * instead (a conf change records that it was refused). Without it the failure's EtcdError is the answer.
   */
  refused?(tx: WriteView, err: EtcdError): EffectResult;
}

export interface EffectResult {
  readonly deleteKeys?: readonly Uint8Array[];
  readonly value?: unknown;
  /**
   * In-memory changes that must happen only once the whole request applied (so a request that fails half-way
   * leaves memory as it found it); run in apply order, before the next request of the batch.
   */
  readonly afterApply?: () => void;
}

export interface EffectResponse {
  readonly revision: number;
  readonly deleted: number;
  readonly value: unknown;
}

/** One write request applied through Raft; a batch of them commits in one backend transaction. */
export type WriteRequest =
  | { readonly put: PutRequest }
  | { readonly deleteRange: DeleteRangeRequest }
  | { readonly txn: TxnRequest }
  | { readonly compact: { readonly revision: number } }
  | { readonly effect: Effect };

export type WriteResponse =
  | { readonly put: PutResponse }
  | { readonly deleteRange: DeleteRangeResponse }
  | { readonly txn: TxnResponse }
  | { readonly compact: CompactResponse }
  | { readonly effect: EffectResponse };
