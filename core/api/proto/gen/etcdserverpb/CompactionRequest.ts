// Original file: core/api/proto/etcdserverpb/rpc.proto

import type { Long } from '@grpc/proto-loader';

export interface CompactionRequest {
  'revision'?: (number | string | Long);
  /**
   * physical = wait until the compaction is applied to the backend.
   */
  'physical'?: (boolean);
}

export interface CompactionRequest__Output {
  'revision': (string);
  /**
   * physical = wait until the compaction is applied to the backend.
   */
  'physical': (boolean);
}
