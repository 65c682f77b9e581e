// Turns target specs into started targets, or an honest "not yet available" with the reason.
import { EtcdCluster } from "./etcd_cluster.js";
import { EtcdProcess, etcdBinaryVersion } from "./etcd_process.js";
import { ExternalTarget } from "./external.js";
import { specName, type Target, type TargetSpec } from "./target.js";

export interface TargetSlot {
  readonly name: string;
  readonly target: Target | undefined;
  readonly reason: string | undefined;
}

/** ETCD_TS_UNAVAILABLE: etcd-ts has no client-serving server yet (its server issue is open). */
export const ETCD_TS_UNAVAILABLE = "etcd-ts does not serve client requests yet (the server issue is open); not measured";

export function makeTarget(spec: TargetSpec, opts: { dataParent?: string } = {}): TargetSlot {
  const name = specName(spec);
  switch (spec.kind) {
    case "etcd": {
      if (etcdBinaryVersion() === undefined) return { name, target: undefined, reason: "etcd is not on PATH (apt-get install etcd-server)" };
      if (spec.members > 1) return { name, target: new EtcdCluster(spec.members), reason: undefined };
      return { name, target: new EtcdProcess(opts.dataParent === undefined ? {} : { dataParent: opts.dataParent }), reason: undefined };
    }
    case "etcd-ts":
      return { name, target: undefined, reason: ETCD_TS_UNAVAILABLE };
    case "endpoints":
      return { name, target: new ExternalTarget(spec.endpoints), reason: undefined };
  }
}
