// Proves peer mutual TLS end to end, on etcd-ts and on real etcd 3.4.23 with the same certificates and flags:
// three members with https:// peer URLs, --peer-client-cert-auth, --peer-trusted-ca-file and
// --peer-cert-allowed-cn=member form a cluster and replicate a put (read back linearizably on another member); a
// fourth member added with MemberAdd but holding a certificate of the same CA with CN=intruder is refused — the
// members log etcd's "rejected connection … client certificate authentication failed" — it never starts as a
// member, and the cluster keeps serving writes.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { REPO, freePort, haveEtcd } from "../compat/processes.js";
import { type CertFiles, FilePki } from "../../harness/pki.js";
import { ServerProcess, makeDataDir } from "../../harness/targets/launcher.js";
import { type Kind, rejectionReasons } from "./members.js";

const WAIT_MS = 30_000;

interface Proc {
  readonly name: string;
  readonly clientPort: number;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly proc: ServerProcess;
  log: string;
}

async function slot(name: string): Promise<Proc> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = makeDataDir(`etcd-ts-peer-mtls-${name}-`);
  const p: Proc = {
    name,
    clientPort,
    peerUrl: `https://127.0.0.1:${peerPort}`,
    dataDir,
    proc: new ServerProcess({
      label: name,
      dataDir,
      ports: [clientPort, peerPort],
      onLine: (l) => (p.log += `${l}\n`),
    }),
    log: "",
  };
  return p;
}

function launch(
  kind: Kind,
  p: Proc,
  cert: CertFiles,
  caFile: string,
  cluster: string,
  state: "new" | "existing",
): void {
  const clientUrl = `http://127.0.0.1:${p.clientPort}`;
  const args = [
    "--name",
    p.name,
    "--data-dir",
    p.dataDir,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    p.peerUrl,
    "--initial-advertise-peer-urls",
    p.peerUrl,
    "--initial-cluster",
    cluster,
    "--initial-cluster-state",
    state,
    "--initial-cluster-token",
    "peer-mtls",
    "--logger",
    "zap",
    "--log-outputs",
    "stderr",
    "--peer-cert-file",
    cert.cert,
    "--peer-key-file",
    cert.key,
    "--peer-trusted-ca-file",
    caFile,
    "--peer-client-cert-auth",
    "--peer-cert-allowed-cn",
    "member",
  ];
  if (kind === "etcd") p.proc.spawn("etcd", args);
  else p.proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args]);
}

function stop(p: Proc): Promise<void> {
  return p.proc.dispose();
}

async function until(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Outcome {
  readonly replicated: string | undefined;
  readonly reasons: string[];
  readonly intruderStarted: boolean;
  readonly members: number;
  readonly putAfter: boolean;
}

async function scenario(
  kind: Kind,
  pki: FilePki,
  certs: { member: CertFiles; intruder: CertFiles },
  procs: Proc[],
): Promise<Outcome> {
  const three = await Promise.all(["m1", "m2", "m3"].map(slot));
  procs.push(...three);
  const cluster = three.map((p) => `${p.name}=${p.peerUrl}`).join(",");
  for (const p of three) launch(kind, p, certs.member, pki.path("ca.crt"), cluster, "new");
  const clients = three.map((p) => new EtcdClient({ endpoints: [`127.0.0.1:${p.clientPort}`], callTimeoutMs: 3_000 }));
  try {
    await until(
      () =>
        clients[0]!.put("peer-mtls", kind).then(
          () => true,
          () => false,
        ),
      `${kind}: a put through m1`,
    );
    const replicated = (await clients[2]!.get("peer-mtls")).kvs[0]?.value.toString();
    const intruder = await slot("m4");
    procs.push(intruder);
    // etcd refuses a member add until every member has been connected for 5 s ("unhealthy cluster"): retry.
    await until(
      () =>
        clients[0]!.cluster.memberAdd([intruder.peerUrl]).then(
          () => true,
          () => false,
        ),
      `${kind}: MemberAdd`,
    );
    launch(kind, intruder, certs.intruder, pki.path("ca.crt"), `${cluster},m4=${intruder.peerUrl}`, "existing");
    const logs = (): string => three.map((p) => p.log).join("\n");
    await until(
      () => rejectionReasons(logs()).includes("client certificate authentication failed"),
      `${kind}: the intruder refused`,
    );
    const list = await clients[1]!.cluster.memberList();
    const putAfter = await clients[1]!.put("peer-mtls-after", "1").then(
      () => true,
      () => false,
    );
    return {
      replicated,
      reasons: rejectionReasons(logs()),
      putAfter,
      members: list.members.length,
      intruderStarted: list.members.some((m) => m.peerUrls.includes(intruder.peerUrl) && m.name !== ""),
    };
  } finally {
    for (const c of clients) c.close();
  }
}

describe.runIf(haveEtcd())("peer mutual TLS: a 3-member cluster, and a member with the wrong CN", () => {
  let pki: FilePki;
  let certs: { member: CertFiles; intruder: CertFiles };
  const procs: Proc[] = [];
  beforeAll(() => {
    pki = new FilePki();
    pki.ca("ca");
    certs = {
      member: pki.leaf("member", "ca", "member", "IP:127.0.0.1,DNS:localhost"),
      intruder: pki.leaf("intruder", "ca", "intruder", "IP:127.0.0.1,DNS:localhost"),
    };
  });
  afterAll(async () => {
    await Promise.all(procs.map(stop));
    pki?.cleanup();
  });

  it("replicates over peer mTLS and refuses the intruder on etcd-ts as on etcd", async () => {
    const etcd = await scenario("etcd", pki, certs, procs);
    const ours = await scenario("etcd-ts", pki, certs, procs);
    expect(etcd).toEqual({
      replicated: "etcd",
      reasons: ["client certificate authentication failed"],
      intruderStarted: false,
      members: 4,
      putAfter: true,
    });
    expect(ours).toEqual({ ...etcd, replicated: "etcd-ts" });
  }, 120_000);
});
