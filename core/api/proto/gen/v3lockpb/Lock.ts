// Original file: core/api/proto/v3lockpb/v3lock.proto

import type { MethodDefinition } from '@grpc/proto-loader'
import type { LockRequest as _v3lockpb_LockRequest, LockRequest__Output as _v3lockpb_LockRequest__Output } from '../v3lockpb/LockRequest.js';
import type { LockResponse as _v3lockpb_LockResponse, LockResponse__Output as _v3lockpb_LockResponse__Output } from '../v3lockpb/LockResponse.js';
import type { UnlockRequest as _v3lockpb_UnlockRequest, UnlockRequest__Output as _v3lockpb_UnlockRequest__Output } from '../v3lockpb/UnlockRequest.js';
import type { UnlockResponse as _v3lockpb_UnlockResponse, UnlockResponse__Output as _v3lockpb_UnlockResponse__Output } from '../v3lockpb/UnlockResponse.js';

export interface LockDefinition {
  Lock: MethodDefinition<_v3lockpb_LockRequest, _v3lockpb_LockResponse, _v3lockpb_LockRequest__Output, _v3lockpb_LockResponse__Output>
  Unlock: MethodDefinition<_v3lockpb_UnlockRequest, _v3lockpb_UnlockResponse, _v3lockpb_UnlockRequest__Output, _v3lockpb_UnlockResponse__Output>
}
