// Proves etcdctl 3.4's auth commands and permission-checked requests behave on etcd-ts exactly as on real etcd 3.4:
// every step runs the real etcdctl against both servers (same flags) and stdout, stderr and the exit code must
// match after normalizing ids and dropping clientv3's timestamped retry log lines. Scenarios run in order on one
// server pair, as an operator would: users and roles first, then auth enabled, then allowed and denied requests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdctl, haveEtcd, startServer, type CtlResult, type RunningServer } from "./processes.js";

interface Step {
  readonly args: readonly string[];
  readonly input?: string;
  /** For commands that never exit (watch): stop them after this long and compare what they printed. */
  readonly killAfterMs?: number;
  /** Remember the lease id this step prints as `${name}`. */
  readonly captureLease?: string;
}
const s = (...args: string[]): Step => ({ args });
const withInput = (input: string, ...args: string[]): Step => ({ args, input });
/** A step run as `user:password`. */
const as = (user: string, ...args: string[]): Step => ({ args: ["--user", user, ...args] });
const asWithInput = (user: string, input: string, ...args: string[]): Step => ({
  args: ["--user", user, ...args],
  input,
});

const ROOT = "root:rootpw";
const ALICE = "alice:alicepw";
const BOB = "bob:bobpw";

const SCENARIOS: Record<string, readonly Step[]> = {
  "auth enable without a root user fails": [s("auth", "enable")],
  "user add with --new-user-password, --interactive=false and a prompted password": [
    s("user", "add", "root", "--new-user-password", "rootpw"),
    s("user", "add", "alice", "--new-user-password=alicepw"),
    withInput("bobpw\n", "user", "add", "bob", "--interactive=false"),
    withInput("carolpw\ncarolpw\n", "user", "add", "carol"),
    s("user", "add", "root", "--new-user-password", "again"),
    s("user", "add", "nopw", "--no-password"),
    s("user", "list"),
  ],
  "roles: add, grant read/write/readwrite on a key, a prefix, a range and from-key, get in both formats": [
    s("role", "add", "reader"),
    s("role", "add", "writer"),
    s("role", "add", "reader"),
    s("role", "grant-permission", "reader", "read", "r/key"),
    s("role", "grant-permission", "reader", "readwrite", "shared/", "--prefix"),
    s("role", "grant-permission", "reader", "read", "ra/a", "ra/m"),
    s("role", "grant-permission", "writer", "write", "w/", "--prefix"),
    s("role", "grant-permission", "writer", "readwrite", "fk/", "--from-key"),
    s("role", "grant-permission", "nosuch", "read", "x"),
    s("role", "get", "reader"),
    s("role", "get", "reader", "-w", "json"),
    s("role", "get", "writer"),
    s("role", "list"),
    s("role", "list", "-w", "json"),
  ],
  "users get roles; user get and user list in json": [
    s("user", "grant-role", "alice", "reader"),
    s("user", "grant-role", "bob", "writer"),
    s("user", "grant-role", "nopw", "reader"),
    s("user", "grant-role", "alice", "nosuch"),
    s("user", "grant-role", "ghost", "reader"),
    s("user", "get", "alice"),
    s("user", "get", "alice", "-w", "json"),
    s("user", "list", "-w", "json"),
    s("user", "get", "ghost"),
  ],
  "data written before auth is enabled": [
    s("put", "r/key", "rv"),
    s("put", "shared/a", "sv"),
    s("put", "ra/b", "rb"),
    s("put", "w/a", "wv"),
  ],
  "auth enable (root gets the root role), then a request without a user": [
    s("auth", "enable"),
    s("get", "r/key"),
    s("put", "r/key", "x"),
  ],
  "a reader gets what it may read, in every form": [
    as(ALICE, "get", "r/key"),
    as(ALICE, "get", "shared/", "--prefix"),
    as(ALICE, "get", "ra/a", "ra/m", "-w", "json"),
    as(ALICE, "get", "ra/b", "--keys-only"),
    as(ALICE, "put", "shared/b", "new"),
    as(ALICE, "del", "shared/b", "--prev-kv"),
  ],
  "a reader is denied writes and reads outside its grants": [
    as(ALICE, "put", "r/key", "no"),
    as(ALICE, "get", "w/a"),
    as(ALICE, "get", "ra/a", "ra/z"),
    as(ALICE, "get", "r/", "--prefix"),
    as(ALICE, "del", "ra/b"),
    as(ALICE, "put", "elsewhere", "v"),
  ],
  "a writer writes but may not read, and put --prev-kv needs read": [
    as(BOB, "put", "w/b", "1"),
    as(BOB, "get", "w/b"),
    as(BOB, "put", "w/b", "2", "--prev-kv"),
    as(BOB, "del", "w/", "--prefix"),
    as(BOB, "put", "fk/x", "1"),
    as(BOB, "get", "fk/x"),
    as(ROOT, "get", "w/", "--prefix"),
  ],
  "txn: allowed, then denied by one op of the failure branch and by a compare": [
    asWithInput(ALICE, 'value("shared/a") = "sv"\n\nput shared/t 1\n\nget r/key\n\n', "txn"),
    asWithInput(ALICE, 'value("shared/a") = "sv"\n\nput shared/t 2\n\nput r/key no\n\n', "txn"),
    asWithInput(ALICE, 'value("w/a") = "wv"\n\nget shared/a\n\n\n', "txn", "-w", "json"),
    as(ROOT, "get", "shared/t"),
  ],
  "bad credentials: unknown user, wrong password, a password for a --no-password user": [
    as("bad:pw", "get", "r/key"),
    as("alice:wrong", "get", "r/key"),
    as("nopw:anything", "get", "r/key"),
    s("--user", "alice", "--password", "alicepw", "get", "r/key"),
  ],
  "watch: denied on a range the user may not read and without a user, allowed on its own": [
    { args: ["watch", "shared/", "--prefix", "--rev", "1"], killAfterMs: 1500 },
    { args: ["--user", ALICE, "watch", "w/a", "--rev", "1"], killAfterMs: 1500 },
    { args: ["--user", ALICE, "watch", "shared/", "--prefix", "--rev", "1"], killAfterMs: 1500 },
  ],
  "leases: anyone may grant; revoke needs write on every attached key": [
    { args: ["--user", ROOT, "lease", "grant", "600"], captureLease: "L" },
    as(ROOT, "put", "r/leased", "v", "--lease", "${L}"),
    // Without --keys: with them, etcd 3.4.23 lists keys alice may not read (CVE-2023-32082); etcd-ts refuses as
    // 3.4.26 does (test/security/admin_checks.test.ts).
    as(ALICE, "lease", "revoke", "${L}"),
    as(ALICE, "lease", "timetolive", "${L}"),
    as(ROOT, "lease", "timetolive", "${L}", "--keys"),
    as(ROOT, "lease", "revoke", "${L}"),
    as(ROOT, "get", "r/leased"),
  ],
  "admin requests: user and role management, defrag, hashkv and snapshot need root; compact and alarms do not": [
    as(ALICE, "user", "list"),
    as(ALICE, "role", "add", "sneaky"),
    as(ALICE, "user", "get", "alice"),
    as(ALICE, "user", "get", "bob"),
    as(ALICE, "role", "get", "reader"),
    as(ALICE, "role", "get", "writer"),
    as(ALICE, "defrag"),
    as(ALICE, "endpoint", "hashkv"),
    as(ALICE, "snapshot", "save", "${TMP}/snap.db"),
    as(ALICE, "alarm", "list"),
    as(ALICE, "compact", "2"),
    as(ALICE, "auth", "disable"),
    as(ROOT, "user", "list", "-w", "json"),
    as(ROOT, "endpoint", "hashkv", "-w", "json"),
  ],
  "root may not be deleted or lose the root role while auth is enabled": [
    as(ROOT, "user", "delete", "root"),
    as(ROOT, "user", "revoke-role", "root", "root"),
    as(ROOT, "role", "delete", "root"),
  ],
  "a permission change applies to the next request": [
    as(ALICE, "get", "w/a"),
    as(ROOT, "role", "grant-permission", "reader", "read", "w/a"),
    as(ALICE, "get", "w/a"),
    as(ROOT, "role", "revoke-permission", "reader", "w/a"),
    as(ALICE, "get", "w/a"),
    as(ROOT, "role", "revoke-permission", "reader", "w/a"),
    as(ROOT, "user", "revoke-role", "alice", "reader"),
    as(ALICE, "get", "r/key"),
    as(ROOT, "user", "grant-role", "alice", "reader"),
    as(ALICE, "get", "r/key"),
  ],
  "change a password: the old one stops working": [
    as(ROOT, "user", "passwd", "carol", "--interactive=false"),
    asWithInput(ROOT, "carolnew\n", "user", "passwd", "carol", "--interactive=false"),
    as("carol:carolpw", "get", "r/key"),
    as("carol:carolnew", "get", "r/key"),
  ],
  "delete a user and a role while enabled": [
    as(ROOT, "user", "delete", "carol"),
    as(ROOT, "user", "delete", "carol"),
    as("carol:carolnew", "get", "r/key"),
    as(ROOT, "role", "delete", "writer"),
    as(ROOT, "user", "get", "bob"),
    as(BOB, "put", "w/c", "1"),
  ],
  "auth disable, auth status (not an etcdctl 3.4 command), then everything is open again": [
    as(ROOT, "auth", "disable"),
    s("auth", "status"),
    s("get", "w/", "--prefix"),
    s("put", "w/open", "1"),
    as(ALICE, "put", "w/open", "2"),
    s("auth", "disable"),
    s("user", "list"),
    s("role", "list"),
  ],
};

interface Identity {
  readonly server: RunningServer;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly tmp: string;
  readonly leases: Map<string, bigint>;
}

function identify(server: RunningServer): Identity {
  const r = etcdctl(server.endpoint, ["endpoint", "status", "-w", "json"]);
  const header = /"cluster_id":(\d+),"member_id":(\d+)/.exec(r.stdout);
  if (header === null) throw new Error(`no ids in endpoint status of ${server.kind}: ${r.stdout} ${r.stderr}`);
  return {
    server,
    clusterId: BigInt(header[1] ?? "0"),
    memberId: BigInt(header[2] ?? "0"),
    leases: new Map(),
    tmp: mkdtempSync(join(tmpdir(), `etcdctl-auth-${server.kind}-`)),
  };
}

/** Replaces what must differ between two servers started alike: ports, ids, lease ids, hashes, scratch paths. */
function normalize(text: string, id: Identity): string {
  let out = text.replaceAll(id.tmp, "TMP");
  for (const [name, lease] of id.leases) {
    // etcdctl prints lease ids as %016x: replace the zero-padded form first.
    out = out
      .replaceAll(lease.toString(16).padStart(16, "0"), `LEASE_${name}`)
      .replaceAll(lease.toString(16), `LEASE_${name}`)
      .replaceAll(lease.toString(), `LEASE_${name}`);
  }
  return (
    out
      .split("\n")
      // clientv3's retry warnings carry a timestamp and a random client id; the error itself is printed after them.
      .filter((l) => !l.startsWith('{"level":'))
      .join("\n")
      .replaceAll(id.server.endpoint, "ENDPOINT")
      .replaceAll(id.memberId.toString(), "MEMBER_ID")
      .replaceAll(id.memberId.toString(16), "MEMBER_ID")
      .replaceAll(id.clusterId.toString(), "CLUSTER_ID")
      .replaceAll(id.clusterId.toString(16), "CLUSTER_ID")
      .replace(/"hash":\d+/g, '"hash":N')
      .replace(/remaining\(\d+s\)/g, "remaining(Ns)")
  );
}

function runStep(id: Identity, step: Step): CtlResult {
  const fill = (t: string): string =>
    t.replace(/\$\{(\w+)\}/g, (_, name: string) =>
      name === "TMP" ? id.tmp : (id.leases.get(name) ?? 0n).toString(16),
    );
  const r = etcdctl(id.server.endpoint, step.args.map(fill), step.input, step.killAfterMs);
  if (step.captureLease !== undefined) {
    const m = /lease ([0-9a-f]+) granted/.exec(r.stdout);
    if (m === null) throw new Error(`no lease id in the output of ${step.args.join(" ")}: ${r.stdout} ${r.stderr}`);
    id.leases.set(step.captureLease, BigInt(`0x${m[1] ?? "0"}`));
  }
  return { status: r.status, stdout: normalize(r.stdout, id), stderr: normalize(r.stderr, id) };
}

const HAVE = haveEtcd();
if (process.env["CI"] === "true" && !HAVE)
  throw new Error("CI must have etcd and etcdctl installed (.ci/run installs them)");

describe.runIf(HAVE)("etcdctl auth against etcd-ts and real etcd", () => {
  let etcd: Identity;
  let ours: Identity;
  const started: RunningServer[] = [];
  beforeAll(async () => {
    // The cheapest password hashing on both sides keeps the many logins of this suite fast.
    const flags = ["--bcrypt-cost", "4"];
    const [a, b] = await Promise.all([startServer("etcd", flags), startServer("etcd-ts", flags)]);
    started.push(a, b);
    [etcd, ours] = [identify(a), identify(b)];
  });
  afterAll(async () => {
    await Promise.all(started.map((x) => x.stop()));
    for (const id of [etcd, ours]) if (id !== undefined) rmSync(id.tmp, { recursive: true, force: true });
  });

  for (const [name, steps] of Object.entries(SCENARIOS)) {
    it(name, () => {
      for (const step of steps) {
        const theirs = runStep(etcd, step);
        const mine = runStep(ours, step);
        expect({ step: step.args.join(" "), ...mine }).toEqual({ step: step.args.join(" "), ...theirs });
      }
    });
  }
});
