// Spec: an isolated leader's uncommitted entries are never applied. It accepts proposals it cannot commit; the
// majority elects a new leader and commits other entries; when the old leader rejoins, its conflicting suffix is
// overwritten by the new leader's log, nobody applies the lost proposals, and every member ends with the same
// state (log matching and state-machine safety checked after every event throughout).
import { describe, expect, it } from "vitest";
import { cluster, ELECTION_TICKS } from "./impl.js";

describe("an isolated leader's uncommitted entries", () => {
  it.each([3, 5])("are overwritten after it rejoins a %i-member cluster, and never applied", (n) => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster({ seed, n, checkQuorum: false });
      const old = c.waitForLeader(5 * ELECTION_TICKS);
      c.propose(old, "shared");
      c.runUntil(() => c.appliedEverywhere("shared"), 5 * ELECTION_TICKS, "shared applied");
      c.net.isolate(old, c.ids());
      for (let i = 0; i < 5; i++)
        expect(c.propose(old, `lost${i}`), `seed=${seed}: old leader accepts lost${i}`).toBe(true);
      const rest = c.ids().filter((id) => id !== old);
      c.runUntil(() => rest.some((id) => c.node(id).isLeader()), 10 * ELECTION_TICKS, "majority elects");
      const fresh = rest.find((id) => c.node(id).isLeader()) as bigint;
      for (let i = 0; i < 3; i++) c.propose(fresh, `kept${i}`);
      c.runUntil(() => c.appliedEverywhere("kept2", rest), 5 * ELECTION_TICKS, "kept entries applied by the majority");
      expect(c.node(old).storage.lastIndex(), `seed=${seed}: old leader holds its uncommitted suffix`).toBeGreaterThan(
        c.node(old).commit,
      );
      c.net.heal();
      c.runUntil(
        () => c.appliedEverywhere("kept2") && c.stableLeader() !== undefined,
        10 * ELECTION_TICKS,
        "old leader caught up",
      );
      for (const id of c.ids()) {
        const items = c.node(id).sm.items;
        expect(
          items.some((x) => x.startsWith("lost")),
          `seed=${seed}: node ${id} applied a lost proposal`,
        ).toBe(false);
        expect(items, `seed=${seed}: node ${id} state`).toEqual(c.node(fresh).sm.items);
      }
    }
  });
});
