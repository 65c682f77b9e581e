// Proves the message types in core/api/proto/gen are what proto-loader-gen-types makes from the .proto files
// beside them with the options the loader uses at run time (LOADER_OPTIONS in load.ts): `npm run proto:types`
// asks for exactly those options and files, and a fresh run into a temporary folder gives the committed files.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import type { Options } from "@grpc/proto-loader";
import { afterAll, describe, expect, it } from "vitest";
import { LOADER_OPTIONS, PROTO_FILES, RECIPE_PROTO_FILES } from "../../core/api/proto/load.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PROTO_DIR = "core/api/proto";
const GEN_DIR = "core/api/proto/gen";

/** The generator flags that make its output types match what the loader hands out with options `o`. */
function loaderFlags(o: Options): string[] {
  const flags: string[] = [];
  for (const k of ["keepCase", "defaults", "arrays", "objects", "oneofs", "json"] as const) {
    if (o[k] === true) flags.push(`--${k}`);
  }
  if (o.longs === String || o.longs === Number) flags.push(`--longs=${o.longs.name}`);
  if (o.enums === String) flags.push("--enums=String");
  if (o.bytes === String || o.bytes === Array) flags.push(`--bytes=${o.bytes.name}`);
  return flags;
}

/** The generator's command line in package.json's proto:types script. */
function scriptArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const script = pkg.scripts["proto:types"] ?? "";
  const command = script.split("&&").map((c) => c.trim().split(/\s+/));
  const gen = command.find((c) => c[0] === "proto-loader-gen-types");
  if (gen === undefined) throw new Error(`proto:types does not run proto-loader-gen-types: ${script}`);
  return gen.slice(1);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    })
    .sort();
}

const generatorBin = (): string => {
  const pkgJson = createRequire(import.meta.url).resolve("@grpc/proto-loader/package.json");
  const bin = (JSON.parse(readFileSync(pkgJson, "utf8")) as { bin: Record<string, string> }).bin;
  return join(dirname(pkgJson), bin["proto-loader-gen-types"] ?? "");
};

describe("generated proto types", () => {
  const tmp = mkdtempSync(join(tmpdir(), "etcd-ts-proto-types-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("npm run proto:types asks the generator for the loader's options and every .proto the loader reads", () => {
    const args = scriptArgs();
    const optionFlags = args.filter((a) =>
      /^--(keepCase|defaults|arrays|objects|oneofs|json|longs|enums|bytes)\b/.test(a),
    );
    expect(optionFlags.sort()).toEqual(loaderFlags(LOADER_OPTIONS).sort());
    expect(args.filter((a) => a.endsWith(".proto")).sort()).toEqual([...PROTO_FILES, ...RECIPE_PROTO_FILES].sort());
    expect(args.join(" ")).toContain(`-I ${PROTO_DIR} -O ${GEN_DIR}`);
  });

  it("the committed files are what a fresh run of that command writes", () => {
    const args = scriptArgs().map((a) => (a === GEN_DIR ? tmp : a));
    execFileSync(process.execPath, [generatorBin(), ...args], { cwd: ROOT, stdio: "pipe" });
    const fresh = filesUnder(tmp).map((p) => relative(tmp, p));
    const committed = filesUnder(join(ROOT, GEN_DIR)).map((p) => relative(join(ROOT, GEN_DIR), p));
    expect(committed).toEqual(fresh);
    const stale = fresh.filter(
      (p) => readFileSync(join(tmp, p), "utf8") !== readFileSync(join(ROOT, GEN_DIR, p), "utf8"),
    );
    expect(stale, "regenerate with npm run proto:types").toEqual([]);
  });
});
