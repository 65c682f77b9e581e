// --auto-tls / --peer-auto-tls certificates, written into <data-dir>/fixtures/{client,peer}: ECDSA P-521,
// ecdsa-with-SHA512, O=etcd, valid one year, as etcd generates them. node:crypto makes the key and signs, so the
// call stays synchronous inside flag parsing; @peculiar/asn1-x509's RFC 5280 schema classes lay out and encode the
// certificate.
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_kp_serverAuth,
} from "@peculiar/asn1-x509";

const ECDSA_WITH_SHA512 = "1.2.840.10045.4.3.4";
const ORGANIZATION_NAME = "2.5.4.10";
const ONE_YEAR_MS = 365 * 24 * 3600 * 1000;

/**
 * A random serial below 2^127 as the bytes of a positive, minimally encoded INTEGER: the schema writes the bytes
 * as given, and Go's parser refuses a negative or zero-padded serial.
 */
function serialNumber(): ArrayBuffer {
  const r = randomBytes(16);
  r[0] = (r[0] ?? 0) & 0x7f;
  let start = 0;
  while (start < r.length - 1 && r[start] === 0 && ((r[start + 1] ?? 0) & 0x80) === 0) start++;
  return new Uint8Array(r.subarray(start)).buffer;
}

function extension(extnID: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/**
 * A host as a SAN: an IP address (IPv6 in WHATWG URL's normal form first, which writes an embedded IPv4 part in
 * hex, the only form the schema's address parser reads) or a DNS name.
 */
function san(host: string): GeneralName {
  if (isIP(host) === 4) return new GeneralName({ iPAddress: host });
  if (isIP(host) === 6) return new GeneralName({ iPAddress: new URL(`http://[${host}]`).hostname.slice(1, -1) });
  return new GeneralName({ dNSName: host });
}

/** etcd's auto-TLS extensions: digitalSignature and keyEncipherment, serverAuth, not a CA, the hosts as SANs. */
function extensions(hosts: readonly string[]): Extensions {
  const sans = [...new Set(hosts)].map(san);
  const usage = new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment);
  return new Extensions([
    extension(id_ce_keyUsage, true, usage),
    extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])),
    extension(id_ce_basicConstraints, true, new BasicConstraints()),
    ...(sans.length > 0 ? [extension(id_ce_subjectAltName, false, new SubjectAlternativeName(sans))] : []),
  ]);
}

/** O=etcd, the subject and issuer of etcd's self-signed certificates. */
function etcdName(): Name {
  const o = new AttributeTypeAndValue({
    type: ORGANIZATION_NAME,
    value: new AttributeValue({ printableString: "etcd" }),
  });
  return new Name([new RelativeDistinguishedName([o])]);
}

function toPem(der: ArrayBuffer): string {
  const lines = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n?$/, "\n");
  return `-----BEGIN CERTIFICATE-----\n${lines}-----END CERTIFICATE-----\n`;
}

export interface SelfCert {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * etcd's --auto-tls / --peer-auto-tls: a self-signed certificate for `hosts` (IPs become IP SANs, names DNS SANs)
 * written to dir/cert.pem and dir/key.pem (0600), valid for one year. Files already there are reused, as etcd
 * reuses them across restarts.
 */
export function selfCert(dir: string, hosts: readonly string[], now: Date = new Date()): SelfCert {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-521" });
  // Whole seconds: UTCTime has no fractions, and the validity must span exactly one year.
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA512 });
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: etcdName(),
    validity: new Validity({ notBefore, notAfter: new Date(notBefore.getTime() + ONE_YEAR_MS) }),
    subject: etcdName(),
    subjectPublicKeyInfo: AsnConvert.parse(publicKey.export({ type: "spki", format: "der" }), SubjectPublicKeyInfo),
    extensions: extensions(hosts),
  });
  const signature = sign("sha512", Buffer.from(AsnConvert.serialize(tbsCertificate)), privateKey);
  const certificate = new Certificate({
    tbsCertificate,
    signatureAlgorithm: algorithm,
    signatureValue: Uint8Array.from(signature).buffer,
  });
  const pem = toPem(AsnConvert.serialize(certificate));
  // Parse and check the signature before anything is written: a layout mistake fails here, not in a peer.
  if (!new X509Certificate(pem).verify(publicKey)) throw new Error("auto-tls: generated certificate does not verify");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
  writeFileSync(certFile, pem, { mode: 0o644 });
  return { certFile, keyFile };
}

/** The hosts of listen URLs (for selfCert's SANs), without brackets. */
export function urlHosts(urls: readonly string[]): string[] {
  return urls.map((u) => new URL(u).hostname.replace(/^\[(.*)\]$/, "$1")).filter((h) => h !== "");
}
