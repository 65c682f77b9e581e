// Original file: core/api/proto/mvccpb/kv.proto

import type { KeyValue as _mvccpb_KeyValue, KeyValue__Output as _mvccpb_KeyValue__Output } from '../mvccpb/KeyValue.js';

// Original file: core/api/proto/mvccpb/kv.proto

export const _mvccpb_Event_EventType = {
  PUT: 'PUT',
  DELETE: 'DELETE',
} as const;

export type _mvccpb_Event_EventType =
  | 'PUT'
  | 0
  | 'DELETE'
  | 1

export type _mvccpb_Event_EventType__Output = typeof _mvccpb_Event_EventType[keyof typeof _mvccpb_Event_EventType]

export interface Event {
  'type'?: (_mvccpb_Event_EventType);
  /**
   * kv after the event (a DELETE carries only the key and the delete's mod_revision).
   */
  'kv'?: (_mvccpb_KeyValue | null);
  /**
   * the key-value before the event, when the watcher asked for prev_kv.
   */
  'prev_kv'?: (_mvccpb_KeyValue | null);
}

export interface Event__Output {
  'type': (_mvccpb_Event_EventType__Output);
  /**
   * kv after the event (a DELETE carries only the key and the delete's mod_revision).
   */
  'kv': (_mvccpb_KeyValue__Output | null);
  /**
   * the key-value before the event, when the watcher asked for prev_kv.
   */
  'prev_kv': (_mvccpb_KeyValue__Output | null);
}
