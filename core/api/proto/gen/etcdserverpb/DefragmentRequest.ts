// Original file: core/api/proto/etcdserverpb/rpc.proto


export interface DefragmentRequest {
}

export interface DefragmentRequest__Output {
}
