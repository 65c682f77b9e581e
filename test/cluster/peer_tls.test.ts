// Proves that an etcd-ts cluster runs with mutual TLS between its members: 3 processes with https://
// peer URLs, --peer-client-cert-auth, --peer-trusted-ca-file and --peer-cert-allowed-cn elect a leader and
// replicate a write; a fourth member added with `member add` but holding a certificate with another CN is refused
// by the others (etcd's "rejected connection" line) and never serves, while the cluster keeps serving writes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FilePki } from "../../harness/pki.js";
import { LocalCluster, ctl } from "./local_cluster.js";

describe("a 3-member etcd-ts cluster with peer mTLS", () => {
  const pki = new FilePki();
  const ca = pki.ca("peer-ca");
  const good = pki.leaf("member", "peer-ca", "etcd-peer", "IP:127.0.0.1,DNS:localhost");
  const wrongCn = pki.leaf("intruder", "peer-ca", "not-etcd-peer", "IP:127.0.0.1,DNS:localhost");
  const peerFlags = (cert: { cert: string; key: string }): string[] => [
    "--peer-cert-file",
    cert.cert,
    "--peer-key-file",
    cert.key,
    "--peer-trusted-ca-file",
    ca,
    "--peer-client-cert-auth",
    "--peer-cert-allowed-cn",
    "etcd-peer",
  ];
  const c = new LocalCluster("etcd-ts", {
    flags: ["--heartbeat-interval", "50", "--election-timeout", "500", ...peerFlags(good)],
    peerScheme: "https",
  });

  beforeAll(async () => {
    await c.start(3);
  }, 60_000);
  afterAll(async () => {
    await c.stop();
    pki.cleanup();
  });

  it("elects a leader and replicates over https:// peer URLs", () => {
    const list = ctl(c.endpoints(), ["member", "list"]);
    expect(list.stdout.match(/, started, m\d, https:\/\/127\.0\.0\.1:\d+,/g)?.length, list.stdout + list.stderr).toBe(
      3,
    );
    expect(ctl(c.endpoint(0), ["put", "tls", "yes"]).stdout.trim()).toBe("OK");
    expect(ctl(c.endpoint(2), ["get", "tls", "--print-value-only"]).stdout.trim()).toBe("yes");
  });

  it("refuses a member whose certificate has another CN; the cluster keeps serving", async () => {
    const m = await c.newMember("intruder");
    let add = ctl(c.endpoints(), ["member", "add", "intruder", "--learner", "--peer-urls", c.peerUrl(m)]);
    for (let i = 0; i < 60 && add.stderr.includes("unhealthy cluster"); i++) {
      await new Promise((r) => setTimeout(r, 250));
      add = ctl(c.endpoints(), ["member", "add", "intruder", "--learner", "--peer-urls", c.peerUrl(m)]);
    }
    expect(add.stdout, add.stderr).toMatch(/Member\s+[0-9a-f]+ added/);
    c.join(m, peerFlags(wrongCn));
    const logs = (): string => c.members.map((x) => x.log).join("\n");
    const deadline = Date.now() + 15_000;
    while (!/rejected connection/.test(logs()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(logs(), "a member logs the refusal").toMatch(
      /rejected connection from "127\.0\.0\.1:\d+" \(error "client certificate authentication failed"/,
    );
    const st = ctl(`127.0.0.1:${m.clientPort}`, ["endpoint", "status"], 3_000);
    expect(st.status, "the intruder never serves clients").not.toBe(0);
    expect(ctl(c.endpoint(1), ["put", "still", "serving"]).stdout.trim()).toBe("OK");
    const list = ctl(c.endpoint(0), ["member", "list"]).stdout;
    expect(list).toMatch(/, unstarted, , https:\/\/127\.0\.0\.1:\d+, , true/);
  }, 60_000);
});
