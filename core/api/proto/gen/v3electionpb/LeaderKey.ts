// Original file: core/api/proto/v3electionpb/v3election.proto

import type { Long } from '@grpc/proto-loader';

export interface LeaderKey {
  'name'?: (Buffer | Uint8Array | string);
  'key'?: (Buffer | Uint8Array | string);
  /**
   * The leader key's create revision: proclaim and resign act only on that incarnation of the key.
   */
  'rev'?: (number | string | Long);
  'lease'?: (number | string | Long);
}

export interface LeaderKey__Output {
  'name': (Buffer);
  'key': (Buffer);
  /**
   * The leader key's create revision: proclaim and resign act only on that incarnation of the key.
   */
  'rev': (string);
  'lease': (string);
}
