// Proves leader transfer: the leader catches the transferee up and sends MsgTimeoutNow, the transferee
// campaigns at once (skipping pre-vote, past the others' leases); proposals are dropped meanwhile; a transfer
// to a learner is refused; an unfinished transfer is abandoned after an election timeout.

import { describe, expect, it } from "vitest";
import { RaftError } from "../../../core/raft/errors.js";
import type { NodeId } from "../../../core/raft/types.js";
import { TestNet, text } from "./net.js";

const V3: NodeId[] = [1n, 2n, 3n];

describe("leader transfer", () => {
  it("transfers to an up-to-date follower with pre-vote and check-quorum on", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(1n).raw.transferLeader(2n);
    net.settle();
    expect(net.leaders()).toEqual([2n]);
    expect(net.node(2n).raw.status().hardState.term).toBe(2);
  });

  it("catches a lagging transferee up first", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(3n);
    for (let i = 0; i < 5; i++) net.node(1n).raw.propose(text(`e${i}`));
    net.settle();
    net.heal();
    net.node(1n).raw.transferLeader(3n);
    net.settle();
    expect(net.leaders()).toEqual([3n]);
    expect(net.node(3n).storage.lastIndex(), "has all 6 entries plus its own").toBe(7);
  });

  it("a transfer requested on a follower is forwarded to the leader", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.node(3n).raw.transferLeader(3n);
    net.settle();
    expect(net.leaders()).toEqual([3n]);
  });

  it("drops proposals while transferring, and aborts after an election timeout", () => {
    const net = new TestNet(V3);
    net.tickAll(11);
    net.isolate(2n);
    const leader = net.node(1n).raw;
    leader.transferLeader(2n);
    expect(leader.status().leadTransferee).toBe(2n);
    expect(() => leader.propose(text("x"))).toThrowError(RaftError);
    try {
      leader.propose(text("x"));
    } catch (e) {
      expect((e as RaftError).code).toBe("PROPOSAL_DROPPED");
    }
    net.tick(1n, 10);
    expect(leader.status().leadTransferee, "abandoned").toBe(0n);
    leader.propose(text("accepted again"));
    net.settle();
    expect(leader.status().hardState.commit).toBe(2);
  });

  it("refuses a transfer to a learner", () => {
    const net = new TestNet([1n, 2n], [3n]);
    net.tickAll(11);
    net.node(1n).raw.transferLeader(3n);
    net.settle();
    expect(net.node(1n).raw.status().leadTransferee).toBe(0n);
    expect(net.leaders()).toEqual([1n]);
  });
});
