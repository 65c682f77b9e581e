// Proves the Lock and Election services answer as real etcd 3.4's do: the same gateway calls (/v3/lock/*,
// /v3/election/*, also under /v3beta) give the same status and JSON on both servers, including a waiter that gets
// the lock when the holder unlocks, a waiter that hangs up leaving no key, campaigns, proclaims, resigns, Observe's
// stream and etcd's errors; the gRPC services give the same codes; and the real `etcdctl lock` and `etcdctl elect`
// print the same on both.
import { spawn, type ChildProcess } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRecipeProto } from "../../core/api/proto/load.js";
import { waitFor } from "../support/wait_for.js";
import { b64, idsOf, LineStream, post, replaceIds } from "./gateway_support.js";
import { haveEtcd, startServer, type RunningServer } from "./processes.js";

const HAVE = haveEtcd();

/** Whether `key` exists, read through the gateway. */
async function exists(endpoint: string, key: string): Promise<boolean> {
  const r = await post(endpoint, "/v3/kv/range", { key: b64(key), count_only: true });
  return (JSON.parse(r.body) as { count?: string }).count === "1";
}

async function waitKey(endpoint: string, key: string, present = true): Promise<void> {
  let seen = !present;
  const poll = (): void => void exists(endpoint, key).then((v) => (seen = v));
  const timer = setInterval(poll, 20);
  try {
    await waitFor(() => seen === present, `${key} ${present ? "created" : "deleted"} on ${endpoint}`);
  } finally {
    clearInterval(timer);
  }
}

/** Runs the same gateway calls against one server and records each answer (ids normalized). */
async function scenario(endpoint: string): Promise<string[]> {
  const ids = idsOf(endpoint);
  const out: string[] = [];
  const note = (path: string, a: { status: number; body: string }): void =>
    void out.push(`${path} ${a.status} ${replaceIds(a.body, ids)}`);
  const rec = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const a = await post(endpoint, path, body);
    note(path, a);
    return JSON.parse(a.body) as Record<string, unknown>;
  };
  for (const id of [1000, 2000, 3000]) await rec("/v3/lease/grant", { ID: id, TTL: 60 });

  // Lock: the holder, the same session again, a waiter served when the holder unlocks.
  await rec("/v3/lock/lock", { name: b64("lk"), lease: 1000 });
  await rec("/v3beta/lock/lock", { name: b64("lk"), lease: 1000 });
  const waiter = post(endpoint, "/v3/lock/lock", { name: b64("lk"), lease: 2000 });
  await waitKey(endpoint, "lk/7d0");
  await rec("/v3/lock/unlock", { key: b64("lk/3e8") });
  note("waiter /v3/lock/lock", await waiter);
  // A waiter that hangs up takes its key away.
  const abort = new AbortController();
  const gone = post(endpoint, "/v3/lock/lock", { name: b64("lk"), lease: 3000 }, abort.signal).catch(() => undefined);
  await waitKey(endpoint, "lk/bb8");
  abort.abort();
  await gone;
  await waitKey(endpoint, "lk/bb8", false);
  await rec("/v3/kv/range", { key: b64("lk/"), range_end: b64("lk0"), keys_only: true });
  await rec("/v3/lock/unlock", { key: b64("lk/7d0") });
  await rec("/v3/lock/lock", { name: b64("lk"), lease: 12345 });
  await rec("/v3/lock/unlock", {});
  await rec("/v3/lock/unlock", { key: b64("never-held") });

  // Election.
  await rec("/v3/election/leader", { name: b64("el") });
  const first = await rec("/v3/election/campaign", { name: b64("el"), lease: 1000, value: b64("v1") });
  await rec("/v3/election/campaign", { name: b64("el"), lease: 1000, value: b64("v1") });
  await rec("/v3/election/campaign", { name: b64("el"), lease: 1000, value: b64("v2") });
  const leader = first["leader"] as Record<string, unknown>;
  const observer = new LineStream(endpoint, "/v3/election/observe", { name: b64("el") });
  await waitFor(() => observer.lines.length >= 1, "observe's first line");
  await rec("/v3/election/leader", { name: b64("el") });
  await rec("/v3/election/proclaim", { leader, value: b64("v3") });
  await waitFor(() => observer.lines.length >= 2, "observe's proclaimed value");
  await rec("/v3/election/proclaim", { leader: { ...leader, rev: 1 }, value: b64("v4") });
  await rec("/v3/election/proclaim", { value: b64("v4") });
  await rec("/v3/election/resign", {});
  await rec("/v3/election/resign", { leader: { ...leader, rev: 1 } });
  const next = post(endpoint, "/v3/election/campaign", { name: b64("el"), lease: 2000, value: b64("w1") });
  await waitKey(endpoint, "el/7d0");
  await rec("/v3beta/election/resign", { leader });
  note("next /v3/election/campaign", await next);
  await waitFor(() => observer.lines.length >= 3, "observe's next leader");
  observer.close();
  for (const line of observer.lines) out.push(`observe ${replaceIds(line, ids)}`);
  await rec("/v3/election/leader", { name: b64("el") });
  await rec("/v3/election/resign", {
    leader: {
      name: b64("el"),
      key: b64("el/7d0"),
      rev: leader["rev"] === undefined ? 0 : Number(leader["rev"]) + 100,
      lease: 2000,
    },
  });
  return out;
}

/** A lock or campaign with lease 0 makes the server grant one (60 s): keys differ by lease id, so compare shapes. */
async function grantedLeaseShape(endpoint: string): Promise<string> {
  const ids = idsOf(endpoint);
  const r = await post(endpoint, "/v3/lock/lock", { name: b64("lk0") });
  const body = JSON.parse(r.body) as { key: string };
  const key = Buffer.from(body.key, "base64").toString();
  const ttl = await post(endpoint, "/v3/lease/timetolive", { ID: BigInt(`0x${key.slice("lk0/".length)}`).toString() });
  const granted = (JSON.parse(ttl.body) as { grantedTTL: string }).grantedTTL;
  return `${r.status} ${replaceIds(r.body, ids).replace(body.key, "KEY")} ${/^lk0\/[0-9a-f]+$/.test(key)} granted ${granted}`;
}

interface Ctl {
  readonly child: ChildProcess;
  stdout: string;
}

function ctl(endpoint: string, args: readonly string[]): Ctl {
  const child = spawn("etcdctl", ["--endpoints", endpoint, ...args], { env: { ...process.env, ETCDCTL_API: "3" } });
  const c: Ctl = { child, stdout: "" };
  child.stdout.on("data", (d: Buffer) => (c.stdout += d.toString()));
  return c;
}

const exited = (c: Ctl): Promise<number | null> =>
  c.child.exitCode !== null
    ? Promise.resolve(c.child.exitCode)
    : new Promise((resolve) => c.child.once("exit", (code) => resolve(code)));

/** etcdctl lock and elect (clientv3's recipes over KV, lease and watch), as a user runs them. */
async function etcdctlRecipes(endpoint: string): Promise<string[]> {
  const out: string[] = [];
  const hex = (s: string): string => s.replace(/\/[0-9a-f]{10,16}\b/g, "/LEASE");
  const once = ctl(endpoint, ["lock", "ctl-lk", "--", "echo", "ran under the lock"]);
  out.push(`lock -- echo: ${await exited(once)} ${once.stdout}`);
  const holder = ctl(endpoint, ["lock", "ctl-lk"]);
  await waitFor(() => holder.stdout.includes("\n"), "etcdctl lock holding");
  const second = ctl(endpoint, ["lock", "ctl-lk", "--", "echo", "second"]);
  const count = async (): Promise<number> =>
    Number(
      (
        JSON.parse(
          (await post(endpoint, "/v3/kv/range", { key: b64("ctl-lk/"), range_end: b64("ctl-lk0"), count_only: true }))
            .body,
        ) as { count?: string }
      ).count ?? 0,
    );
  let n = 0;
  await waitFor(() => (void count().then((v) => (n = v)), n === 2), "the second etcdctl lock waiting");
  out.push(`second while held: ${second.child.exitCode} ${JSON.stringify(second.stdout)}`);
  holder.child.kill("SIGINT");
  out.push(
    `holder: ${hex(holder.stdout)} exit ${await exited(holder)}`,
    `second: ${await exited(second)} ${second.stdout}`,
  );

  const candidate = ctl(endpoint, ["elect", "ctl-el", "p1"]);
  await waitFor(() => candidate.stdout.split("\n").length >= 3, "etcdctl elect leading");
  const listener = ctl(endpoint, ["elect", "-l", "ctl-el"]);
  await waitFor(() => listener.stdout.split("\n").length >= 3, "etcdctl elect -l printing the leader");
  candidate.child.kill("SIGINT");
  listener.child.kill("SIGINT");
  await Promise.all([exited(candidate), exited(listener)]);
  out.push(`candidate: ${hex(candidate.stdout)}`, `listener: ${hex(listener.stdout)}`);
  return out;
}

function grpcCall(endpoint: string, service: "Lock" | "Election", method: string, req: object): Promise<string> {
  const Ctor = loadRecipeProto()[service];
  const client = new Ctor(endpoint, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    (client[method] as (r: object, cb: (e: grpc.ServiceError | null, v?: Record<string, unknown>) => void) => void)(
      req,
      (err, v) => {
        client.close();
        resolve(
          err !== null
            ? `code ${err.code} ${err.details}`
            : `key ${Buffer.from((v?.["key"] as Buffer | undefined) ?? []).toString()}`,
        );
      },
    );
  });
}

describe.runIf(HAVE)("lock and election against real etcd", () => {
  const servers: RunningServer[] = [];
  beforeAll(async () => {
    servers.push(...(await Promise.all([startServer("etcd"), startServer("etcd-ts")])));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("answers the gateway's /v3/lock and /v3/election calls as etcd does", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    const [theirs, mine] = await Promise.all([scenario(etcd.endpoint), scenario(ours.endpoint)]);
    expect(mine.length).toBeGreaterThan(25);
    expect(mine).toEqual(theirs);
    const [theirLease, myLease] = await Promise.all([
      grantedLeaseShape(etcd.endpoint),
      grantedLeaseShape(ours.endpoint),
    ]);
    expect(myLease).toEqual(theirLease);
  }, 60_000);

  it("serves v3lockpb.Lock and v3electionpb.Election over gRPC with etcd's codes", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    for (const [service, method, req] of [
      ["Election", "Leader", { name: Buffer.from("grpc-el") }],
      ["Lock", "Lock", { name: Buffer.from("grpc-lk"), lease: "999" }],
      ["Election", "Resign", {}],
      ["Lock", "Lock", { name: Buffer.from("grpc-lk"), lease: "1000" }],
    ] as const) {
      const [theirs, mine] = await Promise.all([
        grpcCall(etcd.endpoint, service, method, req),
        grpcCall(ours.endpoint, service, method, req),
      ]);
      expect({ method, mine }).toEqual({ method, mine: theirs });
    }
  });

  it("runs etcdctl lock and etcdctl elect as etcd does", async () => {
    const [etcd, ours] = servers as [RunningServer, RunningServer];
    const [theirs, mine] = await Promise.all([etcdctlRecipes(etcd.endpoint), etcdctlRecipes(ours.endpoint)]);
    expect(mine).toEqual(theirs);
    expect(mine.join("\n")).toContain("ran under the lock");
  }, 60_000);
});
