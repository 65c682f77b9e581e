// Proves the store's permission decisions match real etcd 3.4's: random roles (read/write/readwrite on a
// key, a range, a prefix, from-key) are granted through etcdctl to users of a real etcd with auth enabled and
// mirrored into our store, then random get/put/del requests through etcdctl must be refused by etcd exactly
// when our store refuses them. Ranges whose end is below their key are left out: they select no key, and
// etcd answers them by the shape of its interval tree (see range_perms.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { PermType } from "../../core/auth/auth_store.js";
import { etcdctl, haveEtcd, startServer, type RunningServer } from "../compat/processes.js";
import { Harness, enc } from "./helpers.js";

const SEED = Number(process.env["FC_SEED"] ?? 20261125);
const ROUNDS = 6;
const REQUESTS_PER_ROUND = 12;

/** A small deterministic generator (an LCG), so a failure replays with the seed it prints. */
function rng(seed: number): (n: number) => number {
  let s = BigInt(seed) % 2147483648n;
  return (n) => {
    s = (s * 1103515245n + 12345n) % 2147483648n; // bigint: the product exceeds 2^53
    return Math.floor((Number(s) / 2147483648) * n);
  };
}

interface Req {
  readonly args: string[];
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

/** etcdctl's prefix end: the key with its last byte below 0xff incremented, the rest dropped. */
function prefixEnd(k: Uint8Array): Uint8Array {
  for (let i = k.length - 1; i >= 0; i--) {
    if ((k[i] as number) < 0xff) {
      const out = k.slice(0, i + 1);
      out[i] = (out[i] as number) + 1;
      return out;
    }
  }
  return Uint8Array.of(0);
}

function generator(seed: number): { key: () => string; range: () => Req } {
  const r = rng(seed);
  const key = (): string => Array.from({ length: 1 + r(3) }, () => "abc"[r(3)]).join("");
  const range = (): Req => {
    const k = key();
    const form = r(4);
    if (form === 0) return { args: [k], key: enc(k), rangeEnd: new Uint8Array(0) };
    if (form === 2) return { args: [k, "--prefix"], key: enc(k), rangeEnd: prefixEnd(enc(k)) };
    if (form === 3) return { args: [k, "--from-key"], key: enc(k), rangeEnd: Uint8Array.of(0) };
    const drawn = key();
    const e = drawn > k ? drawn : k + drawn; // k + anything is above k
    return { args: [k, e], key: enc(k), rangeEnd: enc(e) };
  };
  return { key, range };
}

describe.runIf(haveEtcd())("permission decisions against real etcd 3.4", () => {
  let srv: RunningServer;
  let h: Harness;
  const ctl = (args: string[]) => etcdctl(srv.endpoint, args);
  const asRoot = (args: string[]): void => {
    const res = ctl(["--user", "root:pw", ...args]);
    if (res.status !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${res.stderr}`);
  };

  beforeAll(async () => {
    srv = await startServer("etcd");
    h = new Harness();
    for (const args of [
      ["user", "add", "root:pw"],
      ["role", "add", "root"],
      ["user", "grant-role", "root", "root"],
      ["auth", "enable"],
    ]) {
      const res = ctl(args);
      if (res.status !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${res.stderr}`);
    }
    await h.enableWithRoot();
  });
  afterAll(async () => {
    await h?.close();
    await srv?.stop();
  });

  it(`${ROUNDS} random roles, ${REQUESTS_PER_ROUND} requests each: same allow/deny (seed=${SEED})`, async () => {
    const g = generator(SEED);
    const pick = rng(SEED + 1);
    const mismatches: string[] = [];
    let deniedCount = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const role = `r${round}`;
      const user = `u${round}`;
      asRoot(["role", "add", role]);
      asRoot(["user", "add", `${user}:pw`]);
      asRoot(["user", "grant-role", user, role]);
      await h.apply((tx, s) => {
        s.roleAdd(tx, role);
        s.userAdd(tx, user, undefined, true);
        s.userGrantRole(tx, user, role);
      });
      for (let i = 1 + pick(5); i > 0; i--) {
        const type = (["read", "write", "readwrite"] as const)[pick(3)] ?? "read";
        const p = g.range();
        asRoot(["role", "grant-permission", role, type, ...p.args]);
        const permType = type === "read" ? PermType.READ : type === "write" ? PermType.WRITE : PermType.READWRITE;
        await h.apply((tx, s) => s.roleGrantPermission(tx, role, { permType, key: p.key, rangeEnd: p.rangeEnd }));
      }
      for (let q = 0; q < REQUESTS_PER_ROUND; q++) {
        const op = (["get", "put", "del"] as const)[pick(3)] ?? "get";
        const req =
          op === "put" ? ((k) => ({ args: [k, "v"], key: enc(k), rangeEnd: new Uint8Array(0) }))(g.key()) : g.range();
        const res = ctl(["--user", `${user}:pw`, op, ...req.args]);
        const denied = /etcdserver: permission denied/.test(res.stderr);
        if (denied) deniedCount++;
        expect(res.status === 0 || denied, `etcdctl ${op} ${req.args.join(" ")}: ${res.stderr}`).toBe(true);
        const ours =
          op === "get"
            ? h.store.isRangePermitted(user, req.key, req.rangeEnd)
            : op === "put"
              ? h.store.isPutPermitted(user, req.key)
              : h.store.isDeleteRangePermitted(user, req.key, req.rangeEnd);
        if (ours !== !denied)
          mismatches.push(`${user} ${op} ${req.args.join(" ")}: etcd ${denied ? "denied" : "allowed"}, ours ${ours}`);
      }
    }
    expect(mismatches, `seed=${SEED}`).toEqual([]);
    const total = ROUNDS * REQUESTS_PER_ROUND;
    // Not vacuous: both answers occur (seed=20261125: 43 denied of 72).
    expect(deniedCount > 0 && deniedCount < total, `denied ${deniedCount} of ${total}, seed=${SEED}`).toBe(true);
  });
});
