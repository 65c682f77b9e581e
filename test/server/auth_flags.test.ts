// Proves --bcrypt-cost is read as etcd 3.4 reads it: any cost in Go's bcrypt range [4, 31] is used as given; a cost
// outside it falls back to the default 10 with etcd's warning text instead of stopping start-up.
import { describe, expect, it } from "vitest";
import { authFromFlags } from "../../core/server/auth_apply.js";

describe("--bcrypt-cost", () => {
  it("uses a cost in [4, 31] as given", () => {
    for (const cost of [4, 10, 31]) {
      const f = authFromFlags("simple", 300, cost);
      expect(f.bcryptCost).toBe(cost);
      expect(f.warning).toBeUndefined();
    }
  });

  it("falls back to 10 with etcd's warning outside [4, 31]", () => {
    for (const cost of [3, 32, 0, 1.5]) {
      const f = authFromFlags("simple", 300, cost);
      expect(f.bcryptCost).toBe(10);
      expect(f.warning).toBe(`Use default bcrypt-cost 10 instead of the invalid value ${cost}`);
    }
  });
});
