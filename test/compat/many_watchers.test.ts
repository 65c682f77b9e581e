// Proves one gRPC Watch stream can hold 100,000 watches on etcd-ts as on real etcd 3.4 (etcd sets no per-stream
// limit): every watch is created, one put reaches each exactly once, cancelling them all answers 100,000
// cancellations and leaves no watcher on the member (etcd_debugging_mvcc_watcher_total back to 0), the member's
// resident memory stays within a bound per watch, its /metrics answers within 5 s throughout, and it still serves
// afterwards. Real etcd runs the same steps for comparison; the timings and memory figures of both are printed.
// Minutes of work: SOAK=1 only (the normal suite holds 10,000 watches on one stream in bad_input.test.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import type * as pb from "../../core/api/proto/types.js";
import { EtcdClient } from "../../core/client/index.js";
import { memberPorts, residentBytes, startMember, type MemberProcess } from "./member_process.js";
import { haveEtcd } from "./processes.js";

const N = 100_000;
/** Resident memory a watch may cost at the peak, all of the stream's buffering included. */
const MAX_BYTES_PER_WATCH = 8 * 1024;
const MiB = 1024 * 1024;

const dirs: string[] = [];
const running: MemberProcess[] = [];
afterAll(async () => {
  for (const m of running.splice(0)) await m.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function watcherTotal(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  if (m === null) throw new Error("no etcd_debugging_mvcc_watcher_total in /metrics");
  return Number(m[1]);
}

type WatchStream = grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse>;

/** One Watch stream and what came back on it, with a wait for a condition on it. */
function openStream(c: EtcdClient): {
  stream: WatchStream;
  ids: string[];
  events: Map<string, number>;
  canceled: () => number;
  until: (done: () => boolean, what: string) => Promise<void>;
} {
  const { client: watchClient } = c.connection.service("Watch");
  const stream = (watchClient as unknown as { Watch(): WatchStream }).Watch.call(watchClient);
  const ids: string[] = [];
  const events = new Map<string, number>();
  let canceled = 0;
  let wake: () => void = () => undefined;
  let failure: Error | undefined;
  stream.on("data", (res: pb.WatchResponse__Output) => {
    if (res.created) ids.push(res.watch_id);
    if (res.canceled) canceled++;
    if (res.events.length > 0) events.set(res.watch_id, (events.get(res.watch_id) ?? 0) + res.events.length);
    wake();
  });
  stream.on("error", (err: Error) => {
    failure = err;
    wake();
  });
  const until = async (done: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 300_000;
    while (!done()) {
      if (failure !== undefined) throw failure;
      if (Date.now() > deadline) throw new Error(`${what} not reached in 300 s`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1_000);
      });
    }
  };
  return { stream, ids, events, canceled: () => canceled, until };
}

/** Writes every request, waiting for the stream to drain whenever its buffer is full. */
async function writeAll(stream: WatchStream, reqs: Iterable<pb.WatchRequest>): Promise<void> {
  for (const r of reqs) {
    if (!stream.write(r)) await new Promise<void>((resolve) => stream.once("drain", () => resolve()));
  }
}

function* times<T>(n: number, f: (i: number) => T): Iterable<T> {
  for (let i = 0; i < n; i++) yield f(i);
}

const mib = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;

/** Longest wait for /metrics while the probe ran; a request unanswered in 5 s counts as the failure it is. */
const METRICS_DEADLINE_MS = 5_000;

/** Asks the member for /metrics once a second until stopped; returns the slowest answer's time in ms. */
function probeMetrics(endpoint: string): { stop: () => Promise<number> } {
  let running = true;
  let slowest = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await (await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(METRICS_DEADLINE_MS) })).text();
        slowest = Math.max(slowest, performance.now() - t0);
      } catch {
        slowest = Math.max(slowest, METRICS_DEADLINE_MS);
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return slowest;
    },
  };
}

describe.runIf(process.env["SOAK"] === "1" && haveEtcd())("100,000 watches on one Watch stream", () => {
  for (const kind of ["etcd-ts", "etcd"] as const) {
    it(`${kind}: creates them, delivers one put to each, cancels them, and stays bounded`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `etcd-ts-watchers-${kind}-`));
      dirs.push(dir);
      const member = await startMember(kind, join(dir, "data"), await memberPorts());
      running.push(member);
      const c = new EtcdClient({ endpoints: [member.endpoint], callTimeoutMs: 120_000 });
      await c.put("watched", "before");
      const idle = residentBytes(member.pid).rss;
      const probe = probeMetrics(member.endpoint);
      const started = performance.now();

      const s = openStream(c);
      await writeAll(
        s.stream,
        times(N, () => ({ create_request: { key: Buffer.from("watched") } })),
      );
      await s.until(() => s.ids.length + s.canceled() >= N, `${N} created`);
      const createdAfter = (performance.now() - started) / 1000;
      const created = residentBytes(member.pid).rss;
      expect([s.ids.length, s.canceled(), new Set(s.ids).size]).toEqual([N, 0, N]);
      expect(await watcherTotal(member.endpoint)).toBe(N);

      await c.put("watched", "fired");
      await s.until(() => s.events.size >= N, `an event on each of ${N} watches`);
      const deliveredAfter = (performance.now() - started) / 1000;
      expect([...s.events.values()].every((n) => n === 1)).toBe(true);

      await writeAll(
        s.stream,
        s.ids.map((id) => ({ cancel_request: { watch_id: id } })),
      );
      await s.until(() => s.canceled() >= N, `${N} cancellations`);
      const canceledAfter = (performance.now() - started) / 1000;
      expect(await watcherTotal(member.endpoint)).toBe(0);
      const mem = residentBytes(member.pid);
      const slowestMetricsMs = await probe.stop();
      s.stream.cancel();

      await c.put("still/up", "yes");
      expect((await c.get("still/up")).kvs[0]?.value.toString()).toBe("yes");
      const figures = {
        idle: mib(idle),
        created: mib(created),
        afterCancel: mib(mem.rss),
        peak: mib(mem.peak),
        bytesPerWatchAtPeak: Math.round((mem.peak - idle) / N),
        slowestMetricsMs: Math.round(slowestMetricsMs),
        seconds: {
          created: createdAfter.toFixed(1),
          delivered: deliveredAfter.toFixed(1),
          canceled: canceledAfter.toFixed(1),
        },
      };
      console.log(`${kind}, ${N} watches on one stream:`, JSON.stringify(figures));
      expect(mem.peak - idle, `peak resident growth of ${kind}`).toBeLessThan(N * MAX_BYTES_PER_WATCH);
      expect(slowestMetricsMs, `slowest /metrics answer of ${kind}`).toBeLessThan(METRICS_DEADLINE_MS);
      c.close();
      running.splice(running.indexOf(member), 1);
      await member.stop();
    }, 900_000);
  }
});
