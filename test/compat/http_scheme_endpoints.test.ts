// Proves the real etcdctl 3.4 works against etcd-ts when its endpoints carry a scheme (clientv3 3.4 then sends the
// whole "http://127.0.0.1:PORT" as HTTP/2 :authority, which grpc-js alone reset with PROTOCOL_ERROR): endpoint
// status (also --cluster), endpoint hashkv, defrag, put/get and a streaming watch all succeed with an http://
// endpoint, and again with an https:// endpoint and client certificates (openssl-made CA; over TLS etcdctl's
// :authority happens to be valid), and the host:port form still works beside them; a unix://localhost:PORT endpoint
// serves endpoint status and put/get. Both on the lane (a member's default) and with ETCD_TS_LANE=0, where the
// sniffer hands grpc-js the raw socket or the rewriting pipe.
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FilePki, LOOPBACK_SANS } from "../../harness/pki.js";
import { ServerProcess, makeDataDir, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort, haveEtcd } from "./processes.js";

const HAVE = haveEtcd();

interface Member {
  readonly proc: ServerProcess;
  readonly endpoint: string;
}

/** A CA and a server/client certificate pair for 127.0.0.1 and localhost. */
function makeTestPki(): FilePki {
  const pki = new FilePki();
  pki.ca("ca");
  pki.leaf("server", "ca", "server", LOOPBACK_SANS);
  pki.leaf("client", "ca", "client", LOOPBACK_SANS);
  return pki;
}

/**
 * Starts etcd-ts on free 127.0.0.1 ports (https:// with client-cert-auth when pki is given; unix://localhost:PORT,
 * a socket in its data dir, with `unix`); resolves once serving.
 */
async function startMember(pki?: FilePki, unix = false, lane = true): Promise<Member> {
  const [client, peer] = [await freePort(), await freePort()];
  const scheme = pki === undefined ? "http" : "https";
  const endpoint = unix ? `unix://localhost:${client}` : `${scheme}://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const dataDir = makeDataDir("etcd-ts-scheme-");
  const tls =
    pki === undefined
      ? []
      : [
          "--cert-file",
          pki.path("server.crt"),
          "--key-file",
          pki.path("server.key"),
          "--trusted-ca-file",
          pki.path("ca.crt"),
          "--client-cert-auth",
        ];
  let serving = false;
  const proc = new ServerProcess({
    label: "etcd-ts",
    dataDir,
    ports: [client, peer],
    onLine: (line) => (serving ||= /serving (insecure )?client requests on/.test(line)),
  });
  proc.spawn(
    process.execPath,
    [
      join(REPO, "dist/core/cli/main.js"),
      "--name",
      "s",
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      endpoint,
      "--advertise-client-urls",
      endpoint,
      "--listen-peer-urls",
      peerUrl,
      "--initial-advertise-peer-urls",
      peerUrl,
      "--initial-cluster",
      `s=${peerUrl}`,
      "--logger",
      "zap",
      "--log-outputs",
      "stderr",
      ...tls,
    ],
    { cwd: dataDir, ...(lane ? {} : { env: { ...process.env, ETCD_TS_LANE: "0" } }) },
  );
  try {
    await waitUntil(proc, "serving clients", { deadline: Date.now() + 30_000, intervalMs: 50 }, async () => serving);
  } catch (err) {
    await proc.dispose();
    throw err;
  }
  return { proc, endpoint };
}

async function stopMember(m: Member): Promise<void> {
  await m.proc.dispose();
}

interface Ctl {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl in `cwd` (where a unix://localhost:PORT endpoint's socket is). */
function ctl(endpoint: string, tlsArgs: readonly string[], args: readonly string[], cwd?: string): Ctl {
  const r = spawnSync("etcdctl", ["--endpoints", endpoint, ...tlsArgs, ...args], {
    cwd,
    env: { ...process.env, ETCDCTL_API: "3" },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `etcdctl watch key --rev rev`, waits until both values were printed (the second put once the first shows). */
function watchTwo(endpoint: string, tlsArgs: readonly string[], key: string, rev: number): Promise<string> {
  const child = spawn("etcdctl", ["--endpoints", endpoint, ...tlsArgs, "watch", key, "--rev", String(rev)], {
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  let out = "";
  let putSecond = false;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`watch saw only: ${out}`));
    }, 20_000);
    child.stderr.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (!putSecond && out.includes("v1")) {
        putSecond = true; // the watch is established: the first event came through it
        const r = ctl(endpoint, tlsArgs, ["put", key, "v2"]);
        if (r.status !== 0) reject(new Error(`put v2: ${r.stderr}`));
      }
      if (out.includes("v2")) {
        clearTimeout(timer);
        child.kill();
        resolve(out);
      }
    });
  });
}

function suite(name: string, tls: boolean, lane = true): void {
  describe.runIf(HAVE)(name, () => {
    let m: Member | undefined;
    let pki: FilePki | undefined;
    let tlsArgs: string[] = [];
    beforeAll(async () => {
      if (tls) {
        pki = makeTestPki();
        tlsArgs = ["--cacert", pki.path("ca.crt"), "--cert", pki.path("client.crt"), "--key", pki.path("client.key")];
      }
      m = await startMember(pki, false, lane);
    });
    afterAll(async () => {
      if (m !== undefined) await stopMember(m);
      pki?.cleanup();
    });
    const ep = (): string => m?.endpoint ?? "";
    const ok = (args: readonly string[], endpoint = ep()): string => {
      const r = ctl(endpoint, tlsArgs, args);
      expect(r.stderr, `etcdctl ${args.join(" ")}`).not.toMatch(/RST_STREAM|PROTOCOL_ERROR/);
      expect(r.status, `etcdctl ${args.join(" ")} exit (${r.stderr})`).toBe(0);
      return r.stdout;
    };

    it("endpoint status, with and without --cluster", () => {
      const st = JSON.parse(ok(["endpoint", "status", "-w", "json"])) as {
        Endpoint: string;
        Status: { version: string };
      }[];
      expect(st[0]?.Endpoint).toBe(ep());
      expect(st[0]?.Status.version).toBe("3.4.23");
      expect(ok(["endpoint", "status", "--cluster"])).toContain(`${ep()}, `);
    });

    it("endpoint hashkv and defrag", () => {
      expect(ok(["endpoint", "hashkv"])).toMatch(new RegExp(`^${ep()}, \\d+\\n$`));
      expect(ok(["defrag"])).toBe(`Finished defragmenting etcd member[${ep()}]\n`);
    });

    it("put and get, also through the host:port form", () => {
      expect(ok(["put", "scheme/k", "hello"])).toBe("OK\n");
      expect(ok(["get", "scheme/k"])).toBe("scheme/k\nhello\n");
      expect(ok(["get", "scheme/k", "--print-value-only"], ep().replace(/^https?:\/\//, ""))).toBe("hello\n");
    });

    it("watch streams events", async () => {
      const put = ok(["put", "scheme/w", "v1", "-w", "json"]);
      const rev = Number((JSON.parse(put) as { header: { revision: number } }).header.revision);
      const out = await watchTwo(ep(), tlsArgs, "scheme/w", rev);
      expect(out).toContain("PUT\nscheme/w\nv1\nPUT\nscheme/w\nv2\n");
      expect(out).not.toMatch(/RST_STREAM|PROTOCOL_ERROR/);
    });
  });
}

describe.runIf(HAVE)("etcdctl with a unix:// endpoint", () => {
  let m: Member | undefined;
  beforeAll(async () => {
    m = await startMember(undefined, true);
  });
  afterAll(async () => {
    if (m !== undefined) await stopMember(m);
  });

  it("endpoint status and put/get", () => {
    const run = (args: readonly string[]): string => {
      const r = ctl(m?.endpoint ?? "", [], args, m?.proc.dataDir);
      expect(r.stderr, `etcdctl ${args.join(" ")}`).not.toMatch(/RST_STREAM|PROTOCOL_ERROR/);
      expect(r.status, `etcdctl ${args.join(" ")} exit (${r.stderr})`).toBe(0);
      return r.stdout;
    };
    expect(run(["endpoint", "status"])).toMatch(new RegExp(`^${m?.endpoint ?? ""}, [0-9a-f]+, 3\\.4\\.23, `));
    expect(run(["put", "u", "v"])).toBe("OK\n");
    expect(run(["get", "u", "--print-value-only"])).toBe("v\n");
  });
});

suite("etcdctl with an http:// endpoint", false);
suite("etcdctl with an https:// endpoint", true);
// Without the lane: the sniffer hands grpc-js the raw socket or the rewriting pipe (http2/authority_fix.ts).
suite("etcdctl with an http:// endpoint, ETCD_TS_LANE=0", false, false);
suite("etcdctl with an https:// endpoint, ETCD_TS_LANE=0", true, false);
