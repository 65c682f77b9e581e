// Proves etcd-ts's client TLS against real etcd 3.4, both started with the same openssl-made certificates
// (--cert-file --key-file --trusted-ca-file --client-cert-auth --client-crl-file, https:// client and metrics URLs):
// etcdctl with --cacert/--cert/--key gets the same put/get/endpoint health/status answers from both; without a
// client certificate, with one from another CA, or with a revoked one, both refuse (same exit code, same error
// class) and log the same "rejected connection" reasons; an HTTPS client with the certificate reads /health and
// /v3/kv/range from both (also over TLS without ALPN); an unknown --cipher-suites name stops both at start-up with
// etcd's text; --auto-tls writes <data-dir>/fixtures/client/{cert,key}.pem on both and serves with it; unixs://
// client URLs work alike; --client-cert-allowed-hostname refuses a certificate without that name on both.
// Known difference: when refusing, Go sends the TLS alert "bad certificate" while OpenSSL sends "unknown ca" or
// "certificate required"; etcdctl reports both as "context deadline exceeded", so exit codes and that text match.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { connect as connectTls } from "node:tls";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FilePki, LOOPBACK_SANS } from "../../harness/pki.js";
import { ServerProcess, makeDataDir, waitUntil } from "../../harness/targets/launcher.js";
import { REPO, freePort, haveEtcd } from "./processes.js";

const HAVE = haveEtcd();
type Kind = "etcd" | "etcd-ts";
const KINDS: readonly Kind[] = ["etcd", "etcd-ts"];

/** A CA, a server cert, client certs (good, revoked), a stranger from another CA, and a CRL. */
function makeTestPki(): FilePki {
  const pki = new FilePki();
  pki.ca("ca");
  pki.ca("otherca");
  pki.leaf("server", "ca", "server", LOOPBACK_SANS);
  pki.leaf("client", "ca", "root", LOOPBACK_SANS);
  pki.leaf("revoked", "ca", "revoked", LOOPBACK_SANS);
  pki.leaf("stranger", "otherca", "stranger", LOOPBACK_SANS);
  pki.revoke("ca", "revoked");
  pki.crl("ca", pki.path("ca.crl"));
  return pki;
}

interface Proc {
  readonly kind: Kind;
  readonly server: ServerProcess;
  readonly dataDir: string;
  readonly clientUrl: string;
  readonly metricsUrl: string;
  log: string;
  exited: Promise<number | null>;
}

const procs: Proc[] = [];
let pki: FilePki | undefined;
const p = (name: string): string => (pki as FilePki).path(name);

/**
 * Starts `kind` on free 127.0.0.1 ports with the given extra flags, in its data dir (where a unixs://localhost:port
 * client URL puts its socket, as etcd does); resolves once it serves clients (or exits).
 */
async function start(
  kind: Kind,
  extra: readonly string[],
  opts: { waitFor?: RegExp; unix?: boolean } = {},
): Promise<Proc> {
  const waitFor = opts.waitFor ?? /serving client (traffic securely|requests on)/;
  const [client, peer, metrics] = [await freePort(), await freePort(), await freePort()];
  const dataDir = makeDataDir(`etcd-ts-tls-${kind}-`);
  const clientUrl = opts.unix === true ? `unixs://localhost:${client}` : `https://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = [
    "--name",
    "tls",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `tls=${peerUrl}`,
    "--listen-metrics-urls",
    `https://127.0.0.1:${metrics}`,
    "--logger",
    "zap",
    "--log-outputs",
    "stderr",
    ...extra,
  ];
  const proc: Proc = {
    kind,
    server: new ServerProcess({
      label: kind,
      dataDir,
      ports: [client, peer, metrics],
      onLine: (l) => (proc.log += `${l}\n`),
    }),
    dataDir,
    clientUrl,
    metricsUrl: `https://127.0.0.1:${metrics}`,
    log: "",
    exited: Promise.resolve(null),
  };
  const server = proc.server;
  if (kind === "etcd") server.spawn("etcd", args, { cwd: dataDir });
  else server.spawn(process.execPath, [join(REPO, "dist/core/cli/main.js"), ...args], { cwd: dataDir });
  proc.exited = server.exited().then(() => server.exitStatus?.code ?? null);
  procs.push(proc);
  try {
    const deadline = Date.now() + 15_000;
    await waitUntil(server, "serving clients", { deadline, intervalMs: 50 }, async () => waitFor.test(proc.log));
  } catch (err) {
    // A start-up that is meant to fail ends here too: the caller reads its exit code and log.
    if (server.running) throw err;
  }
  return proc;
}

function stop(proc: Proc): Promise<void> {
  return proc.server.dispose();
}

interface Ctl {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** etcdctl against one server with the named client certificate (or none); runs asynchronously so refusals overlap. */
function ctl(proc: Proc, cert: string | undefined, args: readonly string[], tlsArgs?: readonly string[]): Promise<Ctl> {
  const certArgs = tlsArgs ?? [
    "--cacert",
    p("ca.crt"),
    ...(cert !== undefined ? ["--cert", p(`${cert}.crt`), "--key", p(`${cert}.key`)] : []),
  ];
  const child = spawn(
    "etcdctl",
    ["--endpoints", proc.clientUrl, "--dial-timeout", "1s", "--command-timeout", "2s", ...certArgs, ...args],
    {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdio: ["ignore", "pipe", "pipe"],
      cwd: proc.dataDir,
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.once("close", (status) => resolve({ status, stdout, stderr })));
}

/** An HTTPS request with the named client certificate (curl --cacert --cert --key); status and body, or the error. */
function fetchTls(url: string, cert: string | undefined, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: body === undefined ? "GET" : "POST",
        ca: readFileSync(p("ca.crt")),
        servername: "localhost",
        ...(cert !== undefined ? { cert: readFileSync(p(`${cert}.crt`)), key: readFileSync(p(`${cert}.key`)) } : {}),
      },
      (res) => {
        let text = "";
        res.on("data", (b: Buffer) => (text += b.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", (e) => resolve({ status: -1, body: e.message }));
    req.end(body);
  });
}

/** HTTP/1.1 GET over TLS without ALPN (an old client): the response's status line, or the error. */
function rawGet(url: string, path: string, cert: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connectTls(
      {
        host: u.hostname,
        port: Number(u.port),
        servername: "localhost",
        ca: readFileSync(p("ca.crt")),
        cert: readFileSync(p(`${cert}.crt`)),
        key: readFileSync(p(`${cert}.key`)),
      },
      () => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
    );
    let text = "";
    s.on("data", (b: Buffer) => (text += b.toString()));
    s.on("error", (e) => resolve(e.message));
    s.on("close", () => resolve(text.split("\r\n")[0] ?? ""));
  });
}

/**
 * The rejection reasons once `reason` is among them or 10 s have passed: a server logs the line after the client
 * has already seen the refusal, so reading the log at once races with the server's stderr.
 */
async function rejectionsOnceLogged(proc: Proc, reason: string): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  while (!rejectionReasons(proc.log).includes(reason) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  return rejectionReasons(proc.log);
}

/**
 * A handshake the client cut short (it gave up and closed the socket while a retry was mid-handshake): Go logs it
 * as "EOF", "unexpected EOF" or a reset socket; whether one happens depends on scheduling, not on the certificate.
 */
const INTERRUPTED =
  /^(unexpected )?EOF$|connection reset by peer|broken pipe|i\/o timeout|use of closed network connection/;

/** The reasons of "rejected connection" log lines that depend on the certificate, without interrupted handshakes. */
function certificateReasons(log: string): string[] {
  return rejectionReasons(log).filter((r) => !INTERRUPTED.test(r));
}

/** The reasons of "rejected connection" log lines: etcd's zap error field, etcd-ts's message text. */
function rejectionReasons(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { msg?: string; error?: string };
    if (entry.msg === "rejected connection" && entry.error !== undefined) out.push(entry.error);
    const ours = /^rejected connection from "[^"]+" \(error "(.+?)", ServerName "[^"]*"(?:, IPAddresses .*)?\)$/.exec(
      entry.msg ?? "",
    );
    if (ours?.[1] !== undefined) out.push(ours[1]);
  }
  return [...new Set(out)].sort();
}

describe("rejection reasons compared between the servers", () => {
  it("leave out handshakes the client cut short, keep each certificate's reason once", () => {
    const zap = (error: string): string =>
      JSON.stringify({ level: "warn", msg: "rejected connection", "remote-addr": "127.0.0.1:40000", error });
    const log = [
      zap("tls: client didn't provide a certificate"),
      zap("EOF"),
      zap("unexpected EOF"),
      zap("read tcp 127.0.0.1:2379->127.0.0.1:40001: read: connection reset by peer"),
      zap("tls: client didn't provide a certificate"),
      zap("transport: certificate serial 01 revoked"),
      "not json",
    ].join("\n");
    expect(certificateReasons(log)).toEqual([
      "tls: client didn't provide a certificate",
      "transport: certificate serial 01 revoked",
    ]);
  });
});

describe.runIf(HAVE)("client TLS against real etcd", () => {
  const servers = new Map<Kind, Proc>();
  beforeAll(async () => {
    pki = makeTestPki();
    const flags = [
      "--cert-file",
      p("server.crt"),
      "--key-file",
      p("server.key"),
      "--trusted-ca-file",
      p("ca.crt"),
      "--client-cert-auth",
      "--client-crl-file",
      p("ca.crl"),
    ];
    for (const s of await Promise.all(KINDS.map((k) => start(k, flags)))) servers.set(s.kind, s);
  });
  afterAll(async () => {
    await Promise.all(procs.splice(0).map(stop));
    pki?.cleanup();
  });
  const each = <T>(fn: (s: Proc) => Promise<T>): Promise<T[]> =>
    Promise.all(KINDS.map((k) => fn(servers.get(k) as Proc)));

  it("etcdctl with a client certificate: put, get, endpoint health and status work on both", async () => {
    const puts = await each((s) => ctl(s, "client", ["put", "tls-key", "tls-value"]));
    expect(puts.map((r) => [r.status, r.stdout])).toEqual([
      [0, "OK\n"],
      [0, "OK\n"],
    ]);
    const gets = await each((s) => ctl(s, "client", ["get", "tls-key"]));
    expect(gets.map((r) => [r.status, r.stdout])).toEqual([
      [0, "tls-key\ntls-value\n"],
      [0, "tls-key\ntls-value\n"],
    ]);
    const health = await each((s) => ctl(s, "client", ["endpoint", "health"]));
    expect(health.map((r) => r.status)).toEqual([0, 0]);
    for (const [i, r] of health.entries())
      expect(r.stderr + r.stdout).toMatch(new RegExp(`${[...servers.values()][i]?.clientUrl ?? "?"} is healthy`));
    const status = await each((s) => ctl(s, "client", ["endpoint", "status", "-w", "json"]));
    expect(status.map((r) => r.status)).toEqual([0, 0]);
    expect(status.map((r) => /"version":"([^"]+)"/.exec(r.stdout)?.[1])).toEqual(["3.4.23", "3.4.23"]);
  });

  it("with auth enabled, the client certificate's CN is the user when no token is sent (CN=root here)", async () => {
    const steps: readonly (readonly string[])[] = [
      ["user", "add", "root", "--new-user-password=pw"],
      ["role", "add", "root"],
      ["user", "grant-role", "root", "root"],
      ["user", "add", "reader", "--new-user-password=rpw"],
      ["role", "add", "ro"],
      ["role", "grant-permission", "ro", "read", "cn/", "--prefix=true"],
      ["user", "grant-role", "reader", "ro"],
      ["auth", "enable"],
      ["put", "cn/a", "by-cn"],
      ["get", "cn/a"],
      ["user", "list"],
      ["--user", "reader:rpw", "get", "cn/a"],
      ["--user", "reader:rpw", "put", "cn/a", "no"],
      ["--user", "reader:wrong", "get", "cn/a"],
      ["auth", "disable"],
    ];
    for (const args of steps) {
      const [theirs, ours] = await each((s) => ctl(s, "client", args));
      const clean = (r: Ctl): [number | null, string, string] => [
        r.status,
        r.stdout,
        r.stderr
          .split("\n")
          .filter((l) => !l.startsWith("{"))
          .join("\n"),
      ];
      expect({ args: args.join(" "), r: clean(ours as Ctl) }).toEqual({
        args: args.join(" "),
        r: clean(theirs as Ctl),
      });
    }
  });

  it("no certificate, another CA's, a revoked one: both refuse alike and log the same reasons", async () => {
    const cases = [undefined, "stranger", "revoked"];
    const results = await Promise.all(
      cases.flatMap((c) => KINDS.map((k) => ctl(servers.get(k) as Proc, c, ["get", "tls-key"]))),
    );
    for (const [i, r] of results.entries()) {
      expect({ i, status: r.status, out: r.stdout }).toEqual({ i, status: 1, out: "" });
      expect(r.stderr, `case ${i}`).toMatch(/context deadline exceeded/);
    }
    const [theirs, ours] = KINDS.map((k) => certificateReasons(servers.get(k)?.log ?? ""));
    expect(theirs?.length).toBe(3);
    expect(ours).toEqual(theirs);
  });

  it("an HTTPS client with the certificate reads /health and /v3/kv/range on the client and metrics ports", async () => {
    const health = await each((s) => fetchTls(`${s.clientUrl}/health`, "client"));
    expect(health).toEqual([
      { status: 200, body: '{"health":"true"}' },
      { status: 200, body: '{"health":"true"}' },
    ]);
    const metricsHealth = await each((s) => fetchTls(`${s.metricsUrl}/health`, "client"));
    expect(metricsHealth.map((r) => r.status)).toEqual([200, 200]);
    const ranges = await each((s) =>
      fetchTls(
        `${s.clientUrl}/v3/kv/range`,
        "client",
        JSON.stringify({ key: Buffer.from("tls-key").toString("base64") }),
      ),
    );
    expect(ranges.map((r) => r.status)).toEqual([200, 200]);
    const kvs = ranges.map((r) =>
      (JSON.parse(r.body) as { kvs: { key: string; value: string }[] }).kvs.map((kv) => [kv.key, kv.value]),
    );
    expect(kvs[1]).toEqual(kvs[0]);
    expect(kvs[0]).toEqual([[Buffer.from("tls-key").toString("base64"), Buffer.from("tls-value").toString("base64")]]);
    const noAlpn = await each((s) => rawGet(s.clientUrl, "/health", "client"));
    expect(noAlpn).toEqual(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
    const refused = await each((s) => fetchTls(`${s.metricsUrl}/health`, undefined));
    expect(refused.map((r) => r.status)).toEqual([-1, -1]);
  });

  it("an unknown --cipher-suites name stops both at start-up with etcd's text", async () => {
    const bad = [
      "--cert-file",
      p("server.crt"),
      "--key-file",
      p("server.key"),
      "--cipher-suites",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,BOGUS",
    ];
    const started = await Promise.all(KINDS.map((k) => start(k, bad, { waitFor: /unexpected TLS cipher suite/ })));
    const codes = await Promise.all(started.map((s) => s.exited));
    expect(codes).toEqual([1, 1]);
    for (const s of started) expect(s.log, s.kind).toContain('unexpected TLS cipher suite \\"BOGUS\\"');
  });

  it("--client-cert-allowed-hostname: a client certificate without that name is refused by both", async () => {
    const flags = [
      "--cert-file",
      p("server.crt"),
      "--key-file",
      p("server.key"),
      "--trusted-ca-file",
      p("ca.crt"),
      "--client-cert-auth",
      "--client-cert-allowed-hostname",
      "member.example",
    ];
    const picky = await Promise.all(KINDS.map((k) => start(k, flags)));
    const gets = await Promise.all(picky.map((s) => ctl(s, "client", ["get", "k"])));
    expect(gets.map((r) => r.status)).toEqual([1, 1]);
    for (const s of picky)
      expect(await rejectionsOnceLogged(s, "client certificate authentication failed"), s.kind).toContain(
        "client certificate authentication failed",
      );
  });

  it("unixs:// client URLs: both listen on ./localhost:port in their working dir and serve etcdctl over TLS", async () => {
    const flags = [
      "--cert-file",
      p("server.crt"),
      "--key-file",
      p("server.key"),
      "--trusted-ca-file",
      p("ca.crt"),
      "--client-cert-auth",
    ];
    const unix = await Promise.all(KINDS.map((k) => start(k, flags, { unix: true })));
    const puts = await Promise.all(unix.map((s) => ctl(s, "client", ["put", "u", "1"])));
    expect(puts.map((r) => [r.status, r.stdout])).toEqual([
      [0, "OK\n"],
      [0, "OK\n"],
    ]);
    const refused = await Promise.all(unix.map((s) => ctl(s, "stranger", ["get", "u"])));
    expect(refused.map((r) => r.status)).toEqual([1, 1]);
    for (const s of unix) expect(existsSync(join(s.dataDir, s.clientUrl.slice("unixs://".length))), s.kind).toBe(true);
  });

  it("--auto-tls: both write a self-signed certificate into the data dir and serve with it", async () => {
    const auto = await Promise.all(KINDS.map((k) => start(k, ["--auto-tls"])));
    const insecure = ["--insecure-transport=false", "--insecure-skip-tls-verify"];
    const puts = await Promise.all(auto.map((s) => ctl(s, undefined, ["put", "k", "v"], insecure)));
    expect(puts.map((r) => [r.status, r.stdout])).toEqual([
      [0, "OK\n"],
      [0, "OK\n"],
    ]);
    for (const s of auto) {
      expect(existsSync(join(s.dataDir, "fixtures", "client", "cert.pem")), s.kind).toBe(true);
      expect(readFileSync(join(s.dataDir, "fixtures", "client", "key.pem"), "utf8"), s.kind).toMatch(
        /^-----BEGIN EC PRIVATE KEY-----/,
      );
    }
    const verified = await Promise.all(
      auto.map((s) => ctl(s, undefined, ["get", "k"], ["--cacert", join(s.dataDir, "fixtures", "client", "cert.pem")])),
    );
    expect(verified.map((r) => [r.status, r.stdout])).toEqual([
      [0, "k\nv\n"],
      [0, "k\nv\n"],
    ]);
  });
});
