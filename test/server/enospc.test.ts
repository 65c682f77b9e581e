// Proves a member whose data dir fills up (a real, small tmpfs) stops with a clear "no space left on device" line
// and exit status 1 instead of limping on, and that once the space is freed (the tmpfs grown) it restarts
// cleanly with every acknowledged write. Needs root to mount the tmpfs; skipped (and reported so) otherwise.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import { ServerProcess } from "../../harness/targets/launcher.js";
import { REPO, freePort } from "../compat/processes.js";

const mnt = mkdtempSync(join(tmpdir(), "etcd-ts-enospc-"));
const mounted =
  process.getuid?.() === 0 && spawnSync("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt]).status === 0;
const procs: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  if (mounted) spawnSync("umount", ["-l", mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

/** Starts the member on the tmpfs; `exit` resolves with its exit code. */
function start(port: number): { proc: ServerProcess; log: () => string; exit: Promise<number | null> } {
  const url = `http://127.0.0.1:${port}`;
  const proc = new ServerProcess({ label: "etcd-ts", tailChars: 20_000 });
  procs.push(proc);
  proc.spawn(process.execPath, [
    join(REPO, "dist/core/cli/main.js"),
    "--data-dir",
    join(mnt, "data"),
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
    "--heartbeat-interval",
    "10",
    "--election-timeout",
    "100",
    "--experimental-wal-segment-bytes",
    String(1 << 20),
    "--snapshot-count",
    "100000",
  ]);
  const exit = proc.exited().then(() => proc.exitStatus?.code ?? null);
  return { proc, log: () => proc.stderrTail, exit };
}

async function waitUp(c: EtcdClient): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await c.get("up");
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe("a full disk", () => {
  it.skipIf(!mounted)(
    "stops the member with a clear error, and it restarts with every acknowledged write once space is freed",
    async () => {
      const port = await freePort();
      const first = start(port);
      const c = new EtcdClient({ endpoints: [`127.0.0.1:${port}`], callTimeoutMs: 5_000, dialTimeoutMs: 2_000 });
      await waitUp(c);
      const acked = new Map<string, string>();
      let alive = true;
      void first.exit.then(() => (alive = false));
      for (let i = 0; alive && i < 2_000; i++) {
        const key = `k${String(i).padStart(5, "0")}`;
        const value = `${key}:${"v".repeat(64 * 1024)}`;
        try {
          await c.put(key, value);
          acked.set(key, value);
        } catch {
          break;
        }
      }
      expect(await first.exit).toBe(1);
      expect(first.log()).toMatch(
        /fatal: stopping the member: no space left on device .*free space in the data dir and restart the member/,
      );
      expect(acked.size).toBeGreaterThan(10);
      expect(spawnSync("mount", ["-o", "remount,size=256m", mnt]).status).toBe(0);
      const second = start(port);
      await waitUp(c);
      const got = await c.get("k", { prefix: true });
      const have = new Map(got.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
      for (const [k, v] of acked) expect(have.get(k) === v, `acknowledged ${k} missing after the restart`).toBe(true);
      await c.put("after", "ok");
      c.close();
      await second.proc.stop();
    },
    120_000,
  );
});
