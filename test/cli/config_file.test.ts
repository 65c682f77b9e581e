// Proves --config-file reads etcd's YAML as etcd does: keys are flag names, lists may be YAML lists, the TLS
// sections nest (client-transport-security.cert-file is --cert-file), the file replaces every command-line flag and
// ETCD_* variable, unknown keys are reported (etcd ignores them), bad values and bad YAML fail with exit code 1;
// and a real etcd-ts process started from a config file serves etcdctl under the name and URLs it gives, stops
// cleanly on SIGTERM (dying of it, as etcd does) and restarts with its data.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FlagError, parseFlags } from "../../core/cli/flags.js";
import { ServerProcess, freePort, waitUntil } from "../../harness/targets/launcher.js";

const dir = mkdtempSync(join(tmpdir(), "etcd-ts-config-"));
const procs: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function flagError(fn: () => unknown): FlagError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlagError) return err;
    throw err;
  }
  throw new Error("expected a FlagError");
}

describe("--config-file", () => {
  it("reads flag values, YAML lists and numbers, and replaces the command line and the environment", () => {
    const path = file(
      "a.yml",
      [
        "name: infra1",
        "data-dir: /var/lib/x",
        "listen-client-urls: http://127.0.0.1:2379,http://127.0.0.1:22379",
        "log-outputs: [stderr]",
        "snapshot-count: 5000",
        "pre-vote: true",
        "auto-compaction-retention: 1",
        "unknown-thing: 3",
      ].join("\n"),
    );
    const f = parseFlags(["--config-file", path, "--name", "ignored", "--snapshot-count", "7"], {
      ETCD_HEARTBEAT_INTERVAL: "300",
    });
    expect(f.values.get("name")).toBe("infra1");
    expect(f.values.get("data-dir")).toBe("/var/lib/x");
    expect(f.values.get("listen-client-urls")).toBe("http://127.0.0.1:2379,http://127.0.0.1:22379");
    expect(f.values.get("log-outputs")).toBe("stderr");
    expect(f.values.get("snapshot-count")).toBe("5000");
    expect(f.values.get("pre-vote")).toBe("true");
    expect(f.values.get("auto-compaction-retention")).toBe("1");
    expect(f.values.get("heartbeat-interval"), "the environment is ignored too").toBe("100");
    expect(f.sources.get("name")).toBe("file");
    expect(f.unknownConfigKeys).toEqual(["unknown-thing"]);
  });

  it("maps the nested TLS sections to their flags, and refuses a flag etcd-ts does not honour", () => {
    const path = file(
      "tls.yml",
      "client-transport-security:\n  cert-file: /etc/etcd/server.crt\n  key-file: /etc/etcd/server.key\n",
    );
    const f = parseFlags(["--config-file", path]);
    expect([f.values.get("cert-file"), f.values.get("key-file")]).toEqual([
      "/etc/etcd/server.crt",
      "/etc/etcd/server.key",
    ]);
    const peer = file("peer.yml", "peer-transport-security:\n  client-cert-auth: false\n");
    expect(parseFlags(["--config-file", peer]).values.get("peer-client-cert-auth")).toBe("false");
    const wal = file("wal.yml", "wal-dir: /var/lib/etcd-wal\n");
    expect(flagError(() => parseFlags(["--config-file", wal])).message).toContain(
      "--wal-dir is not supported by etcd-ts",
    );
  });

  it("fails with exit code 1 on a bad value, bad YAML or a missing file", () => {
    const bad = flagError(() => parseFlags(["--config-file", file("bad.yml", "snapshot-count: lots\n")]));
    expect(bad.exitCode).toBe(1);
    expect(bad.message).toContain('invalid value "lots" for snapshot-count');
    expect(flagError(() => parseFlags(["--config-file", file("broken.yml", "name: [unclosed\n")])).exitCode).toBe(1);
    expect(flagError(() => parseFlags(["--config-file", join(dir, "nope.yml")])).message).toContain(
      "error loading config file",
    );
  });

  it("starts a real etcd-ts that etcdctl reaches at the file's URLs", async () => {
    const [client, peer] = [await freePort(), await freePort()];
    const path = file(
      "run.yml",
      [
        "name: from-file",
        `data-dir: ${join(dir, "data")}`,
        `listen-client-urls: http://127.0.0.1:${client}`,
        `advertise-client-urls: http://127.0.0.1:${client}`,
        `listen-peer-urls: http://127.0.0.1:${peer}`,
        `initial-advertise-peer-urls: http://127.0.0.1:${peer}`,
        `initial-cluster: from-file=http://127.0.0.1:${peer}`,
      ].join("\n"),
    );
    let readyLines = 0;
    const proc = new ServerProcess({
      label: "etcd-ts",
      onLine: (line) => void (line.includes("ready to serve client requests") && readyLines++),
    });
    procs.push(proc);
    const main = resolve(import.meta.dirname, "../../dist/core/cli/main.js");
    const start = async (): Promise<void> => {
      const before = readyLines;
      proc.spawn(process.execPath, [main, "--config-file", path]);
      await waitUntil(
        proc,
        "ready",
        { deadline: Date.now() + 20_000, intervalMs: 20 },
        async () => readyLines > before,
      );
    };
    await start();
    const ctl = (...args: string[]): string =>
      spawnSync("etcdctl", ["--endpoints", `127.0.0.1:${client}`, ...args], { encoding: "utf8" }).stdout;
    expect(ctl("put", "k", "v")).toBe("OK\n");
    expect(ctl("member", "list")).toContain(", started, from-file, http://127.0.0.1:");
    // SIGTERM: a clean stop, then death by the same signal as etcd (status 143 in a shell); the write is kept.
    await proc.kill("SIGTERM");
    expect(proc.exitStatus?.signal).toBe("SIGTERM");
    await start();
    expect(ctl("get", "k", "--print-value-only")).toBe("v\n");
  }, 30_000);
});
