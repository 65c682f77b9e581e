import { spawnSync } from "node:child_process";
import { configDefaults, defineConfig } from "vitest/config";

/**
 * Test files that start real etcd 3.4 (Debian's etcd-server/etcd-client). In CI they always run (.ci/run installs
 * etcd); on a machine without etcd they are left out with a notice, so `npm test` still proves everything else.
 */
const NEEDS_REAL_ETCD = [
  "test/client/**",
  "test/harness/smoke.test.ts",
  "test/workloads/kube_mapping.test.ts",
  "test/lease/lease_experiment.test.ts",
  "test/harness/server_bench.test.ts",
  "test/harness/cluster*.test.ts",
  "test/cluster/**",
];
const haveEtcd = spawnSync("etcd", ["--version"]).status === 0 && spawnSync("etcdctl", ["version"]).status === 0;
const skipRealEtcd = !haveEtcd && process.env["CI"] !== "true";
if (skipRealEtcd) {
  process.stderr.write(
    `etcd/etcdctl not on PATH: leaving out ${NEEDS_REAL_ETCD.join(", ")} and the etcdctl differential tests ` +
      "(apt-get install -y etcd-server etcd-client to run them)\n",
  );
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [...configDefaults.exclude, ...(skipRealEtcd ? NEEDS_REAL_ETCD : [])],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
