// The module dependency rule as data (docs/ARCHITECTURE.md explains it): which module may import which.
// Dependencies point down only:
//   core/cli → server, api, transport, membership;  core/api → server, mvcc, lease, auth, membership, v2store
//   core/server → raft, wal, backend, mvcc, lease, auth, membership, transport, bbolt (etcd's file format), v2store
//   core/mvcc, lease, auth, membership → backend;  core/wal, core/transport → raft;  core/backend, v2store → nothing
//   core/client → api;  harness → client, api, harness/micro, workloads;  harness/micro → raft, wal, backend,
//   mvcc, transport, harness, workloads;  workloads → nothing
// core/raft is pure: nothing outside itself, no packages, no Node built-ins. core/errors.ts, core/limits.ts and
// core/go_values.ts, core/failpoints.ts are leaves every other module may use and that import no module. core/ never imports harness/ or workloads/.

const IMPORT_RE =
  /(?:^|\s)(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

export function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec !== undefined) out.push(spec);
  }
  return out;
}

/** The module a path belongs to: "core/raft", "core/errors", "harness", "workloads", or a package name. */
function moduleOf(path: string): string {
  if (path.startsWith("core/")) {
    const part = path.split("/")[1] ?? "";
    return "core/" + part.replace(/\.(ts|js)$/, "");
  }
  if (path.startsWith("harness/") && path.startsWith("harness/micro/")) return "harness/micro";
  if (path.startsWith("harness/")) return "harness";
  if (path.startsWith("workloads/")) return "workloads";
  return "pkg:" + path;
}

const LEAVES = new Set(["core/errors", "core/limits", "core/go_values", "core/failpoints"]);

/** Which core modules each core module may import (besides itself and the leaves). */
const ALLOWED: Record<string, readonly string[]> = {
  "core/raft": [],
  "core/wal": ["core/raft"],
  "core/backend": [],
  // etcd's bbolt file format (snapshots exchanged with etcd's tools): a leaf that knows no etcd-ts module.
  "core/bbolt": [],
  "core/mvcc": ["core/backend"],
  "core/lease": ["core/backend"],
  "core/auth": ["core/backend"],
  "core/membership": ["core/backend"],
  "core/transport": ["core/raft"],
  "core/v2store": [],
  "core/server": [
    "core/raft",
    "core/wal",
    "core/backend",
    "core/mvcc",
    "core/lease",
    "core/auth",
    "core/membership",
    "core/transport",
    "core/bbolt",
    "core/v2store",
  ],
  "core/api": ["core/server", "core/mvcc", "core/lease", "core/auth", "core/membership", "core/v2store"],
  "core/cli": ["core/server", "core/api", "core/transport", "core/membership", "core/bbolt"],
  "core/client": ["core/api"],
  // In-process micro-benchmarks of pure components (the Raft core, the storage layer); never of a server.
  "harness/micro": ["core/raft", "core/wal", "core/backend", "core/mvcc", "core/transport"],
  harness: ["core/client", "core/api", "core/errors", "core/limits"],
  workloads: [],
};

/** Returns why an import from `fromPath` to `toPath` (repo-relative, or a package name) is forbidden. */
export function forbiddenEdge(fromPath: string, toPath: string): string | undefined {
  const from = moduleOf(fromPath);
  const to = moduleOf(toPath);
  if (from === to) return undefined;
  if (from === "core/raft") {
    return to.startsWith("pkg:") && !to.startsWith("pkg:node:")
      ? "core/raft is pure: no packages"
      : to.startsWith("pkg:node:")
        ? "core/raft is pure: no Node built-ins (no I/O, timers, randomness)"
        : "core/raft imports nothing outside itself";
  }
  if (to.startsWith("pkg:")) return undefined;
  if (LEAVES.has(to)) return undefined;
  if (LEAVES.has(from)) return `${from} is a leaf and imports no other module`;
  if (from === "workloads" && to === "harness") return "workloads must not import harness";
  if (from.startsWith("core/") && (to === "harness" || to === "harness/micro" || to === "workloads")) {
    return "core must not import harness/ or workloads/";
  }
  if ((from === "harness" || from === "harness/micro") && to === "workloads") return undefined;
  if (from === "harness/micro" && to === "harness") return undefined;
  // The experiment dispatcher (harness/bench.ts) loads the micro-benchmarks too.
  if (from === "harness" && to === "harness/micro") return undefined;
  const allowed = ALLOWED[from];
  if (allowed === undefined) return `unknown module ${from}`;
  return allowed.includes(to) ? undefined : `${from} may not import ${to}`;
}
