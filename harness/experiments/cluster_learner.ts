// `npm run bench -- cluster-learner`: the learner experiment (the seed's Figures 1–3).
// Part A (join): a 3-member cluster holding --keys keys × 2 KiB (50,000; --quick 2,000) under a write load of 8
// closed-loop writers over the three members. MemberAdd --learner with a fresh member's peer URL, start that
// member with --initial-cluster-state existing, then call MemberPromote every --promote-every-ms until it
// succeeds (retrying on "can only promote a learner member which is in sync with leader"): time to promotable.
// The same with the member added as a voter directly (--modes learner,voter): time until the new member's
// applied index reaches the leader's. Both: leader changes the original members saw, write P99 and longest write
// gap during the join beside a window before it.
// Part B (bad peer URL, a port nobody listens on): (1) 3 members: MemberAdd --learner → writes keep working;
// (2) 1 member: MemberAdd --learner → writes keep working; (3) 1 member: MemberAdd voter with the default
// --strict-reconfig-check; (4) 1 member with --strict-reconfig-check=false: MemberAdd voter → the quorum is now
// 2 of 2 with one member that never comes: writes time out, and MemberRemove of the bad member cannot commit
// either (the seed's Figure 2). Each case: the add's answer, then --bad-window-s of writes (1 writer, 2 s deadline).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { EtcdClient, errorCode } from "../../core/client/index.js";
import type { EtcdCluster } from "../targets/etcd_cluster.js";
import { freePort } from "../targets/launcher.js";
import type { ClusterKind } from "../targets/make.js";
import { num, parseArgs } from "./common.js";
import {
  clusterKinds,
  clusterResultsDir,
  leaderChanges,
  timingArgs,
  withCluster,
  writeRun,
  WriteLoad,
  type TargetOutcome,
} from "./cluster_common.js";
import { setTimeout as pause } from "node:timers/promises";

interface Settings {
  readonly keys: number;
  readonly valueBytes: number;
  readonly writers: number;
  readonly baselineS: number;
  readonly afterS: number;
  readonly promoteEveryMs: number;
  readonly giveUpS: number;
  readonly badWindowS: number;
  readonly modes: readonly ("learner" | "voter")[];
}

export interface JoinRow {
  target: string;
  mode: "learner" | "voter";
  keys: number;
  /** MemberAdd → the new member answers Status with a leader. */
  member_serving_ms: number;
  /** learner: MemberAdd → MemberPromote succeeded; voter: MemberAdd → its applied index reached the leader's. -1: gave up. */
  in_sync_ms: number;
  promote_attempts: number;
  promote_refusals: string;
  /** MemberAdd answers of `unhealthy cluster` before it was accepted (sent again every 250 ms). */
  add_unhealthy_refusals: number;
  leader_changes: number;
  write_p99_before_ms: number;
  write_p99_during_ms: number;
  write_p99_after_ms: number;
  write_gap_before_ms: number;
  write_gap_during_ms: number;
  write_errors_during: number;
  /** "ok", or (when it gave up) whether the new member still ran and the end of its stderr. */
  new_member: string;
}

export interface BadUrlRow {
  target: string;
  case: string;
  members: number;
  add: string;
  add_result: string;
  writes_ok: number;
  writes_failed: number;
  write_errors: string;
  remove_result: string;
}

async function preload(cluster: EtcdCluster, keys: number, valueBytes: number): Promise<void> {
  const clients = [0, 1, 2].map((i) => new EtcdClient({ endpoints: [cluster.endpoint(i)], callTimeoutMs: 30_000 }));
  const value = Buffer.alloc(valueBytes, "k");
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: 48 }, async (_, slot) => {
        while (next < keys) {
          const i = next++;
          await clients[slot % 3]!.put(`/cluster-learner/data/${String(i).padStart(7, "0")}`, value);
        }
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
}

/** How long MemberAdd is retried while etcd refuses it as `unhealthy cluster` (members connected < 5 s). */
const ADD_RETRY_MS = 30_000;

/**
 * addMember calls MemberAdd, again while the answer is UNHEALTHY: etcd's strict reconfig check refuses any add
 * until every voter has been connected for 5 s (a definite refusal, so sending it again is safe).
 */
async function addMember(
  client: EtcdClient,
  peerUrls: readonly string[],
  isLearner: boolean,
): Promise<{ id: bigint; unhealthyRefusals: number }> {
  const end = Date.now() + ADD_RETRY_MS;
  for (let refusals = 0; ; refusals++) {
    try {
      return { id: (await client.cluster.memberAdd(peerUrls, { isLearner })).member.id, unhealthyRefusals: refusals };
    } catch (err) {
      if (errorCode(err) !== "UNHEALTHY" || Date.now() > end) throw err;
      await pause(250);
    }
  }
}

/** waitInSync polls until the new member's applied index (Status raftIndex) reaches the leader's. */
async function waitInSync(cluster: EtcdCluster, index: number, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const leader = await cluster.leaderIndex();
    const [l, n] = await Promise.all([
      leader >= 0 ? cluster.status(leader).catch(() => undefined) : undefined,
      cluster.status(index).catch(() => undefined),
    ]);
    if (l !== undefined && n !== undefined && n.raftIndex >= l.raftIndex) return true;
    await pause(100);
  }
  return false;
}

/** promoteUntilDone calls MemberPromote until it succeeds; returns attempts and the refusals by code. */
async function promoteUntilDone(
  client: EtcdClient,
  id: bigint,
  s: Settings,
  deadline: number,
): Promise<{ ok: boolean; attempts: number; refusals: Map<string, number> }> {
  const refusals = new Map<string, number>();
  let attempts = 0;
  while (Date.now() < deadline) {
    attempts++;
    try {
      await client.cluster.memberPromote(id);
      return { ok: true, attempts, refusals };
    } catch (err) {
      const code = errorCode(err);
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
      await pause(s.promoteEveryMs);
    }
  }
  return { ok: false, attempts, refusals };
}

async function joinMember(
  target: string,
  cluster: EtcdCluster,
  s: Settings,
  mode: "learner" | "voter",
): Promise<JoinRow> {
  console.error(`${target} ${mode}: preloading ${s.keys} keys × ${s.valueBytes} B`);
  await preload(cluster, s.keys, s.valueBytes);
  const load = new WriteLoad(cluster, { writers: s.writers, callTimeoutMs: 5_000, prefix: "/cluster-learner/load/" });
  const admin = new EtcdClient({ endpoints: cluster.endpoints(), callTimeoutMs: 10_000 });
  load.start();
  try {
    await pause(s.baselineS * 1000);
    const before = await Promise.all([0, 1, 2].map((i) => leaderChanges(cluster, i)));
    const { index, peerUrl } = await cluster.prepareJoin();
    load.exclude(index);
    const addAt = load.now(),
      deadline = Date.now() + s.giveUpS * 1000;
    const added = await addMember(admin, [peerUrl], mode === "learner");
    await cluster.startJoin(index, { wait: false });
    const serving = cluster.waitReady(index, s.giveUpS * 1000).then(
      () => load.now() - addAt,
      () => -1,
    );
    let inSyncMs = -1,
      attempts = 0,
      refusals = new Map<string, number>();
    if (mode === "learner") {
      const p = await promoteUntilDone(admin, added.id, s, deadline);
      attempts = p.attempts;
      refusals = p.refusals;
      if (p.ok) inSyncMs = load.now() - addAt;
    } else if (await waitInSync(cluster, index, deadline)) {
      inSyncMs = load.now() - addAt;
    }
    const doneAt = load.now();
    const servingMs = await serving;
    await pause(s.afterS * 1000);
    const endAt = load.now();
    const after = await Promise.all([0, 1, 2].map((i) => leaderChanges(cluster, i)));
    const base = { from: addAt - s.baselineS * 1000, to: addAt };
    const gaveUp = servingMs < 0 || inSyncMs < 0;
    if (gaveUp)
      console.error(
        `${target} ${mode}: the new member ${cluster.isRunning(index) ? "runs" : "exited"}; its stderr ends:\n${cluster.stderrTail(index).slice(-1500)}`,
      );
    return {
      target,
      mode,
      keys: s.keys,
      member_serving_ms: Math.round(servingMs),
      in_sync_ms: Math.round(inSyncMs),
      promote_attempts: attempts,
      promote_refusals: [...refusals].map(([c, n]) => `${c}:${n}`).join(" "),
      add_unhealthy_refusals: added.unhealthyRefusals,
      leader_changes: Math.max(...after.map((a, k) => a - before[k]!)),
      write_p99_before_ms: load.latency(base.from, base.to).p99Ms,
      write_p99_during_ms: load.latency(addAt, doneAt).p99Ms,
      write_p99_after_ms: load.latency(doneAt, endAt).p99Ms,
      write_gap_before_ms: Math.round(load.longestGapMs(base.from, base.to)),
      write_gap_during_ms: Math.round(load.longestGapMs(addAt, doneAt)),
      write_errors_during: load.errors(addAt, doneAt).count,
      new_member: gaveUp
        ? `${cluster.isRunning(index) ? "running" : "exited"}: ${cluster.stderrTail(index).slice(-300).replace(/\s+/g, " ")}`
        : "ok",
    };
  } finally {
    admin.close();
    await load.stop();
  }
}

/** writesFor puts with one writer for `seconds` (2 s deadline each) and counts what happened. */
async function writesFor(endpoint: string, seconds: number): Promise<{ ok: number; failed: number; byCode: string }> {
  const client = new EtcdClient({ endpoints: [endpoint], callTimeoutMs: 2_000 });
  const by = new Map<string, number>();
  let ok = 0;
  const end = Date.now() + seconds * 1000;
  try {
    for (let n = 0; Date.now() < end; n++) {
      try {
        await client.put(`/cluster-learner/bad-url/${n % 10}`, "v");
        ok++;
      } catch (err) {
        by.set(errorCode(err), (by.get(errorCode(err)) ?? 0) + 1);
      }
    }
  } finally {
    client.close();
  }
  return {
    ok,
    failed: [...by.values()].reduce((a, b) => a + b, 0),
    byCode: [...by].map(([c, n]) => `${c}:${n}`).join(" "),
  };
}

/** badAdd adds a member whose peer URL nobody listens on, writes for a while, then tries to remove it again. */
async function badAdd(
  target: string,
  cluster: EtcdCluster,
  c: { name: string; members: number; learner: boolean },
  s: Settings,
): Promise<BadUrlRow> {
  const badUrl = `http://127.0.0.1:${await freePort()}`;
  const admin = new EtcdClient({ endpoints: [cluster.endpoint(0)], callTimeoutMs: 5_000 });
  try {
    let addResult = "ok",
      id: bigint | undefined;
    try {
      id = (await addMember(admin, [badUrl], c.learner)).id;
    } catch (err) {
      addResult = `refused ${errorCode(err)}: ${String(err).slice(0, 160)}`;
    }
    const w = await writesFor(cluster.endpoint(0), s.badWindowS);
    let removeResult = "not added";
    if (id !== undefined) {
      removeResult = await admin.cluster.memberRemove(id).then(
        () => "ok",
        (err: unknown) => `failed ${errorCode(err)}`,
      );
    }
    const row = {
      target,
      case: c.name,
      members: c.members,
      add: `${c.learner ? "learner" : "voter"} ${badUrl}`,
      add_result: addResult,
      writes_ok: w.ok,
      writes_failed: w.failed,
      write_errors: w.byCode,
      remove_result: removeResult,
    };
    console.error(
      `${target} ${c.name}: add ${addResult}; ${w.ok} writes ok, ${w.failed} failed (${w.byCode}); remove ${removeResult}`,
    );
    return row;
  } finally {
    admin.close();
  }
}

const BAD_CASES = [
  { name: "3 members, learner with bad URL", members: 3, learner: true, strict: true },
  { name: "1 member, learner with bad URL", members: 1, learner: true, strict: true },
  { name: "1 member, voter with bad URL, strict reconfig check", members: 1, learner: false, strict: true },
  { name: "1 member, voter with bad URL, --strict-reconfig-check=false", members: 1, learner: false, strict: false },
] as const;

async function runKind(
  kind: ClusterKind,
  args: Map<string, string>,
  s: Settings,
  joins: JoinRow[],
  bads: BadUrlRow[],
  outcomes: TargetOutcome[],
): Promise<void> {
  for (const mode of s.modes) {
    const r = await withCluster(kind, 3, { extraArgs: timingArgs(args) }, (c) => joinMember(c.name, c, s, mode));
    outcomes.push({ ...r.outcome, name: `${r.outcome.name} ${mode} join` });
    if (r.value !== undefined) {
      joins.push(r.value);
      console.error(
        `${r.outcome.name} ${mode}: serving after ${r.value.member_serving_ms} ms, in sync/promoted after ${r.value.in_sync_ms} ms; leader changes ${r.value.leader_changes}; write P99 ${r.value.write_p99_before_ms} → ${r.value.write_p99_during_ms} ms`,
      );
    }
  }
  for (const c of BAD_CASES) {
    const extraArgs = [...(c.strict ? [] : ["--strict-reconfig-check=false"]), ...timingArgs(args)];
    const r = await withCluster(kind, c.members, { extraArgs }, (cl) => badAdd(cl.name, cl, c, s));
    outcomes.push({ ...r.outcome, name: `${r.outcome.name} ${c.name}` });
    if (r.value !== undefined) bads.push(r.value);
  }
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const quick = args.get("quick") === "true";
  const modes = (args.get("modes") ?? "learner,voter").split(",");
  for (const m of modes)
    if (m !== "learner" && m !== "voter")
      throw new Error(`--modes takes learner and/or voter, got ${JSON.stringify(m)}`);
  const s: Settings = {
    keys: num(args, "keys", quick ? 2_000 : 50_000),
    valueBytes: num(args, "value-size", 2048),
    writers: num(args, "writers", 8),
    baselineS: num(args, "baseline-s", quick ? 1 : 5),
    afterS: num(args, "after-s", quick ? 1 : 3),
    promoteEveryMs: num(args, "promote-every-ms", 100),
    giveUpS: num(args, "give-up-s", 300),
    badWindowS: num(args, "bad-window-s", quick ? 3 : 6),
    modes: modes as ("learner" | "voter")[],
  };
  const dir = clusterResultsDir("cluster-learner", args);
  const startedAt = new Date().toISOString();
  const joins: JoinRow[] = [];
  const bads: BadUrlRow[] = [];
  const outcomes: TargetOutcome[] = [];
  for (const kind of clusterKinds(args)) await runKind(kind, args, s, joins, bads, outcomes);
  writeRun(dir, "learner.csv", joins as unknown as Record<string, unknown>[], {
    experiment: "cluster-learner",
    argv,
    targets: outcomes,
    settings: s,
    startedAt,
    notes: [
      "learner.csv: one row per target × join mode; bad_url.csv: one row per target × bad-URL case.",
      "in_sync_ms: learner — MemberAdd → MemberPromote succeeded (retried every promote-every-ms); voter — MemberAdd → the new member's Status raftIndex ≥ the leader's.",
      "write gap/P99 'before' is the baseline window just before MemberAdd; 'during' MemberAdd → in sync; leader_changes: max delta over the 3 original members.",
    ],
  });
  writeFileSync(
    join(dir, "bad_url.csv"),
    stringify(bads as unknown as Record<string, unknown>[], {
      header: true,
      columns: Object.keys(bads[0] ?? { target: "" }),
    }),
  );
  for (const o of outcomes) if (!o.available) console.log(`${o.name}: not measured — ${o.reason ?? ""}`);
  for (const j of joins)
    console.log(
      `${j.target} ${j.mode} join (${j.keys} keys): serving ${j.member_serving_ms} ms, in sync/promoted ${j.in_sync_ms} ms, leader changes ${j.leader_changes}, write P99 ${j.write_p99_before_ms} → ${j.write_p99_during_ms} ms, longest gap ${j.write_gap_before_ms} → ${j.write_gap_during_ms} ms`,
    );
  for (const b of bads)
    console.log(
      `${b.target} ${b.case}: add ${b.add_result}; writes ${b.writes_ok} ok / ${b.writes_failed} failed (${b.write_errors}); remove ${b.remove_result}`,
    );
  return dir;
}
