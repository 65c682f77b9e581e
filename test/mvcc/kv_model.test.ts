// Model-based test (fast-check, fixed seed) of the KV store over short keys, with and without 0x00 bytes,
// some sharing prefixes: every Range agrees with a plain model through compaction and reopen (kv_model_harness.ts).
import { describe, it } from "vitest";

import { checkAgainstModel } from "./kv_model_harness.js";

describe("KV store against a model of key histories", () => {
  it("agrees on every Range at every revision, through compaction and reopen", async () => {
    await checkAgainstModel({
      keys: ["a", "a\u0000", "ab", "b", "c", "d\u0000x", "e"],
      seed: 20_260_425,
      numRuns: 60,
      maxCommands: 40,
    });
  });
});
