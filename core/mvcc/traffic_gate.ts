// Holding a store's traffic while its backend is swapped underneath it (defragmentation, installing the backend
// a Raft snapshot carried): the swap waits until the reads and writes in flight have left, and the ones that
// arrive meanwhile wait until the swap is over.

export class TrafficGate {
  /** Set while a swap holds the gate: operations arriving now wait on it. */
  #held: Promise<void> | undefined;
  #inFlight = 0;
  /** Resolves the swap's wait once the last operation in flight leaves. */
  #drained: (() => void) | undefined;

  /** Whether a swap holds the gate right now. */
  get held(): boolean {
    return this.#held !== undefined;
  }

  /** Counts an operation in when no swap holds the gate, with no await (the common case); false otherwise. */
  tryEnter(): boolean {
    if (this.#held !== undefined) return false;
    this.#inFlight++;
    return true;
  }

  /** Counts an operation in, first waiting out any swap. */
  async enter(): Promise<void> {
    while (this.#held !== undefined) await this.#held;
    this.#inFlight++;
  }

  leave(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) this.#drained?.();
  }

  /** Runs `swap` alone: after every operation in flight has left, holding new ones until it settles. */
  async exclusive<T>(swap: () => Promise<T>): Promise<T> {
    while (this.#held !== undefined) await this.#held;
    let open = (): void => undefined;
    this.#held = new Promise<void>((resolve) => (open = resolve));
    try {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      return await swap();
    } finally {
      this.#held = undefined;
      open();
    }
  }
}
