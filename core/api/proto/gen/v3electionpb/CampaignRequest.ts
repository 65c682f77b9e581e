// Original file: core/api/proto/v3electionpb/v3election.proto

import type { Long } from '@grpc/proto-loader';

export interface CampaignRequest {
  'name'?: (Buffer | Uint8Array | string);
  /**
   * 0 = the server grants a lease (60 s, not kept alive).
   */
  'lease'?: (number | string | Long);
  'value'?: (Buffer | Uint8Array | string);
}

export interface CampaignRequest__Output {
  'name': (Buffer);
  /**
   * 0 = the server grants a lease (60 s, not kept alive).
   */
  'lease': (string);
  'value': (Buffer);
}
