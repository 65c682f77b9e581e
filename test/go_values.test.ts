// Proves the one parser of each Go value syntax reads what Go reads: strconv.ParseBool's twelve spellings and
// nothing else, and time.ParseDuration's forms (units ns..h, fractions, several parts, a sign, a bare 0) while
// refusing what Go refuses (no unit, unknown unit, spaces, a sign inside, the empty string).
import { describe, expect, it } from "vitest";
import { parseGoBool, parseGoDurationMs } from "../core/go_values.js";

describe("Go value syntax", () => {
  it("booleans as strconv.ParseBool", () => {
    for (const t of ["1", "t", "T", "TRUE", "true", "True"]) expect(parseGoBool(t), t).toBe(true);
    for (const f of ["0", "f", "F", "FALSE", "false", "False"]) expect(parseGoBool(f), f).toBe(false);
    for (const bad of ["", "yes", "tRUE", "2", " true"]) expect(parseGoBool(bad), bad).toBeUndefined();
  });

  it("durations as time.ParseDuration, in milliseconds", () => {
    const cases: Record<string, number> = {
      "5m": 300_000,
      "1h30m": 5_400_000,
      "1.5s": 1500,
      "250ms": 250,
      "0": 0,
      "-1s": -1000,
      "+2s": 2000,
      ".5s": 500,
      "1.s": 1000,
      "100us": 0.1,
      "100µs": 0.1,
      "1000000ns": 1,
      "2h45m30.5s": 9_930_500,
    };
    for (const [text, ms] of Object.entries(cases)) expect(parseGoDurationMs(text), text).toBeCloseTo(ms, 9);
    for (const bad of ["", "5", "m", "5 m", "5d", "1h-3m", "-", ".s", "1e3s"]) {
      expect(parseGoDurationMs(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});
