// Proves a member whose peer certificate is refused logs what etcd 3.4 logs: started against a real etcd member
// that requires peer certificates from its CA, a joining etcd-ts member holding a certificate of another CA logs
// etcd's "could not get cluster response from … remote error: tls: bad certificate" and etcd's fatal line, and
// exits 1, exactly as a real etcd member in its place; the refusing side's "rejected connection" line is etcd's
// whichever of the two refuses. Real etcd's own joiner reports the refusal as the TLS alert or, when its write
// meets the closed connection first, as a reset: either of etcd's two words is accepted, from both.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerProcess, freePort } from "../../harness/targets/launcher.js";
import { FilePki } from "../../harness/pki.js";
import { waitFor } from "../support/wait_for.js";
import { LocalCluster, REPO, type Kind } from "./local_cluster.js";

const pki = new FilePki();
const ca = pki.ca("peer-ca");
pki.ca("other-ca");
const good = pki.leaf("member", "peer-ca", "etcd-peer", "IP:127.0.0.1,DNS:localhost");
const stranger = pki.leaf("stranger", "other-ca", "etcd-peer", "IP:127.0.0.1,DNS:localhost");
const peerFlags = (cert: { cert: string; key: string }): string[] => [
  "--peer-cert-file",
  cert.cert,
  "--peer-key-file",
  cert.key,
  "--peer-trusted-ca-file",
  ca,
  "--peer-client-cert-auth",
];

/** Starts a member of `kind` that joins `peerUrl`'s cluster with the stranger's certificate; its log and exit code. */
async function startJoiner(kind: Kind, dir: string, peerUrl: string): Promise<{ log: string; code: number | null }> {
  const [client, peer] = [await freePort(), await freePort()];
  const mine = `https://127.0.0.1:${peer}`;
  const args = [
    "--name",
    "stranger",
    "--data-dir",
    join(dir, `stranger-${kind}`),
    "--initial-cluster-state",
    "existing",
    "--initial-cluster",
    `m0=${peerUrl},stranger=${mine}`,
    "--listen-peer-urls",
    mine,
    "--initial-advertise-peer-urls",
    mine,
    "--listen-client-urls",
    `http://127.0.0.1:${client}`,
    "--advertise-client-urls",
    `http://127.0.0.1:${client}`,
    ...peerFlags(stranger),
  ];
  let log = "";
  const proc = new ServerProcess({
    label: `${kind} stranger`,
    ports: [client, peer],
    onLine: (l) => (log += `${l}\n`),
  });
  if (kind === "etcd") proc.spawn("etcd", args);
  else proc.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args]);
  const timer = setTimeout(() => proc.signal("SIGKILL"), 20_000);
  await proc.exited();
  clearTimeout(timer);
  const code = proc.exitStatus?.code ?? null;
  await proc.dispose();
  return { log, code };
}

/** The lines about the refusal, without timestamps, ports and Go's HTTP-internal prefix. */
function refusalLines(log: string): string[] {
  return log
    .split("\n")
    .filter((l) => /could not get cluster response|cannot fetch cluster info/.test(l))
    .map((l) =>
      l
        .replace(/^\S+ \S+ /, "")
        .replace(/:\d{2,5}\b/g, ":PORT")
        .replace("readLoopPeekFailLocked: ", ""),
    );
}

/** Go's two words for a peer that refused the certificate, depending on whether the alert or the reset came first. */
const REFUSED = [
  /remote error: tls: bad certificate$/,
  /write tcp 127\.0\.0\.1:PORT->127\.0\.0\.1:PORT: write: connection reset by peer$/,
];

/** refusalLines with the refusal's cause, when it is one of REFUSED, written as <refused>. */
function refusalShape(log: string): string[] {
  return refusalLines(log).map((l) => {
    const cause = REFUSED.find((re) => re.test(l));
    return cause === undefined ? l : l.replace(cause, "<refused>");
  });
}

const rejected = (log: string): string | undefined =>
  /rejected connection from "127\.0\.0\.1:\d+" (\(.*\))/.exec(log)?.[1];

describe("a member whose peer certificate is refused", () => {
  const clusters: LocalCluster[] = [];
  beforeAll(async () => {
    for (const kind of ["etcd", "etcd-ts"] as const) {
      const c = new LocalCluster(kind, {
        flags: ["--heartbeat-interval", "50", "--election-timeout", "500", ...peerFlags(good)],
        peerScheme: "https",
      });
      clusters.push(c);
      await c.start(1);
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
    pki.cleanup();
  });

  it("logs etcd's words on the refused side: remote error: tls: bad certificate", async () => {
    const etcd = clusters[0] as LocalCluster;
    const dir = pki.path("joiners");
    const url = etcd.peerUrl(etcd.member(0));
    const [theirs, mine] = [await startJoiner("etcd", dir, url), await startJoiner("etcd-ts", dir, url)];
    expect(refusalShape(theirs.log)).toEqual([
      'W | etcdserver: could not get cluster response from https://127.0.0.1:PORT: Get "https://127.0.0.1:PORT/members": <refused>',
      "C | etcdmain: cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs",
    ]);
    expect({ code: mine.code, lines: refusalShape(mine.log) }).toEqual({
      code: theirs.code,
      lines: refusalShape(theirs.log),
    });
  }, 60_000);

  it("logs etcd's rejected-connection line on the refusing side, etcd or etcd-ts", async () => {
    const [etcd, ours] = clusters as [LocalCluster, LocalCluster];
    const dir = pki.path("joiners2");
    await startJoiner("etcd-ts", dir, ours.peerUrl(ours.member(0)));
    await waitFor(
      () => rejected(ours.member(0).log) !== undefined && rejected(etcd.member(0).log) !== undefined,
      "both refusals logged",
    );
    expect(rejected(ours.member(0).log)).toBe(rejected(etcd.member(0).log));
    expect(rejected(etcd.member(0).log)).toContain("x509: certificate signed by unknown authority");
  }, 60_000);
});
