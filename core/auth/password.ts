// Password hashing as etcd's auth store does it: bcrypt at --bcrypt-cost (default 10), so a user created on
// either server logs in on the other after a snapshot migration. bcrypt reads only a password's first 72 bytes
// (etcd's Go bcrypt has no length check), and so does this one. Hashing runs in libuv's thread pool
// (@node-rs/bcrypt), never on the event loop.
// Hashes are written with etcd's "$2a$" prefix: for the same password, salt and cost "$2a$" and "$2b$" are the
// same computation in implementations that truncate at 72 bytes, as both here do.
import { hash as bcryptHash, verify as bcryptVerify } from "@node-rs/bcrypt";

/** Go's bcrypt.MinCost / DefaultCost / MaxCost, the range etcd's --bcrypt-cost accepts. */
export const BCRYPT_MIN_COST = 4;
export const BCRYPT_DEFAULT_COST = 10;
export const BCRYPT_MAX_COST = 31;

const FORMAT = /^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$/;

export function isValidBcryptCost(cost: number): boolean {
  return Number.isInteger(cost) && cost >= BCRYPT_MIN_COST && cost <= BCRYPT_MAX_COST;
}

export async function hashPassword(password: string, cost = BCRYPT_DEFAULT_COST): Promise<string> {
  if (!isValidBcryptCost(cost)) {
    throw new Error(`password: bcrypt cost ${cost} outside [${BCRYPT_MIN_COST}, ${BCRYPT_MAX_COST}]`);
  }
  const h = await bcryptHash(Buffer.from(password, "utf8"), cost);
  return "$2a$" + h.slice(h.indexOf("$", 1) + 1);
}

/** Whether `hash` is a bcrypt hash string with a cost etcd accepts (checked before a hash is stored). */
export function isPasswordHash(hash: string): boolean {
  const m = FORMAT.exec(hash);
  return m !== null && isValidBcryptCost(Number(m[1]));
}

/** Compares (in constant time, inside bcrypt); false, never a throw, for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (!isPasswordHash(hash)) return false;
  try {
    return await bcryptVerify(Buffer.from(password, "utf8"), hash);
  } catch {
    return false;
  }
}
