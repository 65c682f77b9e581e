// The lease experiment's claims (summary.csv's claim rows): per target what the four phases measured, against
// the seed figures where there are any, and etcd-ts ÷ etcd for the throughputs when both targets ran.
import type { ClaimRow, writeResults } from "../results.js";
import { pct, type TargetRun } from "./common.js";
import type { LeaseDetail, LeaseSettings } from "./lease.js";

type Rows = ReturnType<typeof writeResults>;

function rate(count: number | undefined, seconds: number | undefined): number | undefined {
  return count === undefined || seconds === undefined || !(seconds > 0) ? undefined : Math.round(count / seconds);
}

/** One target's claim rows from its detail and summary rows. */
export function targetClaims(r: TargetRun, rows: Rows, s: LeaseSettings): ClaimRow[] {
  const d = (r.detail ?? {}) as LeaseDetail;
  const row = (phase: string, verb: string) =>
    rows.find((x) => x.target === r.name && x.phase === phase && x.verb === verb);
  const na = r.available ? (d.skipped ?? "not measured") : `not available: ${r.reason ?? ""}`;
  const claim = (name: string, seed: string, value: string | undefined, note = ""): ClaimRow => ({
    claim: name,
    seed_value: seed,
    target: r.name,
    measured_value: value ?? na,
    note,
  });
  const grantErr = row("grant", "grant")?.errors_by_code;
  const ttlIdle = row("ttl-idle", "timetolive"),
    ttlBusy = row("ttl-revoking", "timetolive");
  const putIdle = row("expiry-idle", "put"),
    putBusy = row("expiry-during", "put");
  const e = d.expiry;
  return [
    claim(
      `grant ${s.leases} leases with one key each`,
      "(no seed figure)",
      d.leasesGranted === undefined || d.leasesGranted === 0
        ? undefined
        : `${d.leasesGranted} in ${d.grantSeconds} s (${rate(d.leasesGranted, d.grantSeconds)} leases+keys/s)`,
      grantErr ? `errors: ${grantErr}` : "",
    ),
    claim(
      "memory per lease (RSS growth / leases, key included)",
      "(no seed figure)",
      d.bytesPerLease === undefined ? undefined : `${d.bytesPerLease} B`,
      "process_resident_memory_bytes before/after the grants; includes the key and allocator slack",
    ),
    claim(
      "keepalive throughput",
      "(no seed figure)",
      d.keepaliveResponses === undefined ? undefined : `${rate(d.keepaliveResponses, d.keepaliveSeconds)} renewals/s`,
      `${s.streams} streams × ${s.window} in flight`,
    ),
    claim(
      `TimeToLive P99 while ${d.revoked ?? s.revoke} leases are revoked`,
      "lookups do not block on revokes (seed)",
      ttlIdle && ttlBusy
        ? `${ttlIdle.p99_ms} → ${ttlBusy.p99_ms} ms (${pct(ttlIdle.p99_ms, ttlBusy.p99_ms)})`
        : undefined,
      d.revokeSeconds === undefined ? "" : `revokes took ${d.revokeSeconds} s`,
    ),
    claim(
      `mass expiry of ${e?.leases ?? s.expiryLeases} leases: time until all keys gone`,
      "bounded",
      e === undefined
        ? undefined
        : e.allGoneAfterLastExpiryS === undefined
          ? `${e.keysLeft} keys left at the deadline`
          : `${e.allGoneAfterLastExpiryS} s after the last expiry`,
      e === undefined
        ? ""
        : `TTL ${e.ttlSeconds} s, expiries spread over ${e.refreshSeconds} s, ${e.keysAtExpiry} keys when expiry began`,
    ),
    claim(
      "P99 put during mass expiry vs idle",
      "≤ 2× idle",
      putIdle && putBusy
        ? `${putIdle.p99_ms} → ${putBusy.p99_ms} ms (${(putBusy.p99_ms / Math.max(0.001, putIdle.p99_ms)).toFixed(2)}×)`
        : undefined,
      putBusy ? `max ${putBusy.max_ms} ms over ${putBusy.count} puts` : "",
    ),
  ];
}

/** etcd-ts ÷ etcd for the throughputs, when both ran. */
export function ratioClaims(runs: readonly TargetRun[]): ClaimRow[] {
  const etcd = runs.find((r) => r.name === "etcd" && r.available)?.detail as LeaseDetail | undefined;
  const out: ClaimRow[] = [];
  for (const r of runs.filter((x) => x.name.startsWith("etcd-ts"))) {
    const d = r.detail as LeaseDetail | undefined;
    const pairs: [string, number | undefined, number | undefined][] = [
      ["grant throughput", rate(d?.leasesGranted, d?.grantSeconds), rate(etcd?.leasesGranted, etcd?.grantSeconds)],
      [
        "keepalive throughput",
        rate(d?.keepaliveResponses, d?.keepaliveSeconds),
        rate(etcd?.keepaliveResponses, etcd?.keepaliveSeconds),
      ],
    ];
    for (const [name, ours, theirs] of pairs) {
      const both = ours !== undefined && ours > 0 && theirs !== undefined && theirs > 0;
      out.push({
        claim: `${name}, etcd-ts ÷ etcd`,
        seed_value: "(ratio)",
        target: r.name,
        measured_value: both ? `${(ours / theirs).toFixed(2)}× (${ours} vs ${theirs}/s)` : "not available",
        note: both ? "" : "needs both targets measured",
      });
    }
  }
  return out;
}
