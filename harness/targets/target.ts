// A Target is something the harness replays a trace against, reached only over the wire. `etcd` starts real
// etcd 3.4 as a child process on loopback; `endpoints=` names servers already running. The embedded etcd-ts
// cluster plugs in here once etcd-ts serves requests (a later issue): it is listed, and reported as not
// available, until then.

export interface Target {
  /** Short name used in reports ("etcd", "etcd-ts-concurrent", "external"). */
  readonly name: string;
  /** What the report shows about it (binary version, members, data-dir medium). */
  readonly describe: string;
  start(): Promise<void>;
  /** Client endpoints (host:port), valid after start(). */
  endpoints(): string[];
  /** Server version string as reported by Status, or the binary's --version, once known. */
  version(): string;
  stop(): Promise<void>;
}

/** TargetSpec is a target named on the command line, before it is started. */
export type TargetSpec =
  | { readonly kind: "etcd"; readonly members: number }
  | { readonly kind: "etcd-ts"; readonly readMode: "blocking" | "concurrent" }
  | { readonly kind: "endpoints"; readonly endpoints: readonly string[] };

/** parseTargetSpec reads "etcd", "etcd:3" (members), "etcd-ts:blocking", "etcd-ts:concurrent" or "endpoints=h:p,h:p". */
export function parseTargetSpec(s: string): TargetSpec {
  if (s === "etcd") return { kind: "etcd", members: 1 };
  const members = /^etcd:(\d+)$/.exec(s);
  if (members !== null) return { kind: "etcd", members: Number(members[1]) };
  if (s === "etcd-ts" || s === "etcd-ts:concurrent") return { kind: "etcd-ts", readMode: "concurrent" };
  if (s === "etcd-ts:blocking") return { kind: "etcd-ts", readMode: "blocking" };
  if (s.startsWith("endpoints=")) {
    const list = s
      .slice("endpoints=".length)
      .split(",")
      .filter((e) => e.length > 0);
    if (list.length === 0) throw new Error(`endpoints= needs at least one host:port, got ${JSON.stringify(s)}`);
    return { kind: "endpoints", endpoints: list };
  }
  throw new Error(
    `unknown target ${JSON.stringify(s)}; use etcd, etcd:3, etcd-ts:blocking, etcd-ts:concurrent or endpoints=h:p,...`,
  );
}

/** specName is the label a target spec gets in reports. */
export function specName(spec: TargetSpec): string {
  switch (spec.kind) {
    case "etcd":
      return spec.members === 1 ? "etcd" : `etcd-${spec.members}`;
    case "etcd-ts":
      return `etcd-ts-${spec.readMode}`;
    case "endpoints":
      return "external";
  }
}
