// Request and lease ids unique across members and restarts, laid out as etcd's idutil does:
// | member id low 16 bits | unix milliseconds low 40 bits | 8-bit counter |, the counter part growing by one
// per id (carrying into the time bits), so ids from one member are strictly increasing.
const TS_BITS = 40n;
const COUNT_BITS = 8n;
const SUFFIX_BITS = TS_BITS + COUNT_BITS;
const SUFFIX_MASK = (1n << SUFFIX_BITS) - 1n;

export class IdGenerator {
  readonly #prefix: bigint;
  #suffix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    if (memberId < 0n) throw new RangeError(`IdGenerator: member id must be ≥ 0: got ${memberId}`);
    this.#prefix = (memberId & 0xffffn) << SUFFIX_BITS;
    this.#suffix = (BigInt(Math.floor(nowMs)) & ((1n << TS_BITS) - 1n)) << COUNT_BITS;
  }

  next(): bigint {
    this.#suffix = (this.#suffix + 1n) & SUFFIX_MASK;
    return this.#prefix | this.#suffix;
  }
}
