// Original file: core/api/proto/v3lockpb/v3lock.proto

import type { Long } from '@grpc/proto-loader';

export interface LockRequest {
  'name'?: (Buffer | Uint8Array | string);
  /**
   * The lease the lock key is attached to; 0 = the server grants one (60 s, not kept alive).
   */
  'lease'?: (number | string | Long);
}

export interface LockRequest__Output {
  'name': (Buffer);
  /**
   * The lease the lock key is attached to; 0 = the server grants one (60 s, not kept alive).
   */
  'lease': (string);
}
