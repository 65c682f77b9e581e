// Original file: core/api/proto/etcdserverpb/rpc.proto


export interface AuthDisableRequest {
}

export interface AuthDisableRequest__Output {
}
