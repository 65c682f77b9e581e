// Proves one etcd-ts member survives `etcdctl check perf` (the real etcdctl 3.4): etcdctl runs its load for 60 s,
// deletes its prefix (/etcdctl-check-perf/, every key it wrote, in one DeleteRange) and reaches its verdict (PASS or
// FAIL both count: the verdict is about speed, this is about surviving); the member still answers, nothing is left
// under the prefix, and after a restart on the same data dir it serves the same revision with the same HashKV.
// --load=s runs always; --load=m and --load=l (200 and 500 clients, up to 480,000 keys) only with SOAK=1.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { etcdctlAsync, memberPorts, startMember, type MemberProcess } from "./member_process.js";
import { haveEtcd } from "./processes.js";

const PREFIX = "/etcdctl-check-perf/";
/** etcdctl's rate limit per load: a run that wrote under a tenth of 60 s of it did not really load the member. */
const RATE = { s: 150, m: 1000, l: 8000 } as const;
type Load = keyof typeof RATE;
const LOADS: readonly Load[] = process.env["SOAK"] === "1" ? ["s", "m", "l"] : ["s"];

const dirs: string[] = [];
const running: MemberProcess[] = [];
afterAll(async () => {
  for (const m of running.splice(0)) await m.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function keysUnderPrefix(c: EtcdClient): Promise<bigint> {
  return (await c.get(PREFIX, { prefix: true, countOnly: true })).count;
}

/** The member's revision and its HashKV there. */
async function settled(c: EtcdClient): Promise<{ revision: bigint; hash: number }> {
  const revision = (await c.status()).header.revision;
  return { revision, hash: (await c.maintenance.hashKV(revision)).hash };
}

describe.runIf(haveEtcd())("etcdctl check perf against one etcd-ts member", () => {
  for (const load of LOADS) {
    it(`--load=${load}: reaches its verdict, deletes its keys, and the member restarts with the same state`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `etcd-ts-checkperf-${load}-`));
      dirs.push(dir);
      const ports = await memberPorts();
      const first = await startMember("etcd-ts", join(dir, "data"), ports);
      running.push(first);
      const client = new EtcdClient({ endpoints: [first.endpoint], callTimeoutMs: 120_000 });
      const before = (await client.status()).header.revision;

      const run = await etcdctlAsync(first.endpoint, ["check", "perf", `--load=${load}`], 240_000);
      // etcdctl draws a progress bar with carriage returns; the verdict is on the last line.
      const lines = run.stdout.trim().split(/[\r\n]+/);
      const verdict = lines[lines.length - 1]?.trim();
      console.log(
        `check perf --load=${load}: ${verdict} after ${run.seconds.toFixed(1)} s (exit ${run.status}); ` +
          lines.filter((l) => l.startsWith("PASS:") || l.startsWith("FAIL:") || l.includes("took")).join("; ") +
          run.stderr
            .split("\n")
            .filter((l) => l.startsWith("Error"))
            .join("; "),
      );
      // Soft: whether or not etcdctl got its verdict, the member must survive and keep its state.
      expect
        .soft(["PASS", "FAIL"], `etcdctl output: ${run.stdout.slice(-2000)}\n${run.stderr}\n${first.stderrTail()}`)
        .toContain(verdict);

      const answering = performance.now();
      const after = await settled(client);
      console.log(`--load=${load}: the member answered ${((performance.now() - answering) / 1000).toFixed(1)} s later`);
      expect(after.revision - before, "revisions check perf's puts made").toBeGreaterThan(BigInt(RATE[load] * 6));
      expect(await keysUnderPrefix(client)).toBe(0n);
      client.close();
      running.splice(running.indexOf(first), 1);
      expect(await first.stop(), "a clean stop dies of its own SIGTERM, not the SIGKILL after 20 s").toBe("SIGTERM");

      const second = await startMember("etcd-ts", join(dir, "data"), ports);
      running.push(second);
      const again = new EtcdClient({ endpoints: [second.endpoint], callTimeoutMs: 60_000 });
      expect(await settled(again)).toEqual(after);
      expect(await keysUnderPrefix(again)).toBe(0n);
      await again.put("after/restart", "ok");
      expect((await again.get("after/restart")).kvs[0]?.value.toString()).toBe("ok");
      again.close();
      running.splice(running.indexOf(second), 1);
      await second.stop();
    }, 420_000);
  }
});
