// Original file: core/api/proto/etcdserverpb/rpc.proto


export interface AuthUserChangePasswordRequest {
  'name'?: (string);
  'password'?: (string);
}

export interface AuthUserChangePasswordRequest__Output {
  'name': (string);
  'password': (string);
}
