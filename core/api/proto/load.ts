// Loads etcd 3.4's v3 API (.proto files beside this module) with @grpc/proto-loader into grpc-js service
// definitions. One set of options for the server and the client: field names as in the .proto (keepCase),
// 64-bit integers as decimal strings (JS numbers would lose precision above 2^53; callers turn them into
// bigint), bytes as Buffer, enums as their names, defaults filled in, oneof names reported.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** PROTO_FILES are the three files of etcd's v3 API, relative to protoDir(). */
export const PROTO_FILES = ["etcdserverpb/rpc.proto", "mvccpb/kv.proto", "authpb/auth.proto"] as const;

/** The lock and election services' files (packages v3lockpb and v3electionpb), relative to protoDir(). */
export const RECIPE_PROTO_FILES = ["v3lockpb/v3lock.proto", "v3electionpb/v3election.proto"] as const;

/**
 * LOADER_OPTIONS are the proto-loader options every etcd-ts module uses (see the file comment). The message types
 * in gen/ are generated with the same options (npm run proto:types): change both together.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: false,
  oneofs: true,
};

/**
 * protoDir finds the directory holding the .proto files: beside this module when run from source, or
 * the source tree's core/api/proto when run from dist/ (tsc does not copy .proto files).
 */
export function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [here, resolve(here, "../../../../core/api/proto")];
  for (const dir of candidates) {
    if (existsSync(join(dir, PROTO_FILES[0]))) return dir;
  }
  throw new Error(`etcd protos not found; looked in ${candidates.join(", ")}`);
}

/** ServiceName is one of etcd's six v3 gRPC services. */
export type ServiceName = "KV" | "Watch" | "Lease" | "Cluster" | "Maintenance" | "Auth";
export const SERVICE_NAMES: readonly ServiceName[] = ["KV", "Watch", "Lease", "Cluster", "Maintenance", "Auth"];

/** The services etcd 3.4 runs as recipes over its own KV, lease and watch, each in its own package. */
export type RecipeServiceName = "Lock" | "Election";
export const RECIPE_PACKAGES: Readonly<Record<RecipeServiceName, string>> = {
  Lock: "v3lockpb",
  Election: "v3electionpb",
};

/** Every gRPC service an etcd 3.4 member serves. */
export type AnyServiceName = ServiceName | RecipeServiceName;

/** The protobuf package of a service ("etcdserverpb", "v3lockpb", "v3electionpb"). */
export function servicePackage(name: AnyServiceName): string {
  return name === "Lock" || name === "Election" ? RECIPE_PACKAGES[name] : "etcdserverpb";
}

/** EtcdProto holds each service's client constructor (grpc-js generic client) and the package definition. */
export interface EtcdProto {
  readonly packageDefinition: protoLoader.PackageDefinition;
  readonly services: Readonly<Record<ServiceName, grpc.ServiceClientConstructor>>;
}

let cached: EtcdProto | undefined;

/** loadEtcdProto parses the protos once per process and returns the service constructors. */
export function loadEtcdProto(): EtcdProto {
  if (cached !== undefined) return cached;
  const dir = protoDir();
  const packageDefinition = protoLoader.loadSync(
    PROTO_FILES.map((f) => join(dir, f)),
    { ...LOADER_OPTIONS, includeDirs: [dir] },
  );
  const root = grpc.loadPackageDefinition(packageDefinition);
  const pkg = root["etcdserverpb"] as grpc.GrpcObject | undefined;
  if (pkg === undefined) throw new Error("etcdserverpb package missing from the loaded protos");
  const services = {} as Record<ServiceName, grpc.ServiceClientConstructor>;
  for (const name of SERVICE_NAMES) {
    const ctor = pkg[name];
    if (typeof ctor !== "function") throw new Error(`service etcdserverpb.${name} missing from rpc.proto`);
    services[name] = ctor as grpc.ServiceClientConstructor;
  }
  cached = { packageDefinition, services };
  return cached;
}

let recipes: Readonly<Record<RecipeServiceName, grpc.ServiceClientConstructor>> | undefined;

/** loadRecipeProto parses the lock and election protos once per process and returns their constructors. */
export function loadRecipeProto(): Readonly<Record<RecipeServiceName, grpc.ServiceClientConstructor>> {
  if (recipes !== undefined) return recipes;
  const dir = protoDir();
  const definition = protoLoader.loadSync(
    RECIPE_PROTO_FILES.map((f) => join(dir, f)),
    { ...LOADER_OPTIONS, includeDirs: [dir] },
  );
  const root = grpc.loadPackageDefinition(definition);
  const out = {} as Record<RecipeServiceName, grpc.ServiceClientConstructor>;
  for (const [name, pkgName] of Object.entries(RECIPE_PACKAGES) as [RecipeServiceName, string][]) {
    const ctor = (root[pkgName] as grpc.GrpcObject | undefined)?.[name];
    if (typeof ctor !== "function") throw new Error(`service ${pkgName}.${name} missing from its proto`);
    out[name] = ctor as grpc.ServiceClientConstructor;
  }
  recipes = out;
  return recipes;
}
