// Throwaway certificates made with the openssl CLI in a temp dir, for the TLS experiments and the tests: FilePki
// leaves CAs, leaves of any CN, SANs and key usage, expired leaves, revocations and CRLs on disk (what etcd's
// --cert-file/--peer-* flags name); makePki builds the client/server set the failover and security experiments
// and the client tests use; makePeerPki the member certificates of the transport's TLS tests. EC P-256 keys:
// fast to make.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
/** Validity of every certificate made here (they live as long as one test or bench run). */
const DAYS = "2";
/** SANs of a certificate valid for the loopback address and for localhost. */
export const LOOPBACK_SANS = "IP:127.0.0.1,DNS:localhost";

function openssl(dir: string, args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A certificate and key on disk (what the --cert-file/--key-file and --peer-* flags name). */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/** What a leaf certifies: its subject CN, its SANs (openssl's syntax) if any, its extended key usage. */
export interface LeafOptions {
  readonly cn: string;
  readonly sans?: string;
  /** openssl's extendedKeyUsage value, e.g. "serverAuth,clientAuth". */
  readonly usage: string;
}

/**
 * Certificates on disk: CAs, leaves with a chosen CN, SANs and usage, revocation and CRLs (openssl's `ca`
 * database per CA), all in one temp dir that cleanup() removes.
 */
export class FilePki {
  readonly dir = mkdtempSync(join(tmpdir(), "etcd-ts-pki-"));

  path(name: string): string {
    return join(this.dir, name);
  }

  read(name: string): Buffer {
    return readFileSync(this.path(name));
  }

  /** A self-signed CA named `name` (subject CN=`cn`), with an empty revocation database. */
  ca(name: string, cn = name): string {
    this.selfSigned(name, cn);
    writeFileSync(this.path(`${name}.index`), "");
    writeFileSync(this.path(`${name}.crlnumber`), "01\n");
    writeFileSync(this.path(`${name}.serial`), "1000\n");
    writeFileSync(
      this.path(`${name}.cnf`),
      `[ca]\ndefault_ca=d\n[d]\ndatabase=${name}.index\ncrlnumber=${name}.crlnumber\n` +
        `serial=${name}.serial\nnew_certs_dir=.\npolicy=p\ndefault_md=sha256\ndefault_crl_days=1\n[p]\ncommonName=supplied\n`,
    );
    return this.path(`${name}.crt`);
  }

  /** A self-signed certificate and key (subject CN=`cn`), trusted by nobody: what a client forging a CN presents. */
  selfSigned(name: string, cn: string): CertFiles {
    openssl(this.dir, [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      DAYS,
      "-subj",
      `/CN=${cn}`,
    ]);
    return { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
  }

  /** A leaf signed by `ca` with this CN and SANs (openssl's syntax: "IP:127.0.0.1,DNS:localhost"), usable both ways. */
  leaf(name: string, ca: string, cn: string, sans: string): CertFiles {
    return this.signed(name, ca, { cn, sans, usage: "serverAuth,clientAuth" });
  }

  /** signed: a leaf of `ca` as `o` says (a client-only certificate, a server one without an IP SAN, …). */
  signed(name: string, ca: string, o: LeafOptions): CertFiles {
    this.request(name, o);
    openssl(this.dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.crt`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      DAYS,
      "-extfile",
      `${name}.ext`,
    ]);
    return { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
  }

  /** A leaf of `ca` valid only on 2020-01-01 (long expired), with leaf()'s extensions. */
  expiredLeaf(name: string, ca: string, cn: string, sans: string): CertFiles {
    this.request(name, { cn, sans, usage: "serverAuth,clientAuth" });
    openssl(this.dir, [
      ...this.caArgs(ca),
      "-in",
      `${name}.csr`,
      "-out",
      `${name}.crt`,
      "-startdate",
      "20200101000000Z",
      "-enddate",
      "20200102000000Z",
      "-extfile",
      `${name}.ext`,
      "-batch",
      "-notext",
    ]);
    return { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
  }

  /** Revokes `leaf` (a name given to leaf()) in `ca`'s database; crl() then lists it. */
  revoke(ca: string, leaf: string): void {
    openssl(this.dir, [...this.caArgs(ca), "-revoke", `${leaf}.crt`]);
  }

  /** Writes `ca`'s current CRL to `out` (a path) and returns it. */
  crl(ca: string, out: string): string {
    openssl(this.dir, [...this.caArgs(ca), "-gencrl", "-out", out]);
    return out;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new key and certificate request for `name`, and the extensions file its certificate is signed with. */
  private request(name: string, o: LeafOptions): void {
    const sans = o.sans === undefined ? "" : `subjectAltName=${o.sans}\n`;
    writeFileSync(this.path(`${name}.ext`), `${sans}extendedKeyUsage=${o.usage}\n`);
    openssl(this.dir, ["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${o.cn}`]);
  }

  /** openssl `ca` acting as `ca`, with the database ca() made. */
  private caArgs(ca: string): string[] {
    return ["ca", "-config", `${ca}.cnf`, "-keyfile", `${ca}.key`, "-cert", `${ca}.crt`];
  }
}

/**
 * The client/server set: a CA, a server certificate for 127.0.0.1 and localhost (serverAuth + clientAuth, as
 * etcd's members use one cert for both), a client certificate of that CA, and an unrelated CA with its own client
 * certificate (one etcd must refuse).
 */
export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** A server certificate (and key) of the CA naming only DNS:localhost: right for localhost, wrong for 127.0.0.1. */
  readonly localhostCert: Buffer;
  readonly localhostKey: Buffer;
  /** PEM bytes of the trusted CA, a client cert/key it signed, and a client cert/key of another CA. */
  readonly ca: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  readonly otherCa: Buffer;
  readonly otherClientCert: Buffer;
  readonly otherClientKey: Buffer;
  cleanup(): void;
}

/** makePki writes the client/server set under a fresh temp dir; call cleanup() to remove it. */
export function makePki(): TestPki {
  const pki = new FilePki();
  const caFile = pki.ca("ca");
  pki.ca("other-ca");
  const server = pki.leaf("server", "ca", "server", LOOPBACK_SANS);
  pki.signed("localhost-server", "ca", { cn: "localhost-server", sans: "DNS:localhost", usage: "serverAuth" });
  pki.signed("client", "ca", { cn: "client", usage: "clientAuth" });
  pki.signed("other-client", "other-ca", { cn: "other-client", usage: "clientAuth" });
  return {
    dir: pki.dir,
    caFile,
    serverCertFile: server.cert,
    serverKeyFile: server.key,
    localhostCert: pki.read("localhost-server.crt"),
    localhostKey: pki.read("localhost-server.key"),
    ca: pki.read("ca.crt"),
    clientCert: pki.read("client.crt"),
    clientKey: pki.read("client.key"),
    otherCa: pki.read("other-ca.crt"),
    otherClientCert: pki.read("other-client.crt"),
    otherClientKey: pki.read("other-client.key"),
    cleanup: () => pki.cleanup(),
  };
}

/** A member's PEM material: its CA, and a certificate (with key) that CA signed. */
export interface MemberCert {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Two member certificates of two unrelated CAs: the first CA's members must refuse the foreign one. */
export interface PeerPki {
  readonly good: MemberCert;
  readonly foreign: MemberCert;
  cleanup(): void;
}

/** makePeerPki makes member certificates (SAN 127.0.0.1 and localhost, usable as TLS server and client). */
export function makePeerPki(): PeerPki {
  const pki = new FilePki();
  const member = (caName: string, name: string): MemberCert => {
    pki.ca(caName);
    pki.leaf(name, caName, name, LOOPBACK_SANS);
    return { ca: pki.read(`${caName}.crt`), cert: pki.read(`${name}.crt`), key: pki.read(`${name}.key`) };
  };
  return {
    good: member("peer-ca", "member"),
    foreign: member("foreign-ca", "foreign-member"),
    cleanup: () => pki.cleanup(),
  };
}
