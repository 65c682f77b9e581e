// Proves the URL rules etcd 3.4 applies to member peer URLs and --initial-cluster (without needing etcd; the
// texts themselves are compared with real etcd in etcd_differential.test.ts): accepted forms are normalised and
// sorted as etcd hashes them, every refused form names the rule it broke, and --initial-cluster parsing keeps
// etcd's quirks (repeated names add URLs, empty pairs are skipped, a bare name is a name with an empty URL).
import { describe, expect, it } from "vitest";
import { computeClusterId, computeMemberId } from "../../core/membership/ids.js";
import {
  InitialClusterError,
  membersFromInitialCluster,
  parseUrlsMap,
  urlsMapString,
} from "../../core/membership/initial_cluster.js";
import { MemberUrlError, parseMemberUrls, splitsHostPort } from "../../core/membership/urls.js";

function refusal(urls: string[]): string {
  try {
    parseMemberUrls(urls);
  } catch (err) {
    if (err instanceof MemberUrlError) return err.message;
    throw err;
  }
  return "(accepted)";
}

describe("member URL rules", () => {
  it("accepts http, https, unix, unixs with host:port, queries, IPv6, surrounding spaces; sorts and lower-cases the scheme", () => {
    expect(
      parseMemberUrls([" https://b:2 ", "HTTP://a:1", "unix://sock:0", "unixs://[::1]:5", "http://h:1?x=1"]),
    ).toEqual(["http://a:1", "http://h:1?x=1", "https://b:2", "unix://sock:0", "unixs://[::1]:5"]);
  });

  it("refuses each broken form with its rule", () => {
    expect(refusal([])).toBe("no valid URLs given");
    expect(refusal([""])).toBe("URL scheme must be http, https, unix, or unixs: ");
    expect(refusal(["localhost:2380"])).toMatch(/^URL scheme must be/);
    expect(refusal(["http:h:1"]), "an opaque URL has no host").toMatch(
      /^URL address does not have the form "host:port"/,
    );
    expect(refusal(["unix:///tmp/s"])).toMatch(/^URL address does not have the form/);
    expect(refusal(["http://h:1/"])).toBe("URL must not contain a path: http://h:1/");
    expect(refusal(["127.0.0.1:1"])).toBe('parse "127.0.0.1:1": first path segment in URL cannot contain colon');
    expect(refusal(["http://h\t:1"])).toBe('parse "http://h\\t:1": net/url: invalid control character in URL');
    expect(refusal(["://h:1"])).toBe('parse "://h:1": missing protocol scheme');
  });

  it("net.SplitHostPort: host:port, [v6]:port, empty port allowed; no port or extra colons refused", () => {
    for (const ok of ["h:1", "h:", ":1", "[::1]:2", "[fe80::1%eth0]:3"]) expect(splitsHostPort(ok), ok).toBe(true);
    for (const bad of ["h", "", "a:b:1", "[::1]", "[::1", "[a]b:1", "h]:1"])
      expect(splitsHostPort(bad), bad).toBe(false);
  });
});

describe("--initial-cluster parsing", () => {
  it("repeated names add URLs; empty pairs are skipped; the map prints sorted", () => {
    const m = parseUrlsMap("b=http://h:2,,a=http://h:3,a=http://h:1");
    expect([...m.keys()]).toEqual(["b", "a"]);
    expect(m.get("a")).toEqual(["http://h:1", "http://h:3"]);
    expect(urlsMapString(m)).toBe("a=http://h:1,a=http://h:3,b=http://h:2");
  });

  it("builds members with etcd's ids and the cluster id", () => {
    const { members, clusterId } = membersFromInitialCluster("n1=http://h:1,n2=http://h:2", "tok");
    expect(members.map((m) => m.name).sort()).toEqual(["n1", "n2"]);
    expect(members.find((m) => m.name === "n1")?.id).toBe(computeMemberId(["http://h:1"], "tok"));
    expect(clusterId).toBe(computeClusterId(members.map((m) => m.id)));
    expect(members.every((m) => !m.isLearner && m.clientUrls.length === 0)).toBe(true);
  });

  it("an empty --initial-cluster is refused (without a local name to look for)", () => {
    expect(() => membersFromInitialCluster("", "t")).toThrow(InitialClusterError);
    expect(() => membersFromInitialCluster(",", "t")).toThrow("initial cluster unset and no discovery URL found");
  });

  it("refusals carry a kind to branch on", () => {
    const kindOf = (ic: string, adv = "http://h:1"): string => {
      try {
        membersFromInitialCluster(ic, "t", { name: "n1", advertisePeerUrls: [adv] });
      } catch (err) {
        return (err as InitialClusterError).kind;
      }
      return "(accepted)";
    };
    expect(kindOf("n1=http://h:1")).toBe("(accepted)");
    expect(kindOf("n1=http://h:1,n2=ftp://x:1")).toBe("BAD_URL");
    expect(kindOf("n2=http://h:1")).toBe("LOCAL_NAME_MISSING");
    expect(kindOf("n1=http://h:2")).toBe("ADVERTISE_MISMATCH");
    expect(kindOf("n1=http://h:1,n2=http://h:1")).toBe("DUPLICATE_URL");
    expect(kindOf("n1=http://h:1", "ftp://h:1")).toBe("BAD_URL");
  });
});
