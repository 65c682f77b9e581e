// Original file: core/api/proto/mvccpb/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface KeyValue {
  /**
   * key in bytes; an empty key is not allowed.
   */
  'key'?: (Buffer | Uint8Array | string);
  /**
   * revision of the last creation of this key.
   */
  'create_revision'?: (number | string | Long);
  /**
   * revision of the last modification of this key.
   */
  'mod_revision'?: (number | string | Long);
  /**
   * number of modifications since creation; a delete resets it to zero.
   */
  'version'?: (number | string | Long);
  'value'?: (Buffer | Uint8Array | string);
  /**
   * ID of the lease attached to the key; 0 = no lease.
   */
  'lease'?: (number | string | Long);
}

export interface KeyValue__Output {
  /**
   * key in bytes; an empty key is not allowed.
   */
  'key': (Buffer);
  /**
   * revision of the last creation of this key.
   */
  'create_revision': (string);
  /**
   * revision of the last modification of this key.
   */
  'mod_revision': (string);
  /**
   * number of modifications since creation; a delete resets it to zero.
   */
  'version': (string);
  'value': (Buffer);
  /**
   * ID of the lease attached to the key; 0 = no lease.
   */
  'lease': (string);
}
