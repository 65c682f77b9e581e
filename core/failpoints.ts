// Failpoints: named places in the storage path where a test makes the process die as under kill -9, or makes the
// I/O fail, to prove the on-disk state is crash-consistent and that an I/O error stops the member. Nothing is
// armed unless the ETCD_TS_FAILPOINTS environment variable or the --experimental-failpoints endpoint arms it;
// unarmed, a failpoint is one map-size check.
//
// Spec: "name=action[@n]" items separated by ";", e.g. "wal-before-save=kill@3;defrag-before-rename=error".
// Actions: kill (SIGKILL to this process), error (an EIO error thrown where the I/O would run), enospc (an
// ENOSPC error), off (disarm). "@n" fires at the n-th hit from arming (default the first) and at every hit after.

export const FAILPOINTS = [
  "wal-before-save", "wal-after-save",
  "snap-before-save", "snap-after-save",
  "wal-after-release",
  "backend-before-commit", "backend-after-commit",
  "snap-install-mid",
  "defrag-before-rename",
] as const;
export type FailpointName = (typeof FAILPOINTS)[number];

export type FailAction = "kill" | "error" | "enospc";

interface Armed {
  readonly action: FailAction;
  readonly at: number;
  hits: number;
}

const armed = new Map<FailpointName, Armed>();

/** The environment variable read at start-up. */
export const FAILPOINTS_ENV = "ETCD_TS_FAILPOINTS";

export class FailpointSpecError extends Error {}

/** Arms (or with "off" disarms) every failpoint named in `spec`; throws on an unknown name or action. */
export function armFailpoints(spec: string): void {
  for (const item of spec.split(";").map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^([a-z-]+)=(kill|error|enospc|off)(?:@(\d+))?$/.exec(item);
    if (m === null) throw new FailpointSpecError(`failpoint ${JSON.stringify(item)}: want name=kill|error|enospc|off[@n]`);
    const name = m[1] as FailpointName;
    if (!FAILPOINTS.includes(name)) throw new FailpointSpecError(`unknown failpoint ${JSON.stringify(name)} (known: ${FAILPOINTS.join(", ")})`);
    if (m[2] === "off") armed.delete(name);
    else armed.set(name, { action: m[2] as FailAction, at: Math.max(1, Number(m[3] ?? 1)), hits: 0 });
  }
}

/** Arms what ETCD_TS_FAILPOINTS names (nothing when it is unset). */
export function armFailpointsFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  const spec = env[FAILPOINTS_ENV];
  if (spec !== undefined && spec !== "") armFailpoints(spec);
}

export function disarmAllFailpoints(): void {
  armed.clear();
}

/** The armed failpoints as a spec string (what GET /debug/failpoints answers). */
export function armedFailpoints(): string {
  return [...armed].map(([name, a]) => `${name}=${a.action}@${a.at}`).join(";");
}

/** Marks a failpoint: kills the process or throws when it is armed and its hit count has come. */
export function failpoint(name: FailpointName): void {
  if (armed.size === 0) return;
  const a = armed.get(name);
  if (a === undefined) return;
  a.hits += 1;
  if (a.hits < a.at) return;
  if (a.action === "kill") {
    // As kill -9: no exit handlers, no flush, whatever was not written stays unwritten.
    process.kill(process.pid, "SIGKILL");
  }
  const code = a.action === "enospc" ? "ENOSPC" : "EIO";
  const err = new Error(`${code}: ${a.action === "enospc" ? "no space left on device" : "i/o error"} (failpoint ${name})`) as NodeJS.ErrnoException;
  err.code = code;
  throw err;
}
