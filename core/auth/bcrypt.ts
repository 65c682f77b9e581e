// bcrypt, the password hash etcd stores (Go's x/crypto/bcrypt), so that users restored from an etcd snapshot
// can log in, and hashes made with --bcrypt-cost verify in etcd after a migration back. bcryptjs is pure
// JavaScript: a hash at cost 10 is hundreds of milliseconds of CPU, so it runs in one worker thread of its own
// and the event loop never waits on it. The worker starts on first use and does not keep the process alive.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** A bcrypt hash as Go and bcryptjs write it: $2a$/$2b$/$2y$, two-digit cost, 22 salt + 31 hash characters. */
const BCRYPT_FORMAT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 31;

// Plain CommonJS run with `eval: true` (a worker cannot load TypeScript sources); bcryptjs is resolved here.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const bcrypt = require(workerData.bcryptPath);
parentPort.on("message", ({ id, op, password, arg }) => {
  try {
    const result = op === "hash" ? bcrypt.hashSync(password, arg) : bcrypt.compareSync(password, arg);
    parentPort.postMessage({ id, result });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

interface Reply {
  readonly id: number;
  readonly result?: string | boolean;
  readonly error?: string;
}

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, { resolve: (v: string | boolean) => void; reject: (e: Error) => void }>();

function start(): Worker {
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: createRequire(import.meta.url).resolve("bcryptjs") } });
  w.on("message", (r: Reply) => {
    const p = pending.get(r.id);
    pending.delete(r.id);
    if (pending.size === 0) w.unref();
    if (p === undefined) return;
    if (r.error !== undefined) p.reject(new Error(`bcrypt: ${r.error}`));
    else p.resolve(r.result as string | boolean);
  });
  w.on("error", (err) => failAll(err));
  w.on("exit", () => {
    if (worker === w) worker = undefined;
    failAll(new Error("bcrypt: worker exited"));
  });
  return w;
}

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function call(op: "hash" | "compare", password: string, arg: string | number): Promise<string | boolean> {
  worker ??= start();
  const w = worker;
  const id = nextId++;
  w.ref();
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, op, password, arg });
  });
}

export function isBcryptHash(hash: string): boolean {
  const m = BCRYPT_FORMAT.exec(hash);
  if (m === null) return false;
  const cost = Number(m[1]);
  return cost >= BCRYPT_MIN_COST && cost <= BCRYPT_MAX_COST;
}

export async function bcryptHash(password: string, cost: number): Promise<string> {
  if (!Number.isInteger(cost) || cost < BCRYPT_MIN_COST || cost > BCRYPT_MAX_COST) throw new Error(`bcrypt: cost ${cost} outside [${BCRYPT_MIN_COST}, ${BCRYPT_MAX_COST}]`);
  return (await call("hash", password, cost)) as string;
}

/** False (never a throw) for a malformed hash. */
export async function bcryptVerify(password: string, hash: string): Promise<boolean> {
  if (!isBcryptHash(hash)) return false;
  return (await call("compare", password, hash)) === true;
}
