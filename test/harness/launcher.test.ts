// Proves the harness's process launcher: the listen ports it picks lie outside the kernel's ephemeral range (read
// here from /proc, so a restarted member cannot find its port taken as some connection's source port), are
// bindable, are never handed out twice while their owner lives (in this process or another), and a busy port is
// skipped; and that a ServerProcess spawns, follows stderr line by line, restarts after kill -9, pauses and
// resumes, escalates a stop to SIGKILL, fails a wait at once when the process exits, runs in a given working dir,
// and removes its data dir.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  freePort,
  LISTEN_PORT_WINDOW,
  makeDataDir,
  pickPort,
  releasePort,
  ServerProcess,
  waitUntil,
} from "../../harness/targets/launcher.js";

/** The kernel's ephemeral range, read independently of the launcher. */
function ephemeral(): { low: number; high: number } {
  const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  return { low: low!, high: high! };
}

function listen(port: number): Promise<Server> {
  const srv = createServer();
  return new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, "127.0.0.1", () => resolve(srv));
  });
}

describe("listen ports", () => {
  it("picks distinct, bindable ports outside the ephemeral range", async () => {
    const eph = ephemeral();
    const ports: number[] = [];
    for (let i = 0; i < 30; i++) ports.push(await freePort());
    try {
      for (const p of ports) {
        expect(p < eph.low || p > eph.high, `port ${p} vs ephemeral ${eph.low}-${eph.high}`).toBe(true);
        expect(p).toBeGreaterThanOrEqual(LISTEN_PORT_WINDOW.low);
        expect(p).toBeLessThanOrEqual(LISTEN_PORT_WINDOW.high);
      }
      expect(new Set(ports).size, "no port handed out twice").toBe(ports.length);
      const srv = await listen(ports[0]!);
      srv.close();
    } finally {
      for (const p of ports) releasePort(p);
    }
  });

  it("skips a busy port, then does not hand the same port out twice", async () => {
    const port = await freePort();
    releasePort(port);
    const one = { low: port, high: port };
    const busy = await listen(port);
    await expect(pickPort(one), "the port is in use").rejects.toThrow(/no free port/);
    await new Promise((r) => busy.close(r));
    expect(await pickPort(one)).toBe(port);
    await expect(pickPort(one), "the port is already this process's").rejects.toThrow(/no free port/);
    releasePort(port);
  });

  it("respects another living process's reservation and reclaims a dead one's", async () => {
    const port = await freePort();
    releasePort(port);
    const one = { low: port, high: port };
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    const dir = join(tmpdir(), "etcd-ts-ports");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, String(port)), String(other.pid));
    try {
      await expect(pickPort(one), "held by a living process").rejects.toThrow(/no free port/);
    } finally {
      const gone = new Promise((r) => other.once("exit", r));
      other.kill("SIGKILL");
      await gone;
    }
    expect(await pickPort(one), "its owner is dead").toBe(port);
    releasePort(port);
  });

  it("refuses a window that lies inside the ephemeral range", async () => {
    const eph = ephemeral();
    await expect(pickPort({ low: eph.low, high: eph.low + 10 })).rejects.toThrow(/ephemeral range/);
  });
});

/** A child that logs to stderr and ignores SIGTERM when told to. */
const CHILD = `
process.stderr.write("line one\\nline tw");
setTimeout(() => process.stderr.write("o\\nbecame leader at term 3\\n"), 20);
if (process.argv[1] === "stubborn") {
  process.on("SIGTERM", () => {});
  process.stderr.write("armed\\n");
}
setInterval(() => {}, 1000);
`;

describe("ServerProcess", () => {
  let proc: ServerProcess | undefined;
  afterEach(async () => {
    await proc?.dispose(500);
    proc = undefined;
  });

  it("hands over stderr lines whole, restarts after kill -9, pauses and resumes", async () => {
    const lines: string[] = [];
    const p = new ServerProcess({ label: "child", onLine: (l) => lines.push(l) });
    proc = p;
    p.spawn(process.execPath, ["-e", CHILD]);
    await waitUntil(p, "three lines", { deadline: Date.now() + 10_000, intervalMs: 10 }, async () => lines.length >= 3);
    expect(lines).toEqual(["line one", "line two", "became leader at term 3"]);
    const first = p.pid;
    await p.kill();
    expect(p.running).toBe(false);
    expect(p.pid).toBeUndefined();
    p.spawn(process.execPath, ["-e", CHILD]);
    expect(p.running).toBe(true);
    expect(p.pid).not.toBe(first);
    p.signal("SIGSTOP");
    await waitUntil(p, "stopped state", { deadline: Date.now() + 5_000, intervalMs: 10 }, async () =>
      /\) T /.test(readFileSync(`/proc/${p.pid}/stat`, "utf8")),
    );
    p.signal("SIGCONT");
    await waitUntil(
      p,
      "running again",
      { deadline: Date.now() + 5_000, intervalMs: 10 },
      async () => !/\) T /.test(readFileSync(`/proc/${p.pid}/stat`, "utf8")),
    );
  });

  it("escalates a stop to SIGKILL when SIGTERM is ignored, and removes the data dir", async () => {
    const dataDir = makeDataDir("etcd-ts-launcher-test-");
    const p = new ServerProcess({ label: "stubborn", dataDir });
    proc = p;
    p.spawn(process.execPath, ["-e", CHILD, "stubborn"]);
    await waitUntil(p, "its SIGTERM handler", { deadline: Date.now() + 10_000, intervalMs: 10 }, async () =>
      p.stderrTail.includes("armed"),
    );
    const t0 = Date.now();
    await p.dispose(300);
    expect(Date.now() - t0, "SIGTERM alone did not end it").toBeGreaterThanOrEqual(250);
    expect(p.running).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
  });

  it("fails a wait as soon as the process exits, with its stderr", async () => {
    const p = new ServerProcess({ label: "short-lived" });
    proc = p;
    p.spawn(process.execPath, ["-e", "process.stderr.write('bad flag'); process.exit(3)"]);
    const t0 = Date.now();
    await expect(
      waitUntil(p, "never", { deadline: Date.now() + 30_000, intervalMs: 10 }, async () => false),
    ).rejects.toThrow(/short-lived exited with 3: bad flag/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("runs the process in the given working dir, and exited() resolves with its exit status known", async () => {
    const dataDir = makeDataDir("etcd-ts-launcher-cwd-");
    const p = new ServerProcess({ label: "in-dir", dataDir });
    proc = p;
    p.spawn(process.execPath, ["-e", "require('fs').writeFileSync('here', process.cwd()); process.exit(4)"], {
      cwd: dataDir,
    });
    await p.exited();
    expect(p.exitStatus).toEqual({ code: 4, signal: null });
    expect(readFileSync(join(dataDir, "here"), "utf8")).toBe(dataDir);
  });

  it("reports a binary that cannot be started instead of waiting for it", async () => {
    const p = new ServerProcess({ label: "missing" });
    proc = p;
    p.spawn(join(tmpdir(), "etcd-ts-no-such-binary"), []);
    await expect(
      waitUntil(p, "never", { deadline: Date.now() + 30_000, intervalMs: 10 }, async () => false),
    ).rejects.toThrow(/missing could not be started: .*ENOENT/);
    expect(p.running).toBe(false);
  });
});
