// etcd's KV service: Range, Put, DeleteRange, Txn and Compact. Requests are checked (sizes, txn op count,
// permissions) before they reach the server; responses are protobuf bytes written around the stored KeyValues.
import type * as grpc from "@grpc/grpc-js";
import { checkDelete, checkPut, checkRange, checkTxn, type RequestLimits } from "../mvcc/validate.js";
import type { EtcdServer } from "../server/etcd_server.js";
import { authInfoOf } from "./auth_service.js";
import * as kc from "./kv_codec.js";
import type * as pb from "./proto/types.js";
import { unary } from "./unary.js";

/** `limits`: --max-request-bytes and --max-txn-ops, checked before anything is proposed. */
export function kvService(s: EtcdServer, limits: RequestLimits): grpc.UntypedServiceImplementation {
  return {
    Range: unary(async (req: pb.RangeRequest__Output, call) => {
      const r = kc.toRangeRequest(req);
      checkRange(r);
      s.auth.checkRange(authInfoOf(s, call), r);
      const { header, response } = await s.range(r);
      return kc.encodeRangeResponse(header, response);
    }),
    Put: unary(async (req: pb.PutRequest__Output, call) => {
      const r = kc.toPutRequest(req);
      checkPut(r, limits);
      const info = authInfoOf(s, call);
      s.auth.checkPut(info, r);
      const { header, response } = await s.put(r, info);
      return kc.encodePutResponse(header, response);
    }),
    DeleteRange: unary(async (req: pb.DeleteRangeRequest__Output, call) => {
      const r = kc.toDeleteRangeRequest(req);
      checkDelete(r);
      const info = authInfoOf(s, call);
      s.auth.checkDeleteRange(info, r);
      const { header, response } = await s.deleteRange(r, info);
      return kc.serialize(kc.deleteRangeResponse(header, response));
    }),
    Txn: unary(async (req: pb.TxnRequest__Output, call) => {
      const r = kc.toTxnRequest(req);
      checkTxn(r, limits);
      const info = authInfoOf(s, call);
      s.auth.checkTxn(info, r);
      const { header, response } = await s.txn(r, info);
      return kc.serialize(kc.txnResponse(header, response));
    }),
    Compact: unary(async (req: pb.CompactionRequest__Output, call) => {
      authInfoOf(s, call); // etcd 3.4 lets any user compact, but a bad token is still refused
      const { header } = await s.compact(Number(req.revision));
      return kc.serialize(kc.compactResponse(header));
    }),
  };
}
