// The harness's one way to run a server as a child process (real etcd or etcd-ts): listen ports that can be
// bound again after a restart, a temporary data dir, spawn with the stderr tail kept (and each stderr line handed
// to the caller), waits that fail fast when the process exits, signals (kill -9, SIGSTOP/SIGCONT), restart on
// the same data dir, and a stop that escalates from SIGTERM to SIGKILL and removes the data dir.
//
// Ports: a port picked by bind(0) comes from the kernel's ephemeral range, the same range outgoing connections
// take their source ports from; while a member is down, some client's connection can take its port and the
// restart then fails with EADDRINUSE. Listen ports are therefore picked outside that range, verified by binding,
// and reserved (one file per port under the temp dir, naming the owning pid) so that neither this process nor a
// concurrent one hands the same port out again while the owner lives.
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as pause } from "node:timers/promises";

/** Linux's default ephemeral range, used when /proc cannot be read. */
const DEFAULT_EPHEMERAL = { low: 32_768, high: 60_999 } as const;
/** Where listen ports are picked from (the part of it inside the ephemeral range is left out). */
export const LISTEN_PORT_WINDOW = { low: 20_000, high: 32_000 } as const;
/** Random candidates tried before giving up on finding a free port. */
const PORT_TRIES = 200;
const RESERVATION_DIR = join(tmpdir(), "etcd-ts-ports");

export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** ephemeralPortRange reads the kernel's source-port range (/proc/sys/net/ipv4/ip_local_port_range). */
export function ephemeralPortRange(): PortRange {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high) && low <= high)
      return { low, high };
  } catch {
    // not Linux, or /proc not mounted
  }
  return DEFAULT_EPHEMERAL;
}

/**
 * freePort picks a loopback port for a server to listen on: outside the ephemeral range, free when probed, and
 * reserved for this process so it is not handed out twice (a member's port stays its own across restarts).
 */
export function freePort(): Promise<number> {
  return pickPort(LISTEN_PORT_WINDOW);
}

/** pickPort is freePort over an explicit window (tests use small windows). */
export async function pickPort(window: PortRange): Promise<number> {
  const eph = ephemeralPortRange();
  const candidates: number[] = [];
  for (let p = window.low; p <= window.high; p++) if (p < eph.low || p > eph.high) candidates.push(p);
  if (candidates.length === 0)
    throw new Error(`ports ${window.low}-${window.high} all lie in the ephemeral range ${eph.low}-${eph.high}`);
  const tries = Math.min(PORT_TRIES, candidates.length * 4);
  for (let i = 0; i < tries; i++) {
    const port = candidates[Math.floor(Math.random() * candidates.length)]!;
    if (!reservePort(port)) continue;
    if (await canBind(port)) return port;
    releasePort(port);
  }
  throw new Error(`no free port in ${window.low}-${window.high} outside the ephemeral range after ${tries} tries`);
}

const reserved = new Set<number>();
let releaseHooked = false;

/** reservePort claims `port` for this process; false when a living process (this one included) holds it. */
function reservePort(port: number): boolean {
  if (reserved.has(port)) return false;
  mkdirSync(RESERVATION_DIR, { recursive: true });
  if (!releaseHooked) sweepStale();
  const path = join(RESERVATION_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      if (!releaseHooked) process.once("exit", releaseAll);
      releaseHooked = true;
      reserved.add(port);
      return true;
    } catch {
      if (ownerAlive(path)) return false;
      rmSync(path, { force: true });
    }
  }
  return false;
}

/**
 * sweepStale removes the reservations of processes that are gone (killed without running their exit hook, as a
 * test runner's worker can be), once per process, so the directory holds little more than living owners' ports.
 */
function sweepStale(): void {
  for (const name of readdirSync(RESERVATION_DIR)) {
    const path = join(RESERVATION_DIR, name);
    if (!ownerAlive(path)) rmSync(path, { force: true });
  }
}

/** ownerAlive: the reservation file names a process that still runs (an unreadable file counts as held). */
function ownerAlive(path: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(path, "utf8"));
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** releasePort gives a port from freePort() back once nothing will listen on it again. */
export function releasePort(port: number): void {
  if (!reserved.delete(port)) return;
  try {
    unlinkSync(join(RESERVATION_DIR, String(port)));
  } catch {
    // already gone
  }
}

function releaseAll(): void {
  for (const p of [...reserved]) releasePort(p);
}

/** canBind says whether 127.0.0.1:port can be listened on right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** portAccepts says whether something accepts TCP connections on 127.0.0.1:port. */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => {
      sock.destroy();
      resolve(false);
    });
  });
}

/** makeDataDir creates an empty temporary data dir under `parent` (default: the OS temp dir). */
export function makeDataDir(prefix: string, parent = tmpdir()): string {
  return mkdtempSync(join(parent, prefix));
}

export interface ServerProcessOptions {
  /** Names the process in errors ("etcd", "member m1", …). */
  readonly label: string;
  /** Removed by dispose(). */
  readonly dataDir?: string;
  /** Ports from freePort() this process listens on, given back by dispose(). */
  readonly ports?: readonly number[];
  /** How much of the end of stderr to keep for error reports. */
  readonly tailChars?: number;
  /** Called with every complete stderr line (e.g. to follow raft's role-change lines). */
  readonly onLine?: (line: string) => void;
}

/** Where a server process runs and what it sees. */
export interface SpawnOptions {
  /** Its working dir (relative paths, such as a unix socket named by a client URL, land there). */
  readonly cwd?: string;
  /** Its whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

/** The longest unterminated stderr line kept while waiting for its newline. */
const PARTIAL_LINE_MAX = 4096;

/**
 * ServerProcess is one server's process slot: spawn() starts it (again, after an exit: a restart on the same data
 * dir), kill()/signal() act on the running process, stop() ends it, dispose() also removes the data dir.
 */
export class ServerProcess {
  readonly label: string;
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  /** The last spawned process has exited and its stderr is read to the end. */
  private ended = false;
  /** Why the last spawn did not even start a process (ENOENT, EACCES). */
  private spawnError: Error | undefined;
  private tail = "";
  private partial = "";
  /** performance.now() at the last spawn. */
  startedAt = 0;

  constructor(private readonly opts: ServerProcessOptions) {
    this.label = opts.label;
  }

  get dataDir(): string | undefined {
    return this.opts.dataDir;
  }

  /** spawn starts `bin args` (stdout ignored, stderr kept) as `opts` say; throws if the previous process still runs. */
  spawn(bin: string, args: readonly string[], opts: SpawnOptions = {}): void {
    if (this.running) throw new Error(`${this.label} is running`);
    this.tail = "";
    this.partial = "";
    this.startedAt = performance.now();
    const child = spawn(bin, args, {
      stdio: ["ignore", "ignore", "pipe"],
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    });
    this.ended = false;
    this.spawnError = undefined;
    this.exitedPromise = new Promise((r) => {
      const end = (): void => {
        if (this.child === child) this.ended = true;
        r();
      };
      // "close" comes after "exit" once stderr is drained: the tail then holds the process's last words.
      child.once("close", end);
      // A binary that cannot be started (ENOENT, EACCES) never runs: the error ends it.
      child.once("error", (err) => {
        if (child.pid !== undefined) return;
        if (this.child === child) this.spawnError = err;
        end();
      });
    });
    child.stderr?.on("data", (b: Buffer) => {
      if (this.child === child) this.onStderr(b.toString("utf8"));
    });
    this.child = child;
  }

  private onStderr(text: string): void {
    this.tail = (this.tail + text).slice(-(this.opts.tailChars ?? 2000));
    const onLine = this.opts.onLine;
    if (onLine === undefined) return;
    const lines = (this.partial + text).split("\n");
    this.partial = (lines.pop() ?? "").slice(-PARTIAL_LINE_MAX);
    for (const line of lines) onLine(line);
  }

  /** running: spawned and not exited. */
  get running(): boolean {
    const c = this.child;
    return c !== undefined && !this.ended && c.exitCode === null && c.signalCode === null;
  }

  /** pid of the running process (undefined when not running). */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** exitStatus: how the last process ended (undefined while it runs or before it first started). */
  get exitStatus(): { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined {
    const c = this.child;
    if (c === undefined || (c.exitCode === null && c.signalCode === null)) return undefined;
    return { code: c.exitCode, signal: c.signalCode };
  }

  /** stderrTail is the end of what the last process wrote to stderr. */
  get stderrTail(): string {
    return this.tail;
  }

  /** assertAlive throws, with the stderr tail, once the spawned process has exited. */
  assertAlive(): void {
    const c = this.child;
    if (c === undefined) throw new Error(`${this.label} was never started`);
    if (this.spawnError !== undefined)
      throw new Error(`${this.label} could not be started: ${this.spawnError.message}`);
    if (this.ended)
      throw new Error(`${this.label} exited with ${c.exitCode ?? c.signalCode}: ${this.tail.slice(-800)}`);
  }

  /** signal sends `sig` without waiting (SIGSTOP/SIGCONT); nothing when not running. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child?.kill(sig);
  }

  /** exited resolves once the last spawned process has exited and its stderr is read to the end. */
  exited(): Promise<void> {
    return this.exitedPromise;
  }

  /** kill sends `sig` (default SIGKILL) and resolves once the process has exited. */
  async kill(sig: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running) return;
    this.child?.kill(sig);
    await this.exitedPromise;
  }

  /** stop sends SIGTERM, SIGKILL after `graceMs`, and resolves once the process has exited. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), graceMs);
    try {
      await this.kill("SIGTERM");
    } finally {
      clearTimeout(timer);
    }
  }

  /** dispose stops the process and removes its data dir. */
  async dispose(graceMs = 5_000): Promise<void> {
    await this.stop(graceMs);
    if (this.opts.dataDir !== undefined) rmSync(this.opts.dataDir, { recursive: true, force: true });
    for (const p of this.opts.ports ?? []) releasePort(p);
  }
}

/**
 * waitUntil polls `probe` every `intervalMs` until it resolves true; it fails at once when the process exits and
 * after `deadline` (a Date.now() time) with `what` and the probe's last error. A probe that throws counts as not
 * yet.
 */
export async function waitUntil(
  proc: ServerProcess,
  what: string,
  opts: { readonly deadline: number; readonly intervalMs: number },
  probe: () => Promise<boolean>,
): Promise<void> {
  let last: unknown;
  for (;;) {
    proc.assertAlive();
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    proc.assertAlive();
    if (Date.now() > opts.deadline)
      throw new Error(`${proc.label}: ${what} not reached in time${last === undefined ? "" : `: ${String(last)}`}`);
    await pause(opts.intervalMs);
  }
}
