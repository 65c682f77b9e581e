// Proves `npm run bench -- storage` end to end on a tiny store (sane values and bookkeeping, never speed): every
// round runs every cell once, each round starting one cell further along; the warm-up cells are not recorded; the
// controls run (the `process` one as a separate process, so its CPU counts as another process's); ratio.csv's
// per-round ratios are the rows' own P99s divided, round by round.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { readCsv } from "../../harness/results.js";

const root = mkdtempSync(join(tmpdir(), "etcd-ts-storage-bench-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BENCH = resolve("dist/harness/bench.js");
const REPS = 3;

describe("storage benchmark, tiny store", () => {
  it("runs every cell once per round in rotated order and derives the ratios from those rows", async () => {
    expect(existsSync(BENCH), `${BENCH} missing: run npm run build first`).toBe(true);
    const args = [
      BENCH,
      "storage",
      "--seconds",
      "0.4",
      "--keys",
      "300",
      "--value-bytes",
      "256",
      "--readers",
      "0,2",
      "--modes",
      "concurrent",
      "--reps",
      String(REPS),
      "--controls",
      "spin,process",
      "--results",
      root,
    ];
    await promisify(execFile)(process.execPath, args, {
      env: { ...process.env, ETCD_TS_BENCH_QUIET: "1" },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 110_000,
    });
    const [run] = readdirSync(root);
    expect(run, "one run directory").toMatch(/-storage$/);
    const mix = readCsv(join(root, run!, "mix.csv"));
    const cell = (r: Record<string, string>): string => `${r["readers"]}/${r["control"]}`;
    const cells = ["0/", "2/", "0/spin", "0/process"];
    expect(
      mix.map((r) => r["rep"]),
      "rounds 1..3 in order, no warm-up row",
    ).toEqual(["1", "1", "1", "1", "2", "2", "2", "2", "3", "3", "3", "3"]);
    for (let rep = 0; rep < REPS; rep++) {
      const order = mix.slice(rep * 4, rep * 4 + 4).map(cell);
      expect(order, `round ${rep + 1} starts ${rep} cells along`).toEqual([
        ...cells.slice(rep),
        ...cells.slice(0, rep),
      ]);
    }
    for (const r of mix) {
      expect(Number(r["commits_per_s"]), `${cell(r)} commits`).toBeGreaterThan(0);
      expect(Number(r["p99_commit_ms"]), `${cell(r)} p99`).toBeGreaterThan(0);
      if (r["readers"] === "2") expect(Number(r["ranges_per_s"]), "the readers ran Ranges").toBeGreaterThan(0);
      // The spinning child is another process: the host's busy time beyond this process's own covers most of it.
      if (r["control"] === "process")
        expect(Number(r["foreign_cpu_s"]), "the process control's CPU is foreign").toBeGreaterThan(0.1);
    }
    const ratio = readCsv(join(root, run!, "ratio.csv")).find((r) => r["readers"] === "2");
    const p99 = (rep: number, readers: string): number =>
      Number(
        mix.find((r) => r["rep"] === String(rep) && r["readers"] === readers && r["control"] === "")?.["p99_commit_ms"],
      );
    const perRound = (ratio?.["per_round_p99_over_no_reader"] ?? "").split(" ").map(Number);
    expect(perRound, "one ratio per round").toHaveLength(REPS);
    perRound.forEach((x, i) => expect(x, `round ${i + 1}`).toBeCloseTo(p99(i + 1, "2") / p99(i + 1, "0"), 1));
    const controls = readCsv(join(root, run!, "control.csv")).map((r) => r["control"]);
    expect(controls).toEqual(["spin", "process"]);
  }, 120_000);
});
