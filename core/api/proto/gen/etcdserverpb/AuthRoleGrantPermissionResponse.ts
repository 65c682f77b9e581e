// Original file: core/api/proto/etcdserverpb/rpc.proto

import type { ResponseHeader as _etcdserverpb_ResponseHeader, ResponseHeader__Output as _etcdserverpb_ResponseHeader__Output } from '../etcdserverpb/ResponseHeader.js';

export interface AuthRoleGrantPermissionResponse {
  'header'?: (_etcdserverpb_ResponseHeader | null);
}

export interface AuthRoleGrantPermissionResponse__Output {
  'header': (_etcdserverpb_ResponseHeader__Output | null);
}
