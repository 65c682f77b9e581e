// A throwaway PKI for the transport's TLS tests, made with the openssl CLI in a temp dir: a CA and a member
// certificate it signed (SAN 127.0.0.1 and localhost, usable as TLS server and client, as etcd peers use one cert),
// and a second CA with its own member certificate, which the first CA's members must refuse.

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
  run(dir, ["req", "-x509", ...EC, "-keyout", `${caName}.key`, "-out", `${caName}.crt`, "-days", "1", "-subj", `/CN=${caName}`]);
  writeFileSync(join(dir, `${member}.ext`), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  run(dir, ["req", ...EC, "-keyout", `${member}.key`, "-out", `${member}.csr`, "-subj", `/CN=${member}`]);
  run(dir, ["x509", "-req", "-in", `${member}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`, "-CAcreateserial",
    "-out", `${member}.crt`, "-days", "1", "-extfile", `${member}.ext`]);
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
