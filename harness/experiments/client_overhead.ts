// The client-overhead comparison of the failover experiment (overhead.csv): sequential Ranges to one member
// through a bare grpc-js channel, through EtcdClient and through the `etcd3` npm package, so each client's own
// cost per request shows beside the wire's.
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { Etcd3 } from "etcd3";
import { loadEtcdProto } from "../../core/api/proto/load.js";
import { EtcdClient } from "../../core/client/index.js";
import { percentileOf } from "../stats.js";
import type { ClientKind } from "./client_drivers.js";

export interface OverheadRow {
  readonly target: string;
  readonly path: "raw grpc-js" | ClientKind;
  readonly calls: number;
  readonly p50_us: number;
  readonly p99_us: number;
  readonly cpu_us_per_call: number;
}

const OVERHEAD_PATHS = ["raw grpc-js", "EtcdClient", "etcd3"] as const;

/**
 * overhead: each client's cost per request beside a bare grpc-js Range on one channel to the same member, in
 * alternating blocks of sequential calls (so load from elsewhere on the machine hits all alike).
 */
export async function overhead(target: string, endpoint: string, calls: number): Promise<OverheadRow[]> {
  const def = (loadEtcdProto().packageDefinition["etcdserverpb.KV"] as grpc.ServiceDefinition)["Range"]!;
  const raw = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  const client = new EtcdClient({ endpoints: [endpoint] });
  const theirs = new Etcd3({ hosts: [`http://${endpoint}`] });
  const req = { key: Buffer.from("/failover/overhead") };
  const paths: Record<(typeof OVERHEAD_PATHS)[number], () => Promise<unknown>> = {
    "raw grpc-js": () =>
      new Promise<unknown>((res, rej) =>
        raw.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          req,
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (err, r) => (err !== null ? rej(err) : res(r)),
        ),
      ),
    EtcdClient: () => client.get(req.key),
    etcd3: () => theirs.get(req.key.toString()).exec(),
  };
  const samples = { "raw grpc-js": [] as number[], EtcdClient: [] as number[], etcd3: [] as number[] };
  const cpuUs = { "raw grpc-js": 0, EtcdClient: 0, etcd3: 0 };
  try {
    for (const name of OVERHEAD_PATHS) await paths[name](); // connect each first
    const block = Math.max(1, Math.floor(calls / 10));
    for (let done = 0; done < calls; done += block) {
      for (const name of OVERHEAD_PATHS) {
        const cpu0 = process.cpuUsage();
        for (let i = 0; i < block; i++) {
          const t = performance.now();
          await paths[name]();
          samples[name].push((performance.now() - t) * 1000);
        }
        const cpu = process.cpuUsage(cpu0);
        cpuUs[name] += cpu.user + cpu.system;
      }
    }
  } finally {
    raw.close();
    client.close();
    theirs.close();
  }
  return OVERHEAD_PATHS.map((path) => ({
    target,
    path,
    calls: samples[path].length,
    p50_us: Math.round(percentileOf(samples[path], 50)),
    p99_us: Math.round(percentileOf(samples[path], 99)),
    cpu_us_per_call: Math.round(cpuUs[path] / samples[path].length),
  }));
}
