// `etcd-ts snapshot restore FILE` with etcdctl's flags (core/server/snapshot_restore.ts does the work): the new
// cluster comes from --name, --initial-cluster, --initial-cluster-token and --initial-advertise-peer-urls with
// etcdctl's defaults, the data dir defaults to NAME.etcd, and the member's ids are saved in the data dir so a
// member started there is the restored one.
import { Cluster } from "../membership/cluster.js";
import { idToHex } from "../membership/ids.js";
import { restoreSnapshot } from "../server/snapshot_restore.js";
import { writeIdentity } from "./member_identity.js";

const USAGE =
  "usage: etcd-ts snapshot restore FILE [--data-dir DIR] [--name NAME] [--initial-cluster NAME=URL,...] [--initial-cluster-token TOKEN] [--initial-advertise-peer-urls URLS] [--skip-hash-check]";
const VALUE_FLAGS = [
  "data-dir",
  "name",
  "initial-cluster",
  "initial-cluster-token",
  "initial-advertise-peer-urls",
] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];

interface RestoreFlags {
  readonly values: Map<ValueFlag, string>;
  readonly skipHashCheck: boolean;
}

/** Parses `--flag value`, `--flag=value` (one or two dashes, as Go's flag package); a string is an error. */
function parseRestoreFlags(rest: readonly string[]): RestoreFlags | string {
  const values = new Map<ValueFlag, string>();
  let skipHashCheck = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? "";
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) return `unexpected argument ${arg}`;
    const name = m[1] as string;
    if (name === "skip-hash-check") {
      skipHashCheck = m[2] === undefined || m[2] === "true";
      continue;
    }
    if (!(VALUE_FLAGS as readonly string[]).includes(name)) return `unknown flag ${arg}`;
    const value = m[2] ?? rest[++i];
    if (value === undefined) return `flag needs an argument: ${arg}`;
    values.set(name as ValueFlag, value);
  }
  return { values, skipHashCheck };
}

/** The `snapshot` subcommand; returns the exit code. */
export async function snapshotCommand(args: readonly string[], out: (line: string) => void): Promise<number> {
  const [verb, file, ...rest] = args;
  if (verb !== "restore" || file === undefined || file.startsWith("-")) {
    out(USAGE);
    return 2;
  }
  const flags = parseRestoreFlags(rest);
  if (typeof flags === "string") {
    out(flags);
    out(USAGE);
    return 2;
  }
  const v = (k: ValueFlag, dflt: string): string => flags.values.get(k) ?? dflt;
  const name = v("name", "default");
  const advertise = v("initial-advertise-peer-urls", "http://localhost:2380");
  const dataDir = v("data-dir", `${name}.etcd`);
  try {
    const cluster = Cluster.fromInitialCluster(
      v("initial-cluster", `${name}=${advertise}`),
      v("initial-cluster-token", "etcd-cluster"),
      {
        name,
        advertisePeerUrls: advertise.split(","),
      },
    );
    const me = cluster.members.find((m) => m.name === name);
    if (me === undefined)
      throw new Error(`couldn't find local name ${JSON.stringify(name)} in the initial cluster configuration`);
    const r = await restoreSnapshot({
      file,
      dataDir,
      skipHashCheck: flags.skipHashCheck,
      members: cluster.members,
      clusterId: cluster.clusterId,
    });
    writeIdentity(dataDir, { memberId: me.id, clusterId: cluster.clusterId });
    out(
      `restored snapshot ${file} (${r.format}, ${r.bytes} bytes) into ${dataDir} as member ${idToHex(me.id)} of cluster ${idToHex(cluster.clusterId)}`,
    );
    return 0;
  } catch (err) {
    out(`Error: ${(err as Error).message}`);
    return 1;
  }
}
