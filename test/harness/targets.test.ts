// Proves target specs parse as documented (etcd, etcd:N, etcd-ts read modes, endpoints=…) with clear errors for
// anything else, and that an etcd-ts target is the compiled etcd-ts server when it is built and is reported as
// not available (never faked) when it is not.
import { describe, expect, it } from "vitest";
import { ETCD_TS_UNAVAILABLE, etcdTsEntry, makeTarget } from "../../harness/targets/make.js";
import { parseTargetSpec, specName } from "../../harness/targets/target.js";

describe("target specs", () => {
  it("parses every documented form and names it for reports", () => {
    const names = [
      "etcd",
      "etcd:3",
      "etcd-ts",
      "etcd-ts:blocking",
      "etcd-ts:concurrent",
      "endpoints=127.0.0.1:1,127.0.0.1:2",
    ].map((s) => specName(parseTargetSpec(s)));
    expect(names).toEqual([
      "etcd",
      "etcd-3",
      "etcd-ts-concurrent",
      "etcd-ts-blocking",
      "etcd-ts-concurrent",
      "external",
    ]);
    expect(parseTargetSpec("endpoints=a:1,b:2")).toEqual({ kind: "endpoints", endpoints: ["a:1", "b:2"] });
  });

  it("rejects unknown targets and empty endpoint lists, naming the value", () => {
    expect(() => parseTargetSpec("etcd-ts:fast")).toThrow(/"etcd-ts:fast"/);
    expect(() => parseTargetSpec("endpoints=")).toThrow(/at least one/);
  });

  it("makes etcd-ts the built server in the requested read mode, or reports it unavailable", () => {
    const slot = makeTarget(parseTargetSpec("etcd-ts:blocking"));
    const built = etcdTsEntry() !== undefined;
    expect(slot.target === undefined, `built=${built}`).toBe(!built);
    if (slot.target === undefined) expect(slot.reason).toBe(ETCD_TS_UNAVAILABLE);
    else
      expect([slot.target.name, slot.target.describe]).toEqual([
        "etcd-ts-blocking",
        expect.stringContaining("--backend-read-mode blocking"),
      ]);
  });
});
