// Original file: core/api/proto/v3electionpb/v3election.proto

import type { ResponseHeader as _etcdserverpb_ResponseHeader, ResponseHeader__Output as _etcdserverpb_ResponseHeader__Output } from '../etcdserverpb/ResponseHeader.js';

export interface ResignResponse {
  'header'?: (_etcdserverpb_ResponseHeader | null);
}

export interface ResignResponse__Output {
  'header': (_etcdserverpb_ResponseHeader__Output | null);
}
