// Proves etcd-ts refuses bad client certificates as real etcd 3.4.23 does, both started with the same certificates
// and --client-cert-auth: an expired certificate of the trusted CA, a self-signed one claiming CN=root, and one
// forged in the trusted CA's name (same issuer name, another key) are refused and logged with the same reasons
// (Go's "certificate has expired or is not yet valid: current time … is after …", "certificate signed by unknown
// authority", and for the forgery "(possibly because of "x509: ECDSA verification failure" while trying to verify
// candidate authority certificate "ca")"), while the good certificate is served; and a --key-file that is not the
// certificate's key stops both at start-up with Go's "tls: private key does not match public key" and exit code 1.
import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveEtcd } from "../compat/processes.js";
import { type CertFiles, FilePki } from "../../harness/pki.js";
import { type Kind, type Member, rejectionReasons, runToExit, startMember } from "./members.js";

const KINDS: readonly Kind[] = ["etcd", "etcd-ts"];
const SANS = "IP:127.0.0.1,DNS:localhost";
const WAIT_MS = 10_000;

/** A TLS connection with `cert` that waits for the server to close it; true when the server served (answered h2). */
function handshake(port: number, ca: Buffer, cert: CertFiles): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({
      port,
      host: "127.0.0.1",
      ca,
      cert: readFileSync(cert.cert),
      key: readFileSync(cert.key),
      ALPNProtocols: ["h2"],
      servername: "localhost",
    });
    let served = false;
    // An HTTP/2 server speaks first (its SETTINGS frame) only to a client it accepted.
    s.on("data", () => {
      served = true;
      s.destroy();
    });
    s.on("error", () => undefined);
    s.on("close", () => resolve(served));
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.runIf(haveEtcd())("bad client certificates, etcd-ts against real etcd 3.4", () => {
  let pki: FilePki;
  let certs: Record<"server" | "client" | "expired" | "selfRoot" | "forged", CertFiles>;
  const members: Member[] = [];

  beforeAll(async () => {
    pki = new FilePki();
    pki.ca("ca");
    pki.ca("impostor", "ca"); // the trusted CA's name, another key
    pki.ca("self-root", "root");
    certs = {
      server: pki.leaf("server", "ca", "server", SANS),
      client: pki.leaf("client", "ca", "root", SANS),
      expired: pki.expiredLeaf("expired", "ca", "root", SANS),
      selfRoot: { cert: pki.path("self-root.crt"), key: pki.path("self-root.key") },
      forged: pki.leaf("forged", "impostor", "root", SANS),
    };
    const read = (f: string): Buffer => readFileSync(f);
    const memberTls = {
      flags: [
        "--cert-file",
        certs.server.cert,
        "--key-file",
        certs.server.key,
        "--trusted-ca-file",
        pki.path("ca.crt"),
        "--client-cert-auth",
      ],
      client: { ca: read(pki.path("ca.crt")), cert: read(certs.client.cert), key: read(certs.client.key) },
    };
    members.push(...(await Promise.all(KINDS.map((k) => startMember(k, [], memberTls)))));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(members.map((m) => m.stop()));
    pki?.cleanup();
  });

  it("refuses expired, self-signed and forged certificates with the same logged reasons; serves the good one", async () => {
    const ca = readFileSync(pki.path("ca.crt"));
    for (const m of members) {
      const port = Number(m.endpoint.split(":")[1]);
      const served = [];
      for (const c of [certs.client, certs.expired, certs.selfRoot, certs.forged])
        served.push(await handshake(port, ca, c));
      expect(served, `${m.kind}: good, expired, self-signed, forged`).toEqual([true, false, false, false]);
    }
    await until(() => members.every((m) => rejectionReasons(m.log()).length >= 3), "3 reasons logged by both");
    // Go names the time of the refusal; the two servers refused at different seconds.
    const [theirs, ours] = members.map((m) =>
      rejectionReasons(m.log()).map((r) => r.replace(/current time \S+ is/, "current time T is")),
    );
    const prefix = "tls: failed to verify client certificate: x509: ";
    expect(theirs).toEqual(
      [
        `${prefix}certificate has expired or is not yet valid: current time T is after 2020-01-02T00:00:00Z`,
        `${prefix}certificate signed by unknown authority`,
        `${prefix}certificate signed by unknown authority (possibly because of "x509: ECDSA verification failure" while trying to verify candidate authority certificate "ca")`,
      ].sort(),
    );
    expect(ours).toEqual(theirs);
  });

  it("a --key-file that is not the certificate's key stops both at start-up with Go's text", async () => {
    const flags = [
      "--cert-file",
      certs.server.cert,
      "--key-file",
      certs.client.key,
      "--trusted-ca-file",
      pki.path("ca.crt"),
    ];
    const runs = await Promise.all(KINDS.map((k) => runToExit(k, flags)));
    for (const [i, r] of runs.entries()) {
      expect({ kind: KINDS[i], code: r.code }).toEqual({ kind: KINDS[i], code: 1 });
      expect(r.log, `${KINDS[i] ?? ""} log`).toContain("tls: private key does not match public key");
    }
  });
});
