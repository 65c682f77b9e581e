// etcd's Lease service: Grant, Revoke, KeepAlive (a bidi stream: one response per request, as etcd), TimeToLive
// and Leases, over the server's lessor. etcd's answers where they are not errors: a keepalive of a lease that is
// gone answers TTL 0, TimeToLive of a lease that is gone answers TTL -1.
import type * as grpc from "@grpc/grpc-js";
import { isEtcdError } from "../errors.js";
import { headerObject, int64, unary } from "./unary.js";
import { authInfoOf } from "./auth_service.js";
import type { EtcdServer } from "../server/etcd_server.js";

type Int64In = string | number | undefined | null;

interface KeepAliveIn {
  readonly ID?: Int64In;
}

export function leaseService(
  s: EtcdServer,
  toStatus: (e: unknown) => Partial<grpc.StatusObject>,
): grpc.UntypedServiceImplementation {
  return {
    LeaseGrant: unary(async (req, call) => {
      authInfoOf(s, call); // any user may grant (etcd 3.4), but a bad token is refused as for every proposal
      const { header, response } = await s.leaseGrant(
        int64(req["ID"] as Int64In),
        Number(int64(req["TTL"] as Int64In)),
      );
      return { header: headerObject(header), ID: response.id.toString(), TTL: String(response.ttl), error: "" };
    }, toStatus),
    LeaseRevoke: unary(async (req, call) => {
      const id = int64(req["ID"] as Int64In);
      // etcd: revoking deletes the lease's keys, so it needs write permission on every one of them.
      const info = authInfoOf(s, call);
      s.auth.checkLeaseKeys(info, id);
      const { header } = await s.leaseRevoke(id, info);
      return { header: headerObject(header) };
    }, toStatus),
    LeaseTimeToLive: unary(async (req, call) => {
      const id = int64(req["ID"] as Int64In);
      const keys = req["keys"] === true;
      // etcd 3.4.26 (CVE-2023-32082): listing a lease's keys needs read permission on every one of them.
      if (keys) s.auth.checkLeaseKeysReadable(authInfoOf(s, call), id);
      const { header, response } = await s.leaseTimeToLive(id, keys);
      return {
        header: headerObject(header),
        ID: response.id.toString(),
        TTL: String(response.ttl),
        grantedTTL: String(response.grantedTtl),
        keys: response.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength)),
      };
    }, toStatus),
    LeaseLeases: unary(() => {
      const { header, response } = s.leaseLeases();
      return { header: headerObject(header), leases: response.map((id) => ({ ID: id.toString() })) };
    }, toStatus),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<KeepAliveIn, unknown>) => keepAliveStream(s, call, toStatus),
  };
}

/** One renew per request, answered in order; a lease that is gone answers TTL 0 (etcd's keepalive contract). */
function keepAliveStream(
  s: EtcdServer,
  call: grpc.ServerDuplexStream<KeepAliveIn, unknown>,
  toStatus: (e: unknown) => Partial<grpc.StatusObject>,
): void {
  // Renewals may be forwarded to the leader (async): answers are chained so they go out in request order.
  let previous: Promise<void> = Promise.resolve();
  const answerError = (id: bigint, err: unknown): void => {
    if (isEtcdError(err, "LEASE_NOT_FOUND")) {
      call.write({ header: headerObject(s.header()), ID: id.toString(), TTL: "0" });
      return;
    }
    // grpc-js ends a server stream with the status of an emitted error.
    call.emit("error", Object.assign(new Error(err instanceof Error ? err.message : String(err)), toStatus(err)));
  };
  call.on("data", (req: KeepAliveIn) => {
    const id = int64(req.ID);
    const renewal = s.leaseRenew(id);
    renewal.catch(() => undefined);
    previous = previous
      .then(() => renewal)
      .then(
        ({ header, ttl }) => void call.write({ header: headerObject(header), ID: id.toString(), TTL: String(ttl) }),
        (err: unknown) => answerError(id, err),
      );
  });
  call.on("end", () => call.end());
  call.on("error", () => undefined);
}
