// Proves the dependency rule of docs/ARCHITECTURE.md holds: walks every import of every .ts file under core/,
// harness/ and workloads/ and fails on a forbidden edge (e.g. core/raft importing outside itself).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { forbiddenEdge, importsOf } from "./import_rules.js";

const ROOT = resolve(import.meta.dirname, "../..");

function listTs(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(listTs(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

describe("import graph", () => {
  const files = ["core", "harness", "workloads"].flatMap((d) => listTs(join(ROOT, d)));

  it("finds the source tree", () => {
    expect(files.length).toBeGreaterThan(3);
  });

  it("has no edge the dependency rule forbids", () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = relative(ROOT, file);
      for (const spec of importsOf(readFileSync(file, "utf8"))) {
        const to = spec.startsWith(".") ? relative(ROOT, resolve(dirname(file), spec)) : spec;
        const why = forbiddenEdge(from, to);
        if (why !== undefined) violations.push(`${from} -> ${to}: ${why}`);
      }
    }
    expect(violations).toEqual([]);
  });
});

describe("import rules themselves", () => {
  it("forbid what the dependency rule forbids", () => {
    expect(forbiddenEdge("core/raft/raft.ts", "core/errors.ts")).toBeDefined();
    expect(forbiddenEdge("core/raft/raft.ts", "node:fs")).toBeDefined();
    expect(forbiddenEdge("core/mvcc/kv.ts", "core/raft/types.ts")).toBeDefined();
    expect(forbiddenEdge("core/server/x.ts", "harness/bench.ts")).toBeDefined();
    expect(forbiddenEdge("core/client/x.ts", "core/server/server.ts")).toBeDefined();
    expect(forbiddenEdge("core/lease/lessor.ts", "core/mvcc/kv.ts")).toBeDefined();
    expect(forbiddenEdge("harness/replay.ts", "core/server/server.ts")).toBeDefined();
    expect(forbiddenEdge("core/backend/x.ts", "core/mvcc/kv.ts")).toBeDefined();
  });
  it("allow what the dependency rule allows", () => {
    expect(forbiddenEdge("core/raft/raft.ts", "core/raft/types.ts")).toBeUndefined();
    expect(forbiddenEdge("core/mvcc/kv.ts", "core/backend/backend.ts")).toBeUndefined();
    expect(forbiddenEdge("core/server/x.ts", "core/raft/raw_node.ts")).toBeUndefined();
    expect(forbiddenEdge("core/client/x.ts", "core/api/proto/rpc.proto")).toBeUndefined();
    expect(forbiddenEdge("core/client/x.ts", "core/errors.ts")).toBeUndefined();
    expect(forbiddenEdge("harness/replay.ts", "core/client/client.ts")).toBeUndefined();
    expect(forbiddenEdge("harness/micro/raft_bench.ts", "core/raft/raw_node.ts")).toBeUndefined();
  });
  it("read static, dynamic and re-export imports", () => {
    const src = `import a from "./a.js";\nexport * from "../b.js";\nconst c = await import("./c.js");\nimport type { D } from "./d.js";`;
    expect(importsOf(src)).toEqual(["./a.js", "../b.js", "./c.js", "./d.js"]);
  });
});
