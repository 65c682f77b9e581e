// Original file: core/api/proto/etcdserverpb/rpc.proto


export interface AuthRoleListRequest {
}

export interface AuthRoleListRequest__Output {
}
