// --auto-tls / --peer-auto-tls certificates, written into <data-dir>/fixtures/{client,peer}: ECDSA P-521,
// ecdsa-with-SHA512, O=etcd, valid one year, as etcd generates them. node:crypto makes the key and signs; a small
// DER writer lays out the X.509 structure, so no openssl binary or npm package is needed.
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : n < 0x10000
          ? Buffer.from([0x82, n >> 8, n & 0xff])
          : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [a * 40 + b];
  for (const v of rest) {
    const groups = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) groups.unshift((x & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

/** A positive INTEGER from big-endian magnitude bytes. */
function integer(magnitude: Buffer): Buffer {
  let m = magnitude;
  while (m.length > 1 && m[0] === 0 && ((m[1] ?? 0) & 0x80) === 0) m = m.subarray(1);
  return der(0x02, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
  return d.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(iso.slice(2), "ascii"))
    : der(0x18, Buffer.from(iso, "ascii"));
}

const OID = {
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  organization: "2.5.4.10",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der(0x30, oid(id), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), der(0x04, value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  const full = new URL(`http://[${ip}]`).hostname.slice(1, -1);
  const [head = "", tail = ""] = full.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === "" ? [] : tail.split(":");
  const groups = full.includes("::") ? [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t] : h;
  return Buffer.from(
    groups.flatMap((g) => {
      const v = parseInt(g, 16);
      return [v >> 8, v & 0xff];
    }),
  );
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
  const name = der(0x30, der(0x31, der(0x30, oid(OID.organization), der(0x0c, Buffer.from("etcd")))));
  const alg = der(0x30, oid(OID.ecdsaWithSha512));
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const sans = [...new Set(hosts)].map((h) =>
    isIP(h) !== 0 ? der(0x87, ipBytes(h)) : der(0x82, Buffer.from(h, "ascii")),
  );
  const extensions = [
    // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b1010_0000, 5 unused bits.
    extension(OID.keyUsage, true, der(0x03, Buffer.from([0x05, 0xa0]))),
    extension(OID.extKeyUsage, false, der(0x30, oid(OID.serverAuth))),
    extension(OID.basicConstraints, true, der(0x30)),
    ...(sans.length > 0 ? [extension(OID.subjectAltName, false, der(0x30, ...sans))] : []),
  ];
  const tbs = der(
    0x30,
    der(0xa0, integer(Buffer.from([2]))),
    integer(randomBytes(16)),
    alg,
    name,
    der(0x30, time(now), time(notAfter)),
    name,
    publicKey.export({ type: "spki", format: "der" }),
    der(0xa3, der(0x30, ...extensions)),
  );
  const signature = sign("sha512", tbs, privateKey);
  const cert = der(0x30, tbs, alg, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const pem = `-----BEGIN CERTIFICATE-----\n${cert
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
  new X509Certificate(pem); // throws if the layout is wrong, before anything is written
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
  writeFileSync(certFile, pem, { mode: 0o644 });
  return { certFile, keyFile };
}

/** The hosts of listen URLs (for selfCert's SANs), without brackets. */
export function urlHosts(urls: readonly string[]): string[] {
  return urls.map((u) => new URL(u).hostname.replace(/^\[(.*)\]$/, "$1")).filter((h) => h !== "");
}
