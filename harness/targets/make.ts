// Turns target specs into started targets, or an honest "not yet available" with the reason.
import { existsSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import { execPath } from "node:process";
import { fileURLToPath } from "node:url";
import { EtcdCluster, type EtcdClusterOptions } from "./etcd_cluster.js";
import { EtcdProcess, etcdBinaryVersion } from "./etcd_process.js";
import { ExternalTarget } from "./external.js";
import { specName, type Target, type TargetSpec } from "./target.js";

export interface TargetSlot {
  readonly name: string;
  readonly target: Target | undefined;
  readonly reason: string | undefined;
}

/** ETCD_TS_UNAVAILABLE: the etcd-ts server entry point has not been built. */
export const ETCD_TS_UNAVAILABLE =
  "etcd-ts is not built (dist/core/cli/main.js missing; run npm run build); not measured";

/** etcdTsEntry finds the compiled etcd-ts server (dist/core/cli/main.js) from source or from dist/. */
export function etcdTsEntry(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, "../../core/cli/main.js"), resolve(here, "../../dist/core/cli/main.js")];
  return candidates.find((p) => p.includes(`${sep}dist${sep}`) && existsSync(p));
}

export function makeTarget(spec: TargetSpec, opts: { dataParent?: string } = {}): TargetSlot {
  const name = specName(spec);
  switch (spec.kind) {
    case "etcd": {
      if (etcdBinaryVersion() === undefined)
        return { name, target: undefined, reason: "etcd is not on PATH (apt-get install etcd-server)" };
      if (spec.members > 1) return { name, target: new EtcdCluster(spec.members), reason: undefined };
      return {
        name,
        target: new EtcdProcess(opts.dataParent === undefined ? {} : { dataParent: opts.dataParent }),
        reason: undefined,
      };
    }
    case "etcd-ts": {
      const entry = etcdTsEntry();
      if (entry === undefined) return { name, target: undefined, reason: ETCD_TS_UNAVAILABLE };
      return {
        name,
        reason: undefined,
        target: new EtcdProcess({
          bin: execPath,
          prefixArgs: [entry],
          name,
          label: "etcd-ts",
          extraArgs: ["--backend-read-mode", spec.readMode],
          ...(opts.dataParent === undefined ? {} : { dataParent: opts.dataParent }),
        }),
      };
    }
    case "endpoints":
      return { name, target: new ExternalTarget(spec.endpoints), reason: undefined };
  }
}

export interface ClusterSlot {
  readonly name: string;
  readonly target: EtcdCluster | undefined;
  readonly reason: string | undefined;
}

/** The cluster kinds the cluster experiments compare. */
export const CLUSTER_KINDS = ["etcd", "etcd-ts"] as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[number];

/**
 * makeCluster makes an N-member cluster (not started) of real etcd or of the compiled etcd-ts (node running
 * dist/core/cli/main.js with etcd's flags), named etcd-N / etcd-ts-N. `faults: true` gives it a way to cut a
 * member off: a peer proxy for real etcd, --experimental-peer-fault-injection for etcd-ts.
 */
export function makeCluster(
  kind: ClusterKind,
  size: number,
  opts: Omit<EtcdClusterOptions, "bin" | "prefixArgs" | "name" | "label" | "faults"> & {
    readonly faults?: boolean;
  } = {},
): ClusterSlot {
  const { faults, ...rest } = opts;
  if (kind === "etcd") {
    const name = `etcd-${size}`;
    if (etcdBinaryVersion() === undefined)
      return { name, target: undefined, reason: "etcd is not on PATH (apt-get install etcd-server)" };
    return {
      name,
      reason: undefined,
      target: new EtcdCluster(size, { ...rest, name, ...(faults === true ? { faults: "proxy" } : {}) }),
    };
  }
  const name = `etcd-ts-${size}`;
  const entry = etcdTsEntry();
  if (entry === undefined) return { name, target: undefined, reason: ETCD_TS_UNAVAILABLE };
  return {
    name,
    reason: undefined,
    target: new EtcdCluster(size, {
      ...rest,
      name,
      label: "etcd-ts",
      bin: execPath,
      prefixArgs: [entry],
      ...(faults === true ? { faults: "flag" } : {}),
    }),
  };
}
