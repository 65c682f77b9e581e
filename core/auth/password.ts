// Password hashing. etcd stores bcrypt hashes (cost 10 by default). By default etcd-ts hashes with
// node:crypto's scrypt (memory-hard, native, in libuv's thread pool, so hashing never blocks the event loop)
// with a random 16-byte salt, the stored string describing itself PHC-style:
//   $scrypt$ln=14,r=8,p=1$<salt base64>$<key base64>
// ln=14 (N = 16384, 16 MiB) costs about 43 ms on this machine, close to Go's bcrypt at cost 10, where bcrypt in
// JavaScript (bcrypt.ts) takes several times longer. Hashes in etcd's bcrypt format are verified too (users
// restored from an etcd snapshot), and made when a bcrypt cost is configured (hashes etcd itself can verify).
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { bcryptHash, bcryptVerify, isBcryptHash } from "./bcrypt.js";

export const SCRYPT_DEFAULT_COST_LOG2 = 14;
const SCRYPT_BLOCK_SIZE = 8;
const SCRYPT_PARALLELISM = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Hashes claiming more work than this are refused rather than run (a corrupt or hostile record). */
const SCRYPT_MAX_COST_LOG2 = 20;
const SCRYPT_MIN_COST_LOG2 = 1;

const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

interface ScryptParams {
  readonly costLog2: number;
  readonly blockSize: number;
  readonly parallelism: number;
}

function derive(password: string, salt: Uint8Array, params: ScryptParams, keyBytes: number): Promise<Buffer> {
  const N = 2 ** params.costLog2;
  const maxmem = 256 * N * params.blockSize * params.parallelism + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, { N, r: params.blockSize, p: params.parallelism, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** How new passwords are hashed: scrypt at log2 N (a number), or bcrypt at a cost. */
export type PasswordScheme = number | { readonly bcryptCost: number };

export async function hashPassword(password: string, scheme: PasswordScheme = SCRYPT_DEFAULT_COST_LOG2): Promise<string> {
  if (typeof scheme !== "number") return bcryptHash(password, scheme.bcryptCost);
  const costLog2 = scheme;
  if (!Number.isInteger(costLog2) || costLog2 < SCRYPT_MIN_COST_LOG2 || costLog2 > SCRYPT_MAX_COST_LOG2) {
    throw new Error(`password: scrypt cost log2 ${costLog2} outside [${SCRYPT_MIN_COST_LOG2}, ${SCRYPT_MAX_COST_LOG2}]`);
  }
  const params = { costLog2, blockSize: SCRYPT_BLOCK_SIZE, parallelism: SCRYPT_PARALLELISM };
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return `$scrypt$ln=${costLog2},r=${params.blockSize},p=${params.parallelism}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** Whether `hash` is a string hashPassword could have produced (checked before a hash is stored). */
export function isPasswordHash(hash: string): boolean {
  return parseHash(hash) !== undefined || isBcryptHash(hash);
}

function parseHash(hash: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const m = FORMAT.exec(hash);
  if (m === null) return undefined;
  const params = { costLog2: Number(m[1]), blockSize: Number(m[2]), parallelism: Number(m[3]) };
  if (params.costLog2 < SCRYPT_MIN_COST_LOG2 || params.costLog2 > SCRYPT_MAX_COST_LOG2) return undefined;
  if (params.blockSize < 1 || params.parallelism < 1 || params.parallelism > 4) return undefined;
  const salt = Buffer.from(m[4] as string, "base64");
  const key = Buffer.from(m[5] as string, "base64");
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params, salt, key };
}

/** Compares in constant time; false (never a throw) for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (isBcryptHash(hash)) return bcryptVerify(password, hash);
  const parsed = parseHash(hash);
  if (parsed === undefined) return false;
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length);
  return timingSafeEqual(key, parsed.key);
}
