// Proves the real etcdctl 3.4 works against etcd-ts when its endpoints carry a scheme (clientv3 3.4 then sends the
// whole "http://127.0.0.1:PORT" as HTTP/2 :authority, which grpc-js alone reset with PROTOCOL_ERROR): endpoint
// status (also --cluster), endpoint hashkv, defrag, put/get and a streaming watch all succeed with an http://
// endpoint, and again with an https:// endpoint and client certificates (openssl-made CA; over TLS etcdctl's
// :authority happens to be valid, so this proves the sniffer leaves TLS clients working), and the host:port form
// still works beside them; a unix://localhost:PORT endpoint serves endpoint status and put/get.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, freePort, haveEtcd } from "./processes.js";

const HAVE = haveEtcd();

interface Member {
  readonly child: ChildProcess;
  readonly dataDir: string;
  readonly endpoint: string;
  readonly exited: Promise<void>;
}

/** A CA and a server/client certificate pair for 127.0.0.1, made by openssl. */
function makePki(dir: string): void {
  const ssl = (args: string[]): void =>
    void execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=ca"]);
  for (const n of ["server", "client"]) {
    writeFileSync(
      join(dir, `${n}.ext`),
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    ssl(["req", ...ec, "-keyout", `${n}.key`, "-out", `${n}.csr`, "-subj", `/CN=${n}`]);
    ssl([
      "x509",
      "-req",
      "-in",
      `${n}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${n}.crt`,
      "-days",
      "1",
      "-extfile",
      `${n}.ext`,
    ]);
  }
}

/**
 * Starts etcd-ts on free 127.0.0.1 ports (https:// with client-cert-auth when pki is given; unix://localhost:PORT,
 * a socket in its data dir, with `unix`); resolves once serving.
 */
async function startMember(pki?: string, unix = false): Promise<Member> {
  const [client, peer] = [await freePort(), await freePort()];
  const scheme = pki === undefined ? "http" : "https";
  const endpoint = unix ? `unix://localhost:${client}` : `${scheme}://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-scheme-"));
  const tls =
    pki === undefined
      ? []
      : [
          "--cert-file",
          join(pki, "server.crt"),
          "--key-file",
          join(pki, "server.key"),
          "--trusted-ca-file",
          join(pki, "ca.crt"),
          "--client-cert-auth",
        ];
  const child = spawn(
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
    { cwd: dataDir, stdio: ["ignore", "ignore", "pipe"] },
  );
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let log = "";
  const member = { child, dataDir, endpoint, exited };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`etcd-ts not serving after 30 s: ${log.slice(-800)}`)), 30_000);
      child.stderr?.on("data", (b: Buffer) => {
        log += b.toString();
        if (/serving (insecure )?client requests on/.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`etcd-ts exited before serving: ${log.slice(-800)}`));
      });
    });
  } catch (err) {
    await stopMember(member);
    throw err;
  }
  return member;
}

async function stopMember(m: Member): Promise<void> {
  m.child.kill("SIGTERM");
  await m.exited;
  rmSync(m.dataDir, { recursive: true, force: true });
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

function suite(name: string, tls: boolean): void {
  describe.runIf(HAVE)(name, () => {
    let m: Member | undefined;
    let pki = "";
    let tlsArgs: string[] = [];
    beforeAll(async () => {
      if (tls) {
        pki = mkdtempSync(join(tmpdir(), "etcd-ts-scheme-pki-"));
        makePki(pki);
        tlsArgs = [
          "--cacert",
          join(pki, "ca.crt"),
          "--cert",
          join(pki, "client.crt"),
          "--key",
          join(pki, "client.key"),
        ];
      }
      m = await startMember(tls ? pki : undefined);
    });
    afterAll(async () => {
      if (m !== undefined) await stopMember(m);
      if (pki !== "") rmSync(pki, { recursive: true, force: true });
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
      const r = ctl(m?.endpoint ?? "", [], args, m?.dataDir);
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
