// Throwaway PKIs for the transport's TLS tests, made with the openssl CLI in temp dirs: a CA and a member
// certificate it signed (SAN 127.0.0.1 and localhost, usable as TLS server and client, as etcd peers use one cert),
// and a second CA with its own member certificate, which the first CA's members must refuse; and FilePki, which
// leaves CAs, leaves of any CN/SANs, and CRLs on disk for the --peer-* flags.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface MemberCert {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface PeerPki {
  readonly good: MemberCert;
  readonly foreign: MemberCert;
  cleanup(): void;
}

function run(dir: string, args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function issue(dir: string, caName: string, member: string): MemberCert {
  run(dir, [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${caName}.key`,
    "-out",
    `${caName}.crt`,
    "-days",
    "1",
    "-subj",
    `/CN=${caName}`,
  ]);
  writeFileSync(
    join(dir, `${member}.ext`),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  run(dir, ["req", ...EC, "-keyout", `${member}.key`, "-out", `${member}.csr`, "-subj", `/CN=${member}`]);
  run(dir, [
    "x509",
    "-req",
    "-in",
    `${member}.csr`,
    "-CA",
    `${caName}.crt`,
    "-CAkey",
    `${caName}.key`,
    "-CAcreateserial",
    "-out",
    `${member}.crt`,
    "-days",
    "1",
    "-extfile",
    `${member}.ext`,
  ]);
  const read = (f: string): Buffer => readFileSync(join(dir, f));
  return { ca: read(`${caName}.crt`), cert: read(`${member}.crt`), key: read(`${member}.key`) };
}

export function makePeerPki(): PeerPki {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-peer-pki-"));
  return {
    good: issue(dir, "peer-ca", "member"),
    foreign: issue(dir, "foreign-ca", "foreign-member"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A certificate and key on disk (what the --peer-* flags name). */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * Certificates on disk for the inbound-enforcement tests: CAs, leaves with a chosen CN and SANs, revocation and
 * CRLs (openssl's `ca` database per CA), all in one temp dir.
 */
export class FilePki {
  readonly dir = mkdtempSync(join(tmpdir(), "etcd-ts-peer-files-"));

  path(name: string): string {
    return join(this.dir, name);
  }

  /** A self-signed CA named `name` (subject CN=`cn`), with an empty revocation database. */
  ca(name: string, cn = name): string {
    run(this.dir, [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "1",
      "-subj",
      `/CN=${cn}`,
    ]);
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

  /** A leaf of `ca` valid only on 2020-01-01 (long expired), with leaf()'s extensions. */
  expiredLeaf(name: string, ca: string, cn: string, sans: string): CertFiles {
    writeFileSync(this.path(`${name}.ext`), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    run(this.dir, ["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
    run(this.dir, [
      "ca",
      "-config",
      `${ca}.cnf`,
      "-keyfile",
      `${ca}.key`,
      "-cert",
      `${ca}.crt`,
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

  /** A leaf signed by `ca` with this CN and SANs (openssl's syntax: "IP:127.0.0.1,DNS:localhost"), usable both ways. */
  leaf(name: string, ca: string, cn: string, sans: string): CertFiles {
    writeFileSync(this.path(`${name}.ext`), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    run(this.dir, ["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
    run(this.dir, [
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
      "1",
      "-extfile",
      `${name}.ext`,
    ]);
    return { cert: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
  }

  /** Revokes `leaf` (a name given to leaf()) in `ca`'s database; crl() then lists it. */
  revoke(ca: string, leaf: string): void {
    run(this.dir, [
      "ca",
      "-config",
      `${ca}.cnf`,
      "-keyfile",
      `${ca}.key`,
      "-cert",
      `${ca}.crt`,
      "-revoke",
      `${leaf}.crt`,
    ]);
  }

  /** Writes `ca`'s current CRL to `out` (a path) and returns it. */
  crl(ca: string, out: string): string {
    run(this.dir, [
      "ca",
      "-config",
      `${ca}.cnf`,
      "-keyfile",
      `${ca}.key`,
      "-cert",
      `${ca}.crt`,
      "-gencrl",
      "-out",
      out,
    ]);
    return out;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
