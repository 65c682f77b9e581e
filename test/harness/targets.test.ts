// Proves target specs parse as documented (etcd, etcd:N, etcd-ts read modes, endpoints=…) with clear errors for
// anything else, and that etcd-ts targets are reported as not yet available rather than started or faked.
import { describe, expect, it } from "vitest";
import { ETCD_TS_UNAVAILABLE, makeTarget } from "../../harness/targets/make.js";
import { parseTargetSpec, specName } from "../../harness/targets/target.js";

describe("target specs", () => {
  it("parses every documented form and names it for reports", () => {
    const names = ["etcd", "etcd:3", "etcd-ts", "etcd-ts:blocking", "etcd-ts:concurrent", "endpoints=127.0.0.1:1,127.0.0.1:2"]
      .map((s) => specName(parseTargetSpec(s)));
    expect(names).toEqual(["etcd", "etcd-3", "etcd-ts-concurrent", "etcd-ts-blocking", "etcd-ts-concurrent", "external"]);
    expect(parseTargetSpec("endpoints=a:1,b:2")).toEqual({ kind: "endpoints", endpoints: ["a:1", "b:2"] });
  });

  it("rejects unknown targets and empty endpoint lists, naming the value", () => {
    expect(() => parseTargetSpec("etcd-ts:fast")).toThrow(/"etcd-ts:fast"/);
    expect(() => parseTargetSpec("endpoints=")).toThrow(/at least one/);
  });

  it("reports etcd-ts as not yet available instead of starting anything", () => {
    const slot = makeTarget(parseTargetSpec("etcd-ts:blocking"));
    expect(slot.target).toBeUndefined();
    expect(slot.reason).toBe(ETCD_TS_UNAVAILABLE);
  });
});
