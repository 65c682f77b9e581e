// One-member etcd or etcd-ts processes for the security tests: free 127.0.0.1 ports, a temp data dir, extra
// flags, optionally TLS on the client URL; ready once a Put answers (auth is not enabled yet then); the pid for
// RSS readings; stop() removes all. runToExit() starts one that is expected to stop at start-up.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ServerProcess, makeDataDir } from "../../harness/targets/launcher.js";
import { REPO, freePort } from "../compat/processes.js";
import { RawEtcd, pb } from "./raw_grpc.js";

export type Kind = "etcd" | "etcd-ts";

export interface Member {
  readonly kind: Kind;
  /** host:port of the client URL. */
  readonly endpoint: string;
  readonly pid: number;
  readonly dataDir: string;
  /** Everything the process wrote to stderr so far. */
  log(): string;
  /** Resident set size now, KiB (/proc/<pid>/status VmRSS). */
  rssKib(): number;
  stop(): Promise<void>;
}

const READY_MS = 20_000;

/** TLS on the client URL: the server's flags, and the PEM bytes a client that passes uses to check readiness. */
export interface MemberTls {
  readonly flags: readonly string[];
  readonly client: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
}

/** Spawns `kind` with `args` through the launcher; the returned log() is everything it wrote to stderr so far. */
function spawnMember(
  kind: Kind,
  args: readonly string[],
  dataDir: string,
  ports: readonly number[],
): { proc: ServerProcess; log: () => string } {
  let log = "";
  const proc = new ServerProcess({ label: kind, dataDir, ports, onLine: (line) => (log += `${line}\n`) });
  if (kind === "etcd") proc.spawn("etcd", args);
  else proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args]);
  return { proc, log: (): string => log };
}

export async function startMember(kind: Kind, extra: readonly string[] = [], tls?: MemberTls): Promise<Member> {
  const [client, peer] = [await freePort(), await freePort()];
  const dataDir = makeDataDir(`etcd-ts-security-${kind}-`);
  const clientUrl = `${tls === undefined ? "http" : "https"}://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = [
    "--name",
    "sec",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `sec=${peerUrl}`,
    "--logger",
    "zap",
    "--log-outputs",
    "stderr",
    ...(tls?.flags ?? []),
    ...extra,
  ];
  const { proc, log } = spawnMember(kind, args, dataDir, [client, peer]);
  const pid = proc.pid ?? 0;
  const stop = (): Promise<void> => proc.dispose();
  const m: Member = {
    kind,
    endpoint: `127.0.0.1:${client}`,
    pid,
    dataDir,
    log,
    stop,
    rssKib: () => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN),
  };
  try {
    await untilServing(m, () => !proc.running, tls?.client);
  } catch (err) {
    await stop();
    throw err;
  }
  return m;
}

async function untilServing(m: Member, exitedNow: () => boolean, tls: MemberTls["client"] | undefined): Promise<void> {
  const raw = new RawEtcd(m.endpoint, tls);
  const deadline = Date.now() + READY_MS;
  try {
    for (;;) {
      const r = await raw.call("KV", "Put", pb.msg(pb.bytes(1, "ready"), pb.bytes(2, "1")));
      if (r.ok) return;
      if (exitedNow() || Date.now() > deadline)
        throw new Error(`${m.kind} not serving: ${r.details}\n${m.log().slice(-1500)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    raw.close();
  }
}

/** Starts `kind` with flags it should refuse at start-up; resolves with its exit code and log (15 s at most). */
export async function runToExit(kind: Kind, extra: readonly string[]): Promise<{ code: number | null; log: string }> {
  const [client, peer] = [await freePort(), await freePort()];
  const dataDir = makeDataDir(`etcd-ts-security-${kind}-`);
  const clientUrl = `https://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = [
    "--name",
    "sec",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `sec=${peerUrl}`,
    ...extra,
  ];
  const { proc, log } = spawnMember(kind, args, dataDir, [client, peer]);
  const timer = setTimeout(() => proc.signal("SIGKILL"), 15_000);
  await proc.exited();
  clearTimeout(timer);
  const code = proc.exitStatus?.code ?? null;
  await proc.dispose();
  return { code, log: log() };
}

/** The reasons of "rejected connection" log lines: etcd's zap error field, etcd-ts's message text; sorted, unique. */
export function rejectionReasons(log: string): string[] {
  const out = new Set<string>();
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { msg?: string; error?: string };
    if (entry.msg === "rejected connection" && entry.error !== undefined) out.add(entry.error);
    const ours = /^rejected connection from "[^"]+" \(error "((?:[^"\\]|\\.)*)", ServerName/.exec(entry.msg ?? "")?.[1];
    if (ours !== undefined) out.add(JSON.parse(`"${ours}"`) as string);
  }
  return [...out].sort();
}
