// Original file: core/api/proto/etcdserverpb/rpc.proto

import type { ResponseHeader as _etcdserverpb_ResponseHeader, ResponseHeader__Output as _etcdserverpb_ResponseHeader__Output } from '../etcdserverpb/ResponseHeader.js';

export interface AuthUserAddResponse {
  'header'?: (_etcdserverpb_ResponseHeader | null);
}

export interface AuthUserAddResponse__Output {
  'header': (_etcdserverpb_ResponseHeader__Output | null);
}
