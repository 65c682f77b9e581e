// Test support: transpiles a TypeScript module and everything it imports relatively into plain ESM under a
// directory, so a child process (which cannot load .ts) runs the real WAL code. Uses the typescript compiler
// that the repo already depends on; no bundler.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const IMPORT_RE = /from\s+["'](\.{1,2}\/[^"']+)\.js["']/g;

export function transpileTree(repoRoot: string, entry: string, outDir: string): string {
  const seen = new Set<string>();
  const queue = [resolve(repoRoot, entry)];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const m of source.matchAll(IMPORT_RE)) queue.push(resolve(dirname(file), `${m[1] as string}.ts`));
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    }).outputText;
    const target = join(outDir, relative(repoRoot, file)).replace(/\.ts$/, ".js");
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, out);
  }
  writeFileSync(join(outDir, "package.json"), JSON.stringify({ type: "module" }));
  return join(outDir, entry.replace(/\.ts$/, ".js"));
}
