// Proves how the Go client's results enter the tables: perfkit's RESULT line is parsed into fields, `rw`
// results become put and LIST summary rows (count, bytes from MB/s × seconds, P50 and max; no invented LIST
// P99), and storage-claim's cells cover lists=0 once and every other reader count in each read view.
import { describe, expect, it } from "vitest";
import { cellsOf } from "../../harness/experiments/storage_claim.js";
import { parseResult, rwRows } from "../../harness/perfkit.js";

const OUT = [
  "some log line",
  "RESULT rw writers=16 readers=2 seconds=10.00 puts=20000 errors=0 puts_per_s=2000.0 p50_ms=3.10 p90_ms=5.00 p99_ms=12.50 p999_ms=30.00 max_ms=41.00 ranges=14 range_kvs=20000 range_p50_ms=410.00 range_max_ms=900.00 read_MB_per_s=58.1",
  "",
].join("\n");

describe("perfkit results", () => {
  it("parses the last RESULT line", () => {
    const r = parseResult(OUT);
    expect(r["puts"]).toBe("20000");
    expect(r["range_max_ms"]).toBe("900.00");
    expect(() => parseResult("no result here\n")).toThrow(/no RESULT/);
  });

  it("turns an rw result into put and LIST rows", () => {
    const [put, list] = rwRows("etcd", "lists=2 paced", parseResult(OUT));
    expect(put).toMatchObject({
      target: "etcd",
      phase: "lists=2 paced",
      verb: "put",
      count: 20000,
      throughput_per_s: 2000,
      p99_ms: 12.5,
      max_ms: 41,
    });
    expect(list).toMatchObject({
      verb: "list",
      resource: "pods",
      count: 14,
      bytes: 581_000_000,
      throughput_per_s: 1.4,
      p50_ms: 410,
      max_ms: 900,
    });
    expect(Number.isNaN(list!.p99_ms), "perfkit reports no range P99; none is made up").toBe(true);
    expect(rwRows("etcd", "lists=0", parseResult("RESULT rw puts=5 seconds=1 puts_per_s=5"))).toHaveLength(1);
  });
});

describe("storage-claim cells", () => {
  it("runs lists=0 once and each reader count in each read view", () => {
    expect(cellsOf([0, 1, 4], ["paced", "closed"]).map((c) => c.phase)).toEqual([
      "lists=0",
      "lists=1 paced",
      "lists=1 closed",
      "lists=4 paced",
      "lists=4 closed",
    ]);
    expect(cellsOf([2], ["closed"]).map((c) => [c.phase, c.lists, c.mode])).toEqual([["lists=2 closed", 2, "closed"]]);
  });
});
