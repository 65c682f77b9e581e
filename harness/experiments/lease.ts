// `npm run bench -- lease`: the lease claims, over the wire, side by side on real etcd and etcd-ts.
// 1. grant: N leases (default 100,000), one key attached to each (grant + put with the lease), 64 at a time;
//    memory per lease from the server's process_resident_memory_bytes (its /metrics on the client URL).
// 2. keepalive: raw LeaseKeepAlive streams renewing those leases round-robin, a window of requests in flight
//    per stream: renewals per second and their latency.
// 3. TimeToLive P99 idle vs while 10,000 of the leases are being revoked (revokes 64 at a time).
// 4. mass expiry: M more leases with keys, all refreshed in one keepalive burst so they expire within the
//    burst's duration; then closed-loop puts until every key is gone: time until all gone, put P99 during the
//    expiry vs idle (the target: ≤ 2× idle).
// A target whose Lease API fails gets its errors counted in summary.csv and its later phases skipped with the
// reason; nothing is estimated or filled in.
import { performance } from "node:perf_hooks";
import type * as grpc from "@grpc/grpc-js";
import type * as pb from "../../core/api/proto/types.js";
import { errorCode, toClientError, type EtcdClient } from "../../core/client/index.js";
import type { Recorder } from "../metrics.js";
import { renderReport } from "../report.js";
import { runDir, writeResults } from "../results.js";
import { envTargets, forEachTarget, num, parseArgs, printTable } from "./common.js";
import { ratioClaims, targetClaims } from "./lease_claims.js";

const KEY_PREFIX = "/bench/lease/key/";
const EXPIRY_PREFIX = "/bench/lease/expiring/";
/** TTL of the leases of phases 1–3: long enough never to expire during a run. */
const LONG_TTL_SECONDS = 3600;
/** A phase stops sending once this many calls failed and none succeeded (an unimplemented Lease API). */
const GIVE_UP_AFTER_ERRORS = 100;
const POLL_INTERVAL_MS = 250;

export interface LeaseSettings {
  readonly leases: number;
  readonly revoke: number;
  readonly expiryLeases: number;
  readonly seconds: number;
  readonly concurrency: number;
  readonly streams: number;
  readonly window: number;
  readonly readers: number;
  readonly writers: number;
}

/** What one target measured beyond the latency histograms (env.json `detail`, and the claims). */
export interface LeaseDetail {
  skipped?: string | undefined;
  leasesGranted?: number | undefined;
  grantSeconds?: number | undefined;
  rssBeforeBytes?: number | undefined;
  rssAfterBytes?: number | undefined;
  bytesPerLease?: number | undefined;
  keepaliveResponses?: number | undefined;
  keepaliveSeconds?: number | undefined;
  revoked?: number | undefined;
  revokeSeconds?: number | undefined;
  expiry?: ExpiryDetail | undefined;
}

export interface ExpiryDetail {
  readonly leases: number;
  readonly ttlSeconds: number;
  /** Seconds the refresh burst took: the spread of the expiries. */
  readonly refreshSeconds: number;
  /** Keys present when the expiry window opened (leases that expired early are already gone). */
  readonly keysAtExpiry: number;
  /** Seconds from the last lease's expiry (refresh end + TTL) until no key was left; undefined if some never went. */
  readonly allGoneAfterLastExpiryS: number | undefined;
  readonly keysLeft: number;
  readonly countSamples: readonly (readonly [number, number])[];
}

type Clock = () => number;

/** Runs `fn(i)` for i < n with `concurrency` workers; gives up when the first GIVE_UP_AFTER_ERRORS all failed. */
async function pool(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<boolean>,
): Promise<{ ok: number; failed: number }> {
  let next = 0;
  const c = { ok: 0, failed: 0 };
  await Promise.all(
    Array.from({ length: Math.max(0, Math.min(concurrency, n)) }, async () => {
      while (next < n && !(c.ok === 0 && c.failed >= GIVE_UP_AFTER_ERRORS)) {
        if (await fn(next++)) c.ok++;
        else c.failed++;
      }
    }),
  );
  return c;
}

/** Times one call into `rec`; the error (if any) is counted by its stable code. */
async function timed<T>(
  rec: Recorder,
  clock: Clock,
  at: { phase: string; verb: string; resource: string },
  fn: () => Promise<T>,
): Promise<T | undefined> {
  const start = clock();
  try {
    const v = await fn();
    rec.record(at.phase, at.verb, at.resource, { intendedS: start, sentS: start, doneS: clock() });
    return v;
  } catch (err) {
    rec.record(
      at.phase,
      at.verb,
      at.resource,
      { intendedS: start, sentS: start, doneS: clock() },
      { errorCode: errorCode(err) },
    );
    return undefined;
  }
}

/** process_resident_memory_bytes from the server's /metrics (etcd serves it on the client URL), if reachable. */
async function residentBytes(endpoint: string): Promise<number | undefined> {
  try {
    const res = await fetch(`http://${endpoint.replace(/^https?:\/\//, "")}/metrics`, {
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) return undefined;
    const m = /^process_resident_memory_bytes\s+(\S+)$/m.exec(await res.text());
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Grants n leases and puts one key with each; returns the ids of leases whose key was written, and the largest TTL granted. */
async function grantWithKeys(
  client: EtcdClient,
  rec: Recorder,
  clock: Clock,
  o: { n: number; concurrency: number; ttl: number; prefix: string; phase: string; resource: string },
): Promise<{ ids: bigint[]; ttlSeconds: number }> {
  const ids: bigint[] = [];
  let ttlSeconds = 0;
  const value = Buffer.alloc(64, "l");
  await pool(o.n, o.concurrency, async (i) => {
    const g = await timed(rec, clock, { phase: o.phase, verb: "grant", resource: o.resource }, () =>
      client.leaseGrant(o.ttl),
    );
    if (g === undefined) return false;
    ttlSeconds = Math.max(ttlSeconds, Number(g.ttlSeconds));
    const key = `${o.prefix}${String(i).padStart(7, "0")}`;
    const put = await timed(rec, clock, { phase: o.phase, verb: "put", resource: o.resource }, () =>
      client.put(key, value, { lease: g.id }),
    );
    if (put !== undefined) ids.push(g.id);
    return put !== undefined;
  });
  return { ids, ttlSeconds };
}

interface StreamOptions {
  readonly window: number;
  /** Renew each id once (the refresh burst) instead of cycling until `untilS`. */
  readonly once: boolean;
  readonly untilS: number;
  /** Give up on requests still unanswered at this time (counted as TIMEOUT errors). */
  readonly hardDeadlineS: number;
  readonly clock: Clock;
  readonly record: (sentS: number, errorCode?: string) => void;
}

type KeepAliveStream = grpc.ClientDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse__Output>;

/** One raw LeaseKeepAlive stream renewing ids[first], ids[first+step], … with `window` requests in flight. */
function keepAliveStream(
  client: EtcdClient,
  ids: readonly bigint[],
  first: number,
  step: number,
  o: StreamOptions,
): Promise<void> {
  return new Promise((resolve) => {
    const { client: svc, endpoint } = client.connection.service("Lease");
    const stream = (svc as unknown as { LeaseKeepAlive(): KeepAliveStream }).LeaseKeepAlive();
    const sentAt = new Map<string, number[]>();
    let next = first;
    let outstanding = 0;
    let finished = false;
    const finish = (errCode?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (errCode !== undefined) for (const q of sentAt.values()) for (const s of q) o.record(s, errCode);
      stream.cancel();
      resolve();
    };
    const timer = setTimeout(() => finish("TIMEOUT"), Math.max(0, (o.hardDeadlineS - o.clock()) * 1000));
    const send = (): void => {
      while (
        !finished &&
        outstanding < o.window &&
        (o.once ? next < ids.length : o.clock() < o.untilS && ids.length > 0)
      ) {
        const id = ids[next % ids.length]!.toString();
        next += step;
        const q = sentAt.get(id) ?? [];
        q.push(o.clock());
        sentAt.set(id, q);
        outstanding++;
        stream.write({ ID: id });
      }
      if (outstanding === 0) finish();
    };
    stream.on("data", (res: pb.LeaseKeepAliveResponse__Output) => {
      const q = sentAt.get(res.ID);
      const s = q?.shift() ?? o.clock();
      if (q !== undefined && q.length === 0) sentAt.delete(res.ID);
      outstanding--;
      o.record(s, BigInt(res.TTL) > 0n ? undefined : "LEASE_NOT_FOUND");
      send();
    });
    stream.on("error", (err: unknown) => finish(errorCode(toClientError(err, endpoint))));
    stream.on("end", () => finish("STREAM_ENDED"));
    send();
  });
}

/** `streams` raw keepalive streams over ids; returns the responses that renewed a lease. */
async function keepAlive(
  client: EtcdClient,
  rec: Recorder,
  ids: readonly bigint[],
  s: LeaseSettings,
  o: { phase: string; once: boolean; untilS: number; hardDeadlineS: number; clock: Clock },
): Promise<number> {
  let ok = 0;
  const record = (sentS: number, code?: string): void => {
    if (code === undefined) ok++;
    const t = { intendedS: sentS, sentS, doneS: o.clock() };
    rec.record(o.phase, "keepalive", "lease", t, code === undefined ? {} : { errorCode: code });
  };
  const n = Math.max(1, s.streams);
  await Promise.all(
    Array.from({ length: n }, (_, k) => keepAliveStream(client, ids, k, n, { ...o, window: s.window, record })),
  );
  return ok;
}

/** Loops TimeToLive on random ids from `live` with `readers` callers until `stop()` says so. */
async function timeToLiveLoop(
  client: EtcdClient,
  rec: Recorder,
  clock: Clock,
  live: readonly bigint[],
  readers: number,
  phase: string,
  stop: () => boolean,
): Promise<void> {
  await Promise.all(
    Array.from({ length: readers }, async () => {
      while (!stop() && live.length > 0) {
        const id = live[Math.floor(Math.random() * live.length)]!;
        await timed(rec, clock, { phase, verb: "timetolive", resource: "lease" }, () => client.leaseTimeToLive(id));
      }
    }),
  );
}

/** Phase 3: TimeToLive idle for `seconds`, then while the first `revoke` ids are revoked. */
async function ttlDuringRevoke(
  client: EtcdClient,
  rec: Recorder,
  clock: Clock,
  ids: readonly bigint[],
  s: LeaseSettings,
  d: LeaseDetail,
): Promise<void> {
  const revokeCount = Math.min(s.revoke, Math.floor(ids.length / 2));
  const doomed = ids.slice(0, revokeCount);
  const live = ids.slice(revokeCount);
  const idleEnd = clock() + s.seconds;
  await timeToLiveLoop(client, rec, clock, live, s.readers, "ttl-idle", () => clock() >= idleEnd);
  let done = false;
  const start = clock();
  const readers = timeToLiveLoop(client, rec, clock, live, s.readers, "ttl-revoking", () => done);
  const res = await pool(
    doomed.length,
    s.concurrency,
    async (i) =>
      (await timed(rec, clock, { phase: "ttl-revoking", verb: "revoke", resource: "lease" }, () =>
        client.leaseRevoke(doomed[i]!),
      )) !== undefined,
  );
  d.revokeSeconds = round(clock() - start);
  done = true;
  await readers;
  d.revoked = res.ok;
}

/** Closed-loop puts by `writers` callers until `stop()`; the phase of each op is chosen when it starts. */
async function writeLoop(
  client: EtcdClient,
  rec: Recorder,
  clock: Clock,
  writers: number,
  phaseAt: (s: number) => string,
  stop: () => boolean,
): Promise<void> {
  const value = Buffer.alloc(256, "w");
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; !stop(); i++) {
        const phase = phaseAt(clock());
        await timed(rec, clock, { phase, verb: "put", resource: "kv" }, () =>
          client.put(`/bench/lease/writer/${w}-${i % 100}`, value),
        );
      }
    }),
  );
}

async function countKeys(client: EtcdClient, prefix: string): Promise<number | undefined> {
  try {
    return Number((await client.get(prefix, { prefix: true, countOnly: true })).count);
  } catch {
    return undefined;
  }
}

/** Polls the expiring keys until none is left (or the deadline); returns [second, count] samples. */
async function pollUntilGone(
  client: EtcdClient,
  clock: Clock,
  notBeforeS: number,
  deadlineS: number,
): Promise<{ samples: [number, number][]; goneAtS: number | undefined; left: number }> {
  const samples: [number, number][] = [];
  let left = -1;
  while (clock() < deadlineS) {
    const n = await countKeys(client, EXPIRY_PREFIX);
    if (n !== undefined) {
      left = n;
      samples.push([round(clock()), n]);
      if (n === 0 && clock() >= notBeforeS) return { samples, goneAtS: clock(), left: 0 };
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
  return { samples, goneAtS: undefined, left };
}

/** Phase 4: idle put P99, then M leases granted, refreshed in one burst, and puts until their keys are gone. */
async function massExpiry(
  client: EtcdClient,
  rec: Recorder,
  clock: Clock,
  s: LeaseSettings,
  grantRatePerS: number,
): Promise<ExpiryDetail | string> {
  const idleEnd = clock() + s.seconds;
  await writeLoop(
    client,
    rec,
    clock,
    s.writers,
    () => "expiry-idle",
    () => clock() >= idleEnd,
  );
  // Long enough that every lease is granted before the first one expires; the burst then lines them up.
  const asked = Math.ceil((s.expiryLeases / Math.max(1, grantRatePerS)) * 1.5) + 3;
  const { ids, ttlSeconds: ttl } = await grantWithKeys(client, rec, clock, {
    n: s.expiryLeases,
    concurrency: s.concurrency,
    ttl: asked,
    prefix: EXPIRY_PREFIX,
    phase: "expiry-grant",
    resource: "expiring-lease",
  });
  if (ids.length === 0) return "no expiring lease could be granted";
  const burstStart = clock();
  await keepAlive(client, rec, ids, s, {
    phase: "expiry-refresh",
    once: true,
    untilS: Infinity,
    hardDeadlineS: burstStart + ttl,
    clock,
  });
  const burstEnd = clock();
  const firstExpiryS = burstStart + ttl;
  const lastExpiryS = burstEnd + ttl;
  // Writers start one second before the first expiry (sooner would only burn CPU while nothing happens).
  await new Promise((r) => setTimeout(r, Math.max(0, (firstExpiryS - 1 - clock()) * 1000)));
  let stop = false;
  const writers = writeLoop(
    client,
    rec,
    clock,
    s.writers,
    (t) => (t < firstExpiryS ? "expiry-before" : "expiry-during"),
    () => stop,
  );
  const deadline = lastExpiryS + 60 + s.expiryLeases / 250;
  const before = await countAt(client, clock, firstExpiryS);
  const poll = await pollUntilGone(client, clock, lastExpiryS, deadline);
  stop = true;
  await writers;
  return {
    leases: ids.length,
    ttlSeconds: ttl,
    refreshSeconds: round(burstEnd - burstStart),
    keysAtExpiry: before,
    allGoneAfterLastExpiryS: poll.goneAtS === undefined ? undefined : round(Math.max(0, poll.goneAtS - lastExpiryS)),
    keysLeft: poll.left,
    countSamples: poll.samples,
  };
}

/** Waits until `atS`, then counts the expiring keys (the count the expiry starts from). */
async function countAt(client: EtcdClient, clock: Clock, atS: number): Promise<number> {
  const waitMs = (atS - clock()) * 1000;
  if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
  return (await countKeys(client, EXPIRY_PREFIX)) ?? -1;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** All four phases against one target; later phases are skipped (with the reason) when leases cannot be granted. */
export async function measureTarget(client: EtcdClient, rec: Recorder, s: LeaseSettings): Promise<LeaseDetail> {
  const t0 = performance.now();
  const clock: Clock = () => (performance.now() - t0) / 1000;
  const d: LeaseDetail = {};
  const endpoint = client.connection.service("Lease").endpoint;
  d.rssBeforeBytes = await residentBytes(endpoint);
  const g0 = clock();
  const { ids } = await grantWithKeys(client, rec, clock, {
    n: s.leases,
    concurrency: s.concurrency,
    ttl: LONG_TTL_SECONDS,
    prefix: KEY_PREFIX,
    phase: "grant",
    resource: "lease",
  });
  d.grantSeconds = round(clock() - g0);
  d.leasesGranted = ids.length;
  if (ids.length === 0)
    return { ...d, skipped: "no lease could be granted; keepalive, timetolive and expiry not measured" };
  d.rssAfterBytes = await residentBytes(endpoint);
  if (d.rssBeforeBytes !== undefined && d.rssAfterBytes !== undefined)
    d.bytesPerLease = Math.round((d.rssAfterBytes - d.rssBeforeBytes) / ids.length);
  const k0 = clock();
  const kaEnd = k0 + s.seconds;
  d.keepaliveResponses = await keepAlive(client, rec, ids, s, {
    phase: "keepalive",
    once: false,
    untilS: kaEnd,
    hardDeadlineS: kaEnd + 30,
    clock,
  });
  d.keepaliveSeconds = round(clock() - k0);
  await ttlDuringRevoke(client, rec, clock, ids, s, d);
  const expiry = await massExpiry(client, rec, clock, s, ids.length / Math.max(0.001, d.grantSeconds));
  if (typeof expiry === "string") d.skipped = expiry;
  else d.expiry = expiry;
  return d;
}

export function settingsFrom(args: Map<string, string>): LeaseSettings {
  const leases = num(args, "leases", 100_000);
  return {
    leases,
    revoke: num(args, "revoke", Math.min(10_000, leases)),
    expiryLeases: num(args, "expiry-leases", leases),
    seconds: num(args, "seconds", 10),
    concurrency: num(args, "concurrency", 64),
    streams: num(args, "streams", 8),
    window: num(args, "window", 64),
    readers: num(args, "readers", 4),
    writers: num(args, "writers", 8),
  };
}

export async function run(argv: string[]): Promise<string> {
  const args = parseArgs(argv);
  const s = settingsFrom(args);
  const targets = (args.get("targets") ?? "etcd,etcd-ts").split(",");
  const dir = runDir("lease", args.get("results"));
  const startedAt = new Date().toISOString();
  const runs = await forEachTarget(targets, (client, rec, name) => {
    console.error(
      `${name}: ${s.leases} leases with keys, keepalive ${s.seconds} s, TimeToLive during ${s.revoke} revokes, expiry of ${s.expiryLeases}`,
    );
    return measureTarget(client, rec, s);
  });
  const recorders = runs.flatMap((r) => (r.recorder === undefined ? [] : [r.recorder]));
  const env = {
    experiment: "lease",
    startedAt,
    args: argv,
    settings: s,
    targets: envTargets(runs),
    focus: [
      { verb: "put", resource: "kv" },
      { verb: "timetolive", resource: "lease" },
      { verb: "keepalive", resource: "lease" },
    ],
    notes: [
      `${s.leases} leases (TTL ${LONG_TTL_SECONDS} s) with one 64 B key each, granted ${s.concurrency} at a time; keepalive over ${s.streams} raw streams × ${s.window} in flight for ${s.seconds} s.`,
      `TimeToLive by ${s.readers} readers: ${s.seconds} s idle, then while ${s.revoke} leases are revoked ${s.concurrency} at a time.`,
      `Mass expiry: ${s.expiryLeases} more leases refreshed in one keepalive burst; ${s.writers} closed-loop writers of 256 B values, idle ${s.seconds} s, then until every key is gone.`,
      ...runs.filter((r) => !r.available).map((r) => `${r.name}: not available — ${r.reason ?? ""}`),
      ...runs.flatMap((r) =>
        (r.detail as LeaseDetail | undefined)?.skipped === undefined
          ? []
          : [`${r.name}: ${(r.detail as LeaseDetail).skipped}`],
      ),
    ],
  };
  const rows = writeResults(dir, recorders, [], env);
  writeResults(dir, recorders, [...runs.flatMap((r) => targetClaims(r, rows, s)), ...ratioClaims(runs)], env);
  printTable(rows);
  return renderReport(dir);
}
