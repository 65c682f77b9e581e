// Proves member and cluster ids are derived exactly as etcd 3.4 derives them: the expected values were read from
// `etcdctl member list -w json` against etcd 3.4.23 started with --initial-cluster n1=http://127.0.0.1:23801
// --initial-cluster-token tok-x.
import { describe, expect, it } from "vitest";
import { computeClusterId, computeMemberId, idToHex } from "../../core/membership/ids.js";

describe("member and cluster ids", () => {
  it("match etcd 3.4.23's for the same peer URLs and token", () => {
    const member = computeMemberId(["http://127.0.0.1:23801"], "tok-x");
    expect(member).toBe(4577858347370119897n);
    expect(idToHex(member)).toBe("3f87d1e9930d82d9");
    expect(computeClusterId([member])).toBe(13858927436611866398n);
  });
  it("do not depend on the order of peer URLs or members", () => {
    expect(computeMemberId(["http://b:2", "http://a:1"], "t")).toBe(computeMemberId(["http://a:1", "http://b:2"], "t"));
    expect(computeClusterId([3n, 1n, 2n])).toBe(computeClusterId([1n, 2n, 3n]));
  });
  it("change with the token and the time a member was added", () => {
    expect(computeMemberId(["http://a:1"], "t1")).not.toBe(computeMemberId(["http://a:1"], "t2"));
    expect(computeMemberId(["http://a:1"], "t", 1)).not.toBe(computeMemberId(["http://a:1"], "t"));
  });
});
