// Proves workloads' kube-apiserver → etcd mapping against real etcd 3.4: keys as kube-apiserver lays them out,
// create twice → the second loses its mod_revision==0 compare and returns the existing object, an update with
// a stale pinned revision conflicts while an unpinned one retries from the Else branch, delete is a guarded
// Txn, paginated LIST returns what one unpaginated Range does, events share one lease per reuse window, and
// the compactor's CAS round compacts at the previous round's revision. One etcd child process for the file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdClient } from "../../core/client/index.js";
import type { EtcdError } from "../../core/errors.js";
import { EtcdProcess } from "../../harness/targets/etcd_process.js";
import { KubeStorage, keyFor, listPrefix } from "../../workloads/kube_mapping.js";

let etcd: EtcdProcess;
let client: EtcdClient;

beforeAll(async () => {
  etcd = new EtcdProcess();
  await etcd.start();
  client = new EtcdClient({ endpoints: etcd.endpoints() });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

describe("keys", () => {
  it("follows kube-apiserver's layout and special prefixes", () => {
    expect(keyFor("pods", "ns", "p")).toBe("/registry/pods/ns/p");
    expect(keyFor("nodes", undefined, "n1")).toBe("/registry/minions/n1");
    expect(keyFor("endpoints", "kube-system", "kube-scheduler")).toBe(
      "/registry/services/endpoints/kube-system/kube-scheduler",
    );
    expect(keyFor("services", "ns", "s")).toBe("/registry/services/specs/ns/s");
    expect(keyFor("clusterrolebindings", "", "b", "rbac.authorization.k8s.io")).toBe("/registry/clusterrolebindings/b");
    expect(keyFor("prometheusrules", "ns", "r", "monitoring.coreos.com")).toBe(
      "/registry/monitoring.coreos.com/prometheusrules/ns/r",
    );
    expect(listPrefix("pods")).toBe("/registry/pods/");
  });
});

describe("storage calls against real etcd", () => {
  it("create twice: the second returns the existing object and writes nothing", async () => {
    const s = new KubeStorage(client);
    const key = keyFor("clusterrolebindings", undefined, "twice");
    const first = await s.create(key, "v1");
    expect(first.created).toBe(true);
    const second = await s.create(key, "v2");
    expect(second.created).toBe(false);
    expect(second.existing?.toString()).toBe("v1");
    expect(second.revision, "a failed create does not bump the revision").toBe(first.revision);
    expect((await client.get(key)).kvs[0]?.version).toBe(1n);
  });

  it("update with a stale pinned revision conflicts; an unpinned update retries and wins", async () => {
    const a = new KubeStorage(client),
      b = new KubeStorage(client);
    const key = keyFor("pods", "ns", "upd");
    const created = await a.create(key, "v1");
    await b.update(key, "from-b");
    const stale = await a.update(key, "pinned", created.revision);
    expect(stale.updated).toBe(false);
    expect(stale.attempts).toBe(1);
    expect((await client.get(key)).kvs[0]?.value.toString()).toBe("from-b");
    await b.update(key, "from-b2"); // a's cached revision (refreshed by its failed Txn) is stale again
    const retried = await a.update(key, "from-a");
    expect(retried.updated).toBe(true);
    expect(retried.attempts, "first Txn loses on the stale cached revision, second wins").toBe(2);
    expect((await client.get(key)).kvs[0]?.value.toString()).toBe("from-a");
  });

  it("update of a missing object is NotFound and creates nothing", async () => {
    const s = new KubeStorage(client);
    const key = keyFor("pods", "ns", "never-created");
    expect((await s.update(key, "x")).updated).toBe(false);
    expect((await client.get(key)).kvs.length).toBe(0);
  });

  it("delete is a guarded Txn: true once, false when the object is gone", async () => {
    const s = new KubeStorage(client);
    const key = keyFor("pods", "ns", "del");
    await s.create(key, "x");
    expect(await s.delete(key)).toBe(true);
    expect(await s.delete(key)).toBe(false);
  });

  it("a paginated LIST sees exactly what an unpaginated one does, at one revision", async () => {
    const s = new KubeStorage(client);
    for (let i = 0; i < 23; i++) await s.create(keyFor("pods", "pg", `p${String(i).padStart(2, "0")}`), "y".repeat(50));
    const whole = await s.list(listPrefix("pods", "pg"));
    const paged = await s.list(listPrefix("pods", "pg"), { limit: 5 });
    expect(whole.items).toBe(23);
    expect([paged.items, paged.pages]).toEqual([23, 5]);
    expect(await s.count(listPrefix("pods", "pg"))).toBe(23n);
  });

  it("events created within the reuse window share one lease", async () => {
    let now = 1000;
    const s = new KubeStorage(client, () => now);
    const leaseOf = async (name: string): Promise<bigint> =>
      (await client.get(keyFor("events", "ns", name))).kvs[0]!.lease;
    await s.create(keyFor("events", "ns", "e1"), "e", 3600);
    now += 30;
    await s.create(keyFor("events", "ns", "e2"), "e", 3600);
    const id = await leaseOf("e1");
    expect(id > 0n, `event lease ${id}`).toBe(true);
    expect(await leaseOf("e2"), "within the window: the same lease").toBe(id);
    const info = await client.leaseTimeToLive(id, true);
    expect(info.grantedTtlSeconds, "TTL 3600 + 60 s reuse window").toBe(3660n);
    expect(info.keys.length).toBe(2);
    now += 120;
    await s.create(keyFor("events", "ns", "e3"), "e", 3600);
    expect(await leaseOf("e3"), "past the window: a new lease").not.toBe(id);
  });

  it("the compactor compacts at the revision seen in its previous round", async () => {
    const s = new KubeStorage(client);
    expect(await s.compactRound(), "first round only records a revision").toBe(0n);
    const old = await client.put("/compact/k", "1");
    await client.put("/compact/k", "2");
    const rev = await s.compactRound();
    expect(rev > 0n && rev < old.header.revision + 10n, `compacted at ${rev}`).toBe(true);
    const err = await client.get("/compact/k", { revision: rev - 1n }).catch((e: unknown) => e);
    expect((err as EtcdError).code).toBe("COMPACTED");
  });
});
