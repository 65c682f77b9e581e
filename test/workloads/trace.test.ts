// Proves the trace format's validator reports each bad line by number (and keeps the good ones), that
// serialization round-trips, and that the kube-5000 generator is deterministic (same seed → same digest) and
// follows its published facts at the chosen scale.
import { describe, expect, it } from "vitest";
import { generateKube5000 } from "../../workloads/kube_5000.js";
import { FULL_SCALE, SIZES_BYTES } from "../../workloads/kube_facts.js";
import { parseTrace, serializeTrace, traceDigest, TRACE_FORMAT } from "../../workloads/trace.js";

describe("trace validator", () => {
  it("reports bad lines with their numbers and keeps the valid ones", () => {
    const text = [
      JSON.stringify({ kind: "header", format: TRACE_FORMAT, seed: 3 }),
      JSON.stringify({ t: 1, verb: "create", resource: "pods", ns: "a", name: "p", size: 10 }),
      "{not json",
      JSON.stringify({ t: 1, verb: "frobnicate", resource: "pods" }),
      JSON.stringify({ t: 2, verb: "get", resource: "pods" }),
      "",
      JSON.stringify({ t: 3, verb: "list", resource: "Pods", limit: -1 }),
      JSON.stringify({ t: 0.5, verb: "list", resource: "pods" }),
      JSON.stringify({ t: 4, verb: "list", resource: "pods", extra: 1 }),
      JSON.stringify({ kind: "header", format: TRACE_FORMAT }),
      JSON.stringify({ t: 5, verb: "watch", resource: "pods", duration: 3 }),
    ].join("\n");
    const { trace, errors } = parseTrace(text);
    expect(trace.header?.seed).toBe(3);
    expect(trace.ops.map((o) => o.t)).toEqual([1, 5]);
    expect(errors.map((e) => e.line)).toEqual([3, 4, 5, 7, 8, 9, 10]);
    expect(errors[0]!.message).toMatch(/not JSON/);
    expect(errors[1]!.message).toMatch(/verb must be one of/);
    expect(errors[2]!.message).toMatch(/needs a name/);
    expect(errors[3]!.message).toMatch(/resource must be.*limit must be/);
    expect(errors[4]!.message).toMatch(/back in time/);
    expect(errors[5]!.message).toMatch(/unknown field\(s\) extra/);
    expect(errors[6]!.message).toMatch(/header must be the first line/);
  });

  it("round-trips through serializeTrace", () => {
    const trace = generateKube5000({ scale: 0.002, stormSeconds: 2, steadySeconds: 2 });
    const { trace: back, errors } = parseTrace(serializeTrace(trace));
    expect(errors).toEqual([]);
    expect(back.ops.length).toBe(trace.ops.length);
    expect(traceDigest(back)).toBe(traceDigest(trace));
  });
});

describe("kube-5000 generator", () => {
  const small = { scale: 0.01, stormSeconds: 10, steadySeconds: 10 };

  it("is deterministic: same seed, same digest; another seed, another digest", () => {
    const a = traceDigest(generateKube5000({ ...small, seed: 7 }));
    const b = traceDigest(generateKube5000({ ...small, seed: 7 }));
    const c = traceDigest(generateKube5000({ ...small, seed: 8 }));
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it("scales object counts and rates together and keeps object sizes", () => {
    const trace = generateKube5000({ ...small, seed: 1 });
    const pre = trace.ops.filter((o) => o.phase === "preload");
    const nodes = FULL_SCALE.nodes * small.scale;
    expect(pre.filter((o) => o.resource === "pods").length, "30 pods per node").toBe(nodes * FULL_SCALE.podsPerNode);
    expect(pre.filter((o) => o.resource === "nodes").length).toBe(nodes);
    expect(new Set(pre.filter((o) => o.resource === "pods").map((o) => o.size))).toEqual(new Set([SIZES_BYTES.pods]));
    const renewals = trace.ops.filter((o) => o.verb === "update" && o.resource === "leases").length;
    expect(renewals, "one node-lease renewal per node per 10 s over 20 s").toBe(nodes * 2);
    const victims = trace.ops.filter(
      (o) => o.verb === "create" && o.resource === "clusterrolebindings" && o.phase !== "preload",
    );
    expect(victims.length, "1 POST clusterrolebindings per second for 20 s").toBe(20);
    expect(victims.filter((o) => o.phase === "storm").length).toBe(10);
    const listers = new Set(trace.ops.filter((o) => o.client !== undefined).map((o) => o.client));
    expect(listers.size, "4 looping listers").toBe(4);
    const measured = trace.ops.filter((o) => o.phase !== "preload");
    for (let i = 1; i < measured.length; i++)
      expect(measured[i]!.t >= measured[i - 1]!.t, `op ${i} in time order`).toBe(true);
  });

  it("paces the storm's listers open loop and adds a looping storm phase when asked", () => {
    const trace = generateKube5000({
      ...small,
      seed: 1,
      stormSeconds: 4,
      closedStormSeconds: 3,
      steadySeconds: 2,
      listEvery: 0.5,
      victimPerSecond: 10,
    });
    const measured = trace.ops.filter((o) => o.phase !== "preload");
    expect(new Set(measured.map((o) => o.phase))).toEqual(new Set(["storm", "storm-closed", "steady"]));
    const paced = measured.filter(
      (o) => o.phase === "storm" && o.verb === "list" && o.resource === "pods" && o.ns === undefined,
    );
    expect(paced.length, "4 listers × one LIST per 0.5 s for 4 s").toBe(32);
    expect(
      paced.every((o) => o.inFlight === 2 && o.until === 4),
      "paced LISTs: bounded open loop, skipped past the storm",
    ).toBe(true);
    expect(new Set(paced.map((o) => o.client)).size).toBe(4);
    const starts = paced.map((o) => o.t).sort((a, b) => a - b);
    expect(starts.slice(0, 5), "listers staggered over one period").toEqual([0, 0.125, 0.25, 0.375, 0.5]);
    const looping = measured.filter(
      (o) => o.phase === "storm-closed" && o.verb === "list" && o.resource === "pods" && o.ns === undefined,
    );
    expect(
      looping.every((o) => o.inFlight === undefined),
      "looping listers are sequential",
    ).toBe(true);
    expect(new Set(looping.map((o) => o.client)).size, "4 looping listers in the second storm").toBe(4);
    expect(looping.every((o) => o.until === 7 && o.t >= 4 && o.t < 7)).toBe(true);
    const victims = measured.filter((o) => o.verb === "create" && o.resource === "clusterrolebindings");
    expect(victims.filter((o) => o.phase === "storm").length).toBe(40);
    expect(victims.filter((o) => o.phase === "storm-closed").length).toBe(30);
    expect(victims.filter((o) => o.phase === "steady").length).toBe(20);
    expect(() => generateKube5000({ ...small, listEvery: 0 })).toThrow(/listEvery/);
  });

  it("pages the first pagedListers listers' LISTs (500 per page) and leaves the others unpaginated", () => {
    const trace = generateKube5000({
      ...small,
      seed: 1,
      stormSeconds: 4,
      closedStormSeconds: 2,
      steadySeconds: 2,
      listEvery: 0.5,
      pagedListers: 2,
    });
    const storm = trace.ops.filter(
      (o) => (o.phase === "storm" || o.phase === "storm-closed") && o.verb === "list" && o.client !== undefined,
    );
    const byClient = new Map<string, Set<number | undefined>>();
    for (const o of storm) byClient.set(o.client ?? "", (byClient.get(o.client ?? "") ?? new Set()).add(o.limit));
    expect([...byClient.entries()].sort()).toEqual([
      ["lister-1", new Set([500])],
      ["lister-2", new Set([500])],
      ["lister-3", new Set([undefined])],
      ["lister-4", new Set([undefined])],
      ["paced-lister-1", new Set([500])],
      ["paced-lister-2", new Set([500])],
      ["paced-lister-3", new Set([undefined])],
      ["paced-lister-4", new Set([undefined])],
    ]);
    const unpaged = generateKube5000({ ...small, seed: 1, stormSeconds: 4, steadySeconds: 2, listEvery: 0.5 });
    expect(
      unpaged.ops.some((o) => o.verb === "list" && o.limit !== undefined),
      "without pagedListers nothing is paged",
    ).toBe(false);
  });

  it("rejects a scale outside (0, 1]", () => {
    expect(() => generateKube5000({ scale: 0 })).toThrow(/scale/);
    expect(() => generateKube5000({ scale: 2 })).toThrow(/scale/);
  });
});
