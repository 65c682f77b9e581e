// Proves failed logins lock nobody out and cost no lasting memory. In process: 10,000 failed logins against the auth
// store (half a real user's wrong passwords, half 5,000 distinct unknown users) leave the V8 heap, after a forced
// GC, within 512 KiB of where it was after the first 1,000 (a leak of 64 bytes per failure would exceed it), keep no
// token, and the attacked user and another log in at once after. Over the wire, against real etcd 3.4.23 too: 2,000
// failed logins are each etcd's "authentication failed" on both, another user logs in between every batch of 500,
// and the attacked user logs in with the right password right after (etcd 3.4 has no lock-out; neither has etcd-ts).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SimpleTokenProvider } from "../../core/auth/tokens.js";
import { Harness } from "../auth/helpers.js";
import { haveEtcd } from "../compat/processes.js";
import { type Kind, type Member, startMember } from "./members.js";
import { RawEtcd, pb, type RawReply } from "./raw_grpc.js";

const AUTH_FAILED = "3: etcdserver: authentication failed, invalid user ID or password";
const IN_FLIGHT = 32;

/** Failure i: even → alice with a wrong password, odd → an unknown user of its own. */
const attempt = (i: number): [string, string] => (i % 2 === 0 ? ["alice", `wrong-${i}`] : [`ghost-${i}`, "pw"]);

/** Runs failures [from, to) through `login`, IN_FLIGHT at a time; counts the outcomes. */
async function storm(
  from: number,
  to: number,
  login: (name: string, pw: string) => Promise<string>,
  outcomes: Map<string, number>,
): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < to) {
        const o = await login(...attempt(next++));
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }
    }),
  );
}

describe("10,000 failed logins in process", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("keep the heap within 512 KiB after GC, issue no token, and lock nobody out", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const provider = new SimpleTokenProvider({ ttlSeconds: 300 });
    h = new Harness({ provider: () => provider, bcryptCost: 4 });
    await h.addUser("alice", "alice-pw");
    await h.addUser("bob", "bob-pw");
    await h.enableWithRoot();
    const outcomes = new Map<string, number>();
    const login = (name: string, pw: string): Promise<string> =>
      h.store.authenticate(name, pw).then(
        () => "ok",
        (err: unknown) => String((err as { code?: string }).code),
      );
    await storm(0, 1_000, login, outcomes);
    gc();
    const heapWarm = process.memoryUsage().heapUsed;
    await storm(1_000, 10_000, login, outcomes);
    gc();
    const growth = process.memoryUsage().heapUsed - heapWarm;
    expect([...outcomes]).toEqual([["AUTH_FAILED", 10_000]]);
    expect(growth, `heap grew ${growth} bytes over 9,000 failures`).toBeLessThan(512 * 1024);
    expect(provider.size, "no token issued or kept").toBe(0);
    expect(h.store.authInfoFromToken(await h.store.authenticate("alice", "alice-pw")).username).toBe("alice");
    expect(h.store.authInfoFromToken(await h.store.authenticate("bob", "bob-pw")).username).toBe("bob");
  }, 120_000);
});

describe.runIf(haveEtcd())("2,000 failed logins over the wire, etcd-ts against real etcd 3.4", () => {
  const KINDS: readonly Kind[] = ["etcd", "etcd-ts"];
  const members = new Map<Kind, Member>();
  beforeAll(async () => {
    for (const k of KINDS) members.set(k, await startMember(k, ["--bcrypt-cost", "4"]));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([...members.values()].map((m) => m.stop()));
  });

  async function run(m: Member): Promise<{ outcomes: [string, number][]; bob: string[]; alice: string }> {
    const raw = new RawEtcd(m.endpoint);
    const call = async (method: string, ...f: Buffer[]): Promise<string> =>
      outcome(await raw.call("Auth", method, pb.msg(...f)));
    const login = (name: string, pw: string): Promise<string> =>
      call("Authenticate", pb.bytes(1, name), pb.bytes(2, pw));
    try {
      const setup = [
        await call("RoleAdd", pb.bytes(1, "root")),
        await call("UserAdd", pb.bytes(1, "root"), pb.bytes(2, "rootpw")),
        await call("UserGrantRole", pb.bytes(1, "root"), pb.bytes(2, "root")),
        await call("UserAdd", pb.bytes(1, "alice"), pb.bytes(2, "alice-pw")),
        await call("UserAdd", pb.bytes(1, "bob"), pb.bytes(2, "bob-pw")),
        await call("AuthEnable"),
      ];
      expect(setup, `${m.kind} setup`).toEqual(Array<string>(6).fill("ok"));
      const outcomes = new Map<string, number>();
      const bob: string[] = [];
      for (let at = 0; at < 2_000; at += 500) {
        await storm(at, at + 500, login, outcomes);
        bob.push(await login("bob", "bob-pw"));
      }
      return { outcomes: [...outcomes], bob, alice: await login("alice", "alice-pw") };
    } finally {
      raw.close();
    }
  }

  it("every one is etcd's 'authentication failed' on both; bob logs in throughout, alice right after", async () => {
    const [theirs, ours] = await Promise.all(KINDS.map((k) => run(members.get(k)!)));
    expect(theirs).toEqual({ outcomes: [[AUTH_FAILED, 2_000]], bob: ["ok", "ok", "ok", "ok"], alice: "ok" });
    expect(ours, "etcd-ts as etcd").toEqual(theirs);
  }, 120_000);
});

function outcome(r: RawReply): string {
  return r.ok ? "ok" : `${r.code}: ${r.details}`;
}
